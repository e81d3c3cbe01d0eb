"""Line lifecycle and the provisioning outbox

`provisioning_event` is the transactional outbox of commands to the host
(named CHECKs: known action and status, attempts not negative, delivered
exactly when `delivered_at` is set); indexes serve the delivery query
(status, next_attempt_at) and the per-line order check (line_id, id).
`line` gains `status_changed_at` (existing lines take their `created_at`),
`next_plan_id` (the plan applied at the next renewal) and `sim_id` (UNIQUE:
a SIM serves one line). `host_carrier.provisioning_secret` keys the http
adapter's `X-Signature`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.db

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('provisioning_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', app.core.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("(status = 'delivered') = (delivered_at IS NOT NULL)", name=op.f('ck_provisioning_event_delivered_when')),
    sa.CheckConstraint("action IN ('activate', 'suspend', 'resume', 'change_plan', 'terminate', 'port_out', 'transfer_to_host')", name=op.f('ck_provisioning_event_action_known')),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name=op.f('ck_provisioning_event_status_known')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_provisioning_event_attempts_not_negative')),
    sa.ForeignKeyConstraint(['host_id'], ['host_carrier.id'], name=op.f('fk_provisioning_event_host_id_host_carrier')),
    sa.ForeignKeyConstraint(['line_id'], ['line.id'], name=op.f('fk_provisioning_event_line_id_line')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioning_event'))
    )
    with op.batch_alter_table('provisioning_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provisioning_event_host_id'), ['host_id'], unique=False)
        batch_op.create_index('ix_provisioning_event_line_id_id', ['line_id', 'id'], unique=False)
        batch_op.create_index('ix_provisioning_event_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('host_carrier', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provisioning_secret', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))

    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_plan_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sim_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('status_changed_at', app.core.db.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_line_next_plan_id'), ['next_plan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_line_sim_id'), ['sim_id'], unique=True)
        batch_op.create_foreign_key(batch_op.f('fk_line_next_plan_id_plan'), 'plan', ['next_plan_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_line_sim_id_sim'), 'sim', ['sim_id'], ['id'])

    op.execute("UPDATE line SET status_changed_at = created_at")
    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.alter_column(
            'status_changed_at', existing_type=app.core.db.UTCDateTime(), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_line_sim_id_sim'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_line_next_plan_id_plan'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_line_sim_id'))
        batch_op.drop_index(batch_op.f('ix_line_next_plan_id'))
        batch_op.drop_column('status_changed_at')
        batch_op.drop_column('sim_id')
        batch_op.drop_column('next_plan_id')

    with op.batch_alter_table('host_carrier', schema=None) as batch_op:
        batch_op.drop_column('provisioning_secret')

    with op.batch_alter_table('provisioning_event', schema=None) as batch_op:
        batch_op.drop_index('ix_provisioning_event_status_next_attempt_at')
        batch_op.drop_index('ix_provisioning_event_line_id_id')
        batch_op.drop_index(batch_op.f('ix_provisioning_event_host_id'))

    op.drop_table('provisioning_event')
