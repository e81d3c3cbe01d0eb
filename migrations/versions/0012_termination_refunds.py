"""Refunds of a single line's termination or port-out: the refund reason `termination`

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _reasons(sql: str) -> None:
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_refund_reason_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_refund_reason_known'), sql)


def upgrade() -> None:
    _reasons("reason IN ('cap_excess', 'staff', 'exit', 'termination')")


def downgrade() -> None:
    _reasons("reason IN ('cap_excess', 'staff', 'exit')")
