"""Customer service tickets, their messages and attachments, and the SLA targets

`ticket` is one matter of a customer (or of the system: no customer, a
UNIQUE `source` such as `dispute:12`, so a job opens it once), with its
SLA due instants, pause and breach bookkeeping, regulator escalation and
satisfaction. Named CHECKs: known category, channel, priority and status;
a customer on every ticket but the system's; `resolved_at` set exactly
when resolved or closed, `closed_at` exactly when closed, `paused_at`
exactly while waiting for the customer; satisfaction 1–5 with its instant,
on a customer's ticket only; a regulator reference exactly with its date;
counts not negative; resolution never due before the first response. Two
partial indexes hold only the live tickets whose breach is still to flag
(the breach job's reads). `ticket_message` (CHECK: author kind, visibility,
a customer writes customer-visible messages only, body 1–10,000
characters) and `ticket_attachment` (CHECK: PDF, PNG, JPEG or plain text,
1 byte to 5 MiB) hold the conversation. `sla_target` maps category ×
priority to minutes to first response and to resolution and the clock
(around the clock or working hours), UNIQUE per pair, resolution not
shorter than the first response; it is seeded here with the defaults of
app/care/models.py (urgent 1 h / 8 h around the clock; normal 8 working h
/ 5 working days; …). `notification`'s kind CHECK admits `ticket_reply`
and `sla_breach`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sla_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('first_response_minutes', sa.Integer(), nullable=False),
    sa.Column('resolution_minutes', sa.Integer(), nullable=False),
    sa.Column('around_the_clock', sa.Boolean(), nullable=False),
    sa.Column('updated_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("category IN ('inquiry', 'complaint', 'fault', 'billing_dispute', 'porting')", name=op.f('ck_sla_target_category_known')),
    sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name=op.f('ck_sla_target_priority_known')),
    sa.CheckConstraint('first_response_minutes > 0 AND resolution_minutes >= first_response_minutes', name=op.f('ck_sla_target_minutes_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_target')),
    sa.UniqueConstraint('category', 'priority', name=op.f('uq_sla_target_category_priority'))
    )
    op.create_table('ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('line_id', sa.Integer(), nullable=True),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('sla_around_the_clock', sa.Boolean(), nullable=False),
    sa.Column('first_response_due_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('resolution_due_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('first_responded_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('resolved_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('closed_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('paused_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('paused_seconds', sa.Integer(), nullable=False),
    sa.Column('first_response_breached_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('resolution_breached_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('regulator_ref', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('regulator_escalated_on', sa.Date(), nullable=True),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('satisfaction_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name=op.f('ck_ticket_closed_when')),
    sa.CheckConstraint("(status = 'pending_customer') = (paused_at IS NOT NULL)", name=op.f('ck_ticket_paused_when')),
    sa.CheckConstraint("(status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL)", name=op.f('ck_ticket_resolved_when')),
    sa.CheckConstraint("category IN ('inquiry', 'complaint', 'fault', 'billing_dispute', 'porting')", name=op.f('ck_ticket_category_known')),
    sa.CheckConstraint("channel = 'system' OR customer_id IS NOT NULL", name=op.f('ck_ticket_customer_present')),
    sa.CheckConstraint("channel IN ('self_care', 'phone', 'store', 'email', 'system')", name=op.f('ck_ticket_channel_known')),
    sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name=op.f('ck_ticket_priority_known')),
    sa.CheckConstraint("status IN ('open', 'pending_customer', 'resolved', 'closed', 'escalated')", name=op.f('ck_ticket_status_known')),
    sa.CheckConstraint('(regulator_ref IS NULL) = (regulator_escalated_on IS NULL)', name=op.f('ck_ticket_regulator_complete')),
    sa.CheckConstraint('reopen_count >= 0 AND paused_seconds >= 0', name=op.f('ck_ticket_counts_not_negative')),
    sa.CheckConstraint('resolution_due_at >= first_response_due_at', name=op.f('ck_ticket_resolution_after_response')),
    sa.CheckConstraint('satisfaction IS NULL OR (satisfaction BETWEEN 1 AND 5 AND satisfaction_at IS NOT NULL AND customer_id IS NOT NULL)', name=op.f('ck_ticket_satisfaction_valid')),
    sa.ForeignKeyConstraint(['assignee_id'], ['staff_user.id'], name=op.f('fk_ticket_assignee_id_staff_user')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_ticket_customer_id_customer')),
    sa.ForeignKeyConstraint(['line_id'], ['line.id'], name=op.f('fk_ticket_line_id_line')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket')),
    sa.UniqueConstraint('ref', name=op.f('uq_ticket_ref')),
    sa.UniqueConstraint('source', name=op.f('uq_ticket_source'))
    )
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_assignee_id_status', ['assignee_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_ticket_customer_id_id', ['customer_id', 'id'], unique=False)
        batch_op.create_index('ix_ticket_first_response_unflagged', ['first_response_due_at'], unique=False, sqlite_where=sa.text("status IN ('open', 'escalated') AND first_responded_at IS NULL AND first_response_breached_at IS NULL"), postgresql_where=sa.text("status IN ('open', 'escalated') AND first_responded_at IS NULL AND first_response_breached_at IS NULL"))
        batch_op.create_index(batch_op.f('ix_ticket_line_id'), ['line_id'], unique=False)
        batch_op.create_index('ix_ticket_resolution_unflagged', ['resolution_due_at'], unique=False, sqlite_where=sa.text("status IN ('open', 'escalated') AND resolution_breached_at IS NULL"), postgresql_where=sa.text("status IN ('open', 'escalated') AND resolution_breached_at IS NULL"))
        batch_op.create_index('ix_ticket_status_resolution_due_at', ['status', 'resolution_due_at'], unique=False)

    op.create_table('ticket_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('author_kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_label', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('visibility', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("author_kind <> 'customer' OR visibility = 'customer'", name=op.f('ck_ticket_message_customer_writes_visible')),
    sa.CheckConstraint("author_kind IN ('customer', 'staff', 'system')", name=op.f('ck_ticket_message_author_kind_known')),
    sa.CheckConstraint("visibility IN ('customer', 'internal')", name=op.f('ck_ticket_message_visibility_known')),
    sa.CheckConstraint('length(body) BETWEEN 1 AND 10000', name=op.f('ck_ticket_message_body_length')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_message_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_message'))
    )
    with op.batch_alter_table('ticket_message', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_message_ticket_id_id', ['ticket_id', 'id'], unique=False)

    op.create_table('ticket_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("content_type IN ('application/pdf', 'image/png', 'image/jpeg', 'text/plain')", name=op.f('ck_ticket_attachment_type_allowed')),
    sa.CheckConstraint('size_bytes BETWEEN 1 AND 5242880', name=op.f('ck_ticket_attachment_size_within_limit')),
    sa.ForeignKeyConstraint(['message_id'], ['ticket_message.id'], name=op.f('fk_ticket_attachment_message_id_ticket_message')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_attachment_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_attachment'))
    )
    with op.batch_alter_table('ticket_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_attachment_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_attachment_ticket_id'), ['ticket_id'], unique=False)

    # The defaults of app/care/models.py DEFAULT_SLA_TARGETS when this revision
    # was written (minutes; a working day is 9 h).
    hour, day = 60, 9 * 60
    defaults = {}
    for category in ('inquiry', 'complaint', 'fault', 'billing_dispute', 'porting'):
        defaults[(category, 'urgent')] = (1 * hour, 8 * hour, True)
        defaults[(category, 'high')] = (4 * hour, 2 * day, False)
        defaults[(category, 'normal')] = (8 * hour, 5 * day, False)
        defaults[(category, 'low')] = (2 * day, 10 * day, False)
    defaults[('fault', 'high')] = (2 * hour, 24 * hour, True)
    defaults[('porting', 'normal')] = (4 * hour, 2 * day, False)
    defaults[('billing_dispute', 'normal')] = (8 * hour, 10 * day, False)
    defaults[('inquiry', 'normal')] = (8 * hour, 3 * day, False)
    seeded_at = datetime(2026, 12, 6, tzinfo=UTC)
    sla_target = sa.table(
        'sla_target',
        sa.column('category', sa.String),
        sa.column('priority', sa.String),
        sa.column('first_response_minutes', sa.Integer),
        sa.column('resolution_minutes', sa.Integer),
        sa.column('around_the_clock', sa.Boolean),
        sa.column('updated_at', app.core.db.UTCDateTime),
    )
    op.bulk_insert(
        sla_target,
        [
            {
                'category': category,
                'priority': priority,
                'first_response_minutes': first,
                'resolution_minutes': resolution,
                'around_the_clock': around,
                'updated_at': seeded_at,
            }
            for (category, priority), (first, resolution, around) in defaults.items()
        ],
    )

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_notification_kind_known'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_notification_kind_known'),
            "kind IN ('renewal', 'renewal_failed', 'suspension', 'resumed', 'termination', 'low_balance', 'password_reset', 'order_paid', 'line_active', 'ticket_reply', 'sla_breach')",
        )



def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_notification_kind_known'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_notification_kind_known'),
            "kind IN ('renewal', 'renewal_failed', 'suspension', 'resumed', 'termination', 'low_balance', 'password_reset', 'order_paid', 'line_active')",
        )

    with op.batch_alter_table('ticket_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_attachment_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_attachment_message_id'))

    op.drop_table('ticket_attachment')
    with op.batch_alter_table('ticket_message', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_message_ticket_id_id')

    op.drop_table('ticket_message')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_status_resolution_due_at')
        batch_op.drop_index('ix_ticket_resolution_unflagged', sqlite_where=sa.text("status IN ('open', 'escalated') AND resolution_breached_at IS NULL"), postgresql_where=sa.text("status IN ('open', 'escalated') AND resolution_breached_at IS NULL"))
        batch_op.drop_index(batch_op.f('ix_ticket_line_id'))
        batch_op.drop_index('ix_ticket_first_response_unflagged', sqlite_where=sa.text("status IN ('open', 'escalated') AND first_responded_at IS NULL AND first_response_breached_at IS NULL"), postgresql_where=sa.text("status IN ('open', 'escalated') AND first_responded_at IS NULL AND first_response_breached_at IS NULL"))
        batch_op.drop_index('ix_ticket_customer_id_id')
        batch_op.drop_index(batch_op.f('ix_ticket_created_at'))
        batch_op.drop_index('ix_ticket_assignee_id_status')

    op.drop_table('ticket')
    op.drop_table('sla_target')
