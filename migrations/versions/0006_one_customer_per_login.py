"""One customer per store login

`customer.subscriber_account_id` becomes UNIQUE (the index is recreated
as a unique index), so a subscriber's first top-up cannot create two
customers even when two requests race.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_subscriber_account_id'))
        batch_op.create_index(
            batch_op.f('ix_customer_subscriber_account_id'), ['subscriber_account_id'], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_subscriber_account_id'))
        batch_op.create_index(
            batch_op.f('ix_customer_subscriber_account_id'), ['subscriber_account_id'], unique=False
        )
