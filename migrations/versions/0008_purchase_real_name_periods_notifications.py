"""Store purchases, real-name data, line periods, notifications, password resets

`purchase_order` is a plan bought in the store (named CHECKs: known status
and SIM kind, total = price + surcharge, paid exactly when it has a line).
`customer` gains the real-name ID type, the ID number encrypted with
PII_KEY and its masked form. `line` gains `auto_renew` (existing lines:
on) and `period_end`, the end of its latest period, indexed for the renewal
job, and `renewal_failed_at`, when its last renewal went unpaid (the
renewal job's suspensions and terminations); `line.msisdn` is no longer
UNIQUE: a number has at most one line that is not final (partial unique
index `uq_line_live_msisdn`), so a number back from quarantine can be sold
again. `line_period` holds each period's allowances and usage counters
(CHECK: used never above allowance), `period_addon` the data packs bought
for a period. `notification` is the e-mail/SMS outbox; `password_reset_token`
keeps SHA-256 digests of single-use reset links. `provisioning_event`'s
action CHECK admits `swap_sim` (a line's SIM replaced by care).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('password_reset_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', app.core.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['subscriber_account.id'], name=op.f('fk_password_reset_token_account_id_subscriber_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_reset_token_token_hash'))
    )
    with op.batch_alter_table('password_reset_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_reset_token_account_id'), ['account_id'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', app.core.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f('ck_notification_channel_known')),
    sa.CheckConstraint("kind IN ('renewal', 'renewal_failed', 'suspension', 'resumed', 'termination', 'low_balance', 'password_reset', 'order_paid', 'line_active')", name=op.f('ck_notification_kind_known')),
    sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name=op.f('ck_notification_status_known')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_notification_attempts_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['subscriber_account.id'], name=op.f('fk_notification_account_id_subscriber_account')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_notification_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notification_dedupe_key'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_notification_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('line_period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('start', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('end', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('price_minor', sa.Integer(), nullable=False),
    sa.Column('data_kb', sa.Integer(), nullable=False),
    sa.Column('voice_s', sa.Integer(), nullable=False),
    sa.Column('sms', sa.Integer(), nullable=False),
    sa.Column('data_kb_used', sa.Integer(), nullable=False),
    sa.Column('voice_s_used', sa.Integer(), nullable=False),
    sa.Column('sms_used', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('"end" > start', name=op.f('ck_line_period_end_after_start')),
    sa.CheckConstraint('data_kb >= 0 AND voice_s >= 0 AND sms >= 0 AND data_kb_used >= 0 AND voice_s_used >= 0 AND sms_used >= 0 AND data_kb_used <= data_kb AND voice_s_used <= voice_s AND sms_used <= sms', name=op.f('ck_line_period_counters_valid')),
    sa.CheckConstraint('price_minor >= 0', name=op.f('ck_line_period_price_not_negative')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entry.id'], name=op.f('fk_line_period_entry_id_journal_entry')),
    sa.ForeignKeyConstraint(['line_id'], ['line.id'], name=op.f('fk_line_period_line_id_line')),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_line_period_plan_id_plan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_period')),
    sa.UniqueConstraint('line_id', 'start', name=op.f('uq_line_period_line_id_start'))
    )
    with op.batch_alter_table('line_period', schema=None) as batch_op:
        batch_op.create_index('ix_line_period_line_id_end', ['line_id', 'end'], unique=False)
        batch_op.create_index(batch_op.f('ix_line_period_plan_id'), ['plan_id'], unique=False)

    op.create_table('purchase_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('msisdn', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('sim_kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('payment_method', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('price_minor', sa.Integer(), nullable=False),
    sa.Column('surcharge_minor', sa.Integer(), nullable=False),
    sa.Column('total_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('line_id', sa.Integer(), nullable=True),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.Column('hold_until', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('paid_at', app.core.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("(status = 'paid') = (line_id IS NOT NULL)", name=op.f('ck_purchase_order_paid_has_line')),
    sa.CheckConstraint("sim_kind IN ('physical', 'esim')", name=op.f('ck_purchase_order_sim_kind_known')),
    sa.CheckConstraint("status IN ('awaiting_payment', 'paid', 'cancelled', 'expired')", name=op.f('ck_purchase_order_status_known')),
    sa.CheckConstraint('price_minor >= 0 AND surcharge_minor >= 0 AND total_minor = price_minor + surcharge_minor', name=op.f('ck_purchase_order_amounts_consistent')),
    sa.ForeignKeyConstraint(['account_id'], ['subscriber_account.id'], name=op.f('fk_purchase_order_account_id_subscriber_account')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_purchase_order_customer_id_customer')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entry.id'], name=op.f('fk_purchase_order_entry_id_journal_entry')),
    sa.ForeignKeyConstraint(['line_id'], ['line.id'], name=op.f('fk_purchase_order_line_id_line')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_purchase_order_payment_id_payment')),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_purchase_order_plan_id_plan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_order')),
    sa.UniqueConstraint('line_id', name=op.f('uq_purchase_order_line_id')),
    sa.UniqueConstraint('ref', name=op.f('uq_purchase_order_ref'))
    )
    with op.batch_alter_table('purchase_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_order_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_order_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_order_msisdn'), ['msisdn'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_order_payment_id'), ['payment_id'], unique=False)

    op.create_table('period_addon',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('addon_id', sa.Integer(), nullable=False),
    sa.Column('data_kb', sa.Integer(), nullable=False),
    sa.Column('price_minor', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('data_kb >= 1 AND price_minor >= 0', name=op.f('ck_period_addon_amounts_valid')),
    sa.ForeignKeyConstraint(['addon_id'], ['addon.id'], name=op.f('fk_period_addon_addon_id_addon')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entry.id'], name=op.f('fk_period_addon_entry_id_journal_entry')),
    sa.ForeignKeyConstraint(['period_id'], ['line_period.id'], name=op.f('fk_period_addon_period_id_line_period')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_period_addon')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_period_addon_entry_id'))
    )
    with op.batch_alter_table('period_addon', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_period_addon_addon_id'), ['addon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_period_addon_period_id'), ['period_id'], unique=False)

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id_type', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('id_number_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('id_number_masked', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))

    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_renew', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('period_end', app.core.db.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_line_period_end'), ['period_end'], unique=False)
        batch_op.add_column(sa.Column('renewal_failed_at', app.core.db.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_line_renewal_failed_at'), ['renewal_failed_at'], unique=False)
        # A number may have several lines over time, but one that is not final.
        batch_op.drop_constraint(batch_op.f('uq_line_msisdn'), type_='unique')
        batch_op.create_index(batch_op.f('ix_line_msisdn'), ['msisdn'], unique=False)
        batch_op.create_index('uq_line_live_msisdn', ['msisdn'], unique=True, sqlite_where=sa.text("status IN ('pending', 'active', 'suspended')"), postgresql_where=sa.text("status IN ('pending', 'active', 'suspended')"))

    with op.batch_alter_table('provisioning_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_provisioning_event_action_known'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_provisioning_event_action_known'),
            "action IN ('activate', 'suspend', 'resume', 'change_plan', 'terminate', 'port_out', 'transfer_to_host', 'swap_sim')",
        )



def downgrade() -> None:
    with op.batch_alter_table('provisioning_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_provisioning_event_action_known'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_provisioning_event_action_known'),
            "action IN ('activate', 'suspend', 'resume', 'change_plan', 'terminate', 'port_out', 'transfer_to_host')",
        )

    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.drop_index('uq_line_live_msisdn')
        batch_op.drop_index(batch_op.f('ix_line_msisdn'))
        batch_op.create_unique_constraint(batch_op.f('uq_line_msisdn'), ['msisdn'])
        batch_op.drop_index(batch_op.f('ix_line_renewal_failed_at'))
        batch_op.drop_column('renewal_failed_at')
        batch_op.drop_index(batch_op.f('ix_line_period_end'))
        batch_op.drop_column('period_end')
        batch_op.drop_column('auto_renew')

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('id_number_masked')
        batch_op.drop_column('id_number_enc')
        batch_op.drop_column('id_type')

    with op.batch_alter_table('period_addon', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_period_addon_period_id'))
        batch_op.drop_index(batch_op.f('ix_period_addon_addon_id'))

    op.drop_table('period_addon')
    with op.batch_alter_table('purchase_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchase_order_payment_id'))
        batch_op.drop_index(batch_op.f('ix_purchase_order_msisdn'))
        batch_op.drop_index(batch_op.f('ix_purchase_order_customer_id'))
        batch_op.drop_index(batch_op.f('ix_purchase_order_account_id'))

    op.drop_table('purchase_order')
    with op.batch_alter_table('line_period', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_period_plan_id'))
        batch_op.drop_index('ix_line_period_line_id_end')

    op.drop_table('line_period')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_notification_customer_id'))
        batch_op.drop_index(batch_op.f('ix_notification_account_id'))

    op.drop_table('notification')
    with op.batch_alter_table('password_reset_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_reset_token_account_id'))

    op.drop_table('password_reset_token')
