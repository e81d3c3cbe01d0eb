"""Lines by number, with what a month's line count needs, on PostgreSQL

`ix_line_msisdn` is rebuilt on PostgreSQL to include `service_started_at`,
`period_end` and `period_gap_at`, so counting a host's lines active in a
month (settlement's `lines`, the dashboard's cost of the current month)
reads the lines of the host's number ranges by an index-only scan instead
of fetching every line's row. The three columns are indexed already, so a
line's update is no less often a HOT update than before. SQLite keeps the
plain index (it has no included columns).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDED = ["service_started_at", "period_end", "period_gap_at"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_line_msisdn", table_name="line")
    op.create_index("ix_line_msisdn", "line", ["msisdn"], postgresql_include=INCLUDED)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_line_msisdn", table_name="line")
    op.create_index("ix_line_msisdn", "line", ["msisdn"])
