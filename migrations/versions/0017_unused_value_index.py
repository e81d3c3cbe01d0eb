"""The periods not over at an instant, read from their index alone on PostgreSQL

`ix_line_period_ends` (`line_period` by `end`) is rebuilt on PostgreSQL to
include what the unused value of a period needs (`line_id`, `plan_id`,
`price_minor`, `start`), so the dashboard's "owed if we exited now" and the
exit read the current periods by an index-only scan rather than every
period's row. SQLite keeps the plain index (it has no included columns).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDED = ["line_id", "plan_id", "price_minor", "start"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_line_period_ends", table_name="line_period")
    op.create_index(
        "ix_line_period_ends", "line_period", ["end"], postgresql_include=INCLUDED
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_line_period_ends", table_name="line_period")
    op.create_index("ix_line_period_ends", "line_period", ["end"])
