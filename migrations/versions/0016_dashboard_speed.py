"""When a line's service began and its first gap between periods, and indexes for the dashboard

`line` gains `service_started_at`, the start of the line's first period, and
`period_gap_at`, the start of the first period that did not open where the
line's periods had ended until then (NULL while they run end to start, so
that they cover `service_started_at` to `period_end` without a break); the
code that opens periods keeps both. Existing lines take them from their
periods in one UPDATE: the earliest start, and the earliest later start that
is no period's end; then `ANALYZE line` on PostgreSQL, so that the planner
knows the new columns without waiting for autovacuum. Indexes: both
columns; the ended lines by `status_changed_at` (partial, status terminated,
transferred or ported out); `line_period` by `end` (`ix_line_period_ends`,
as `ix_line_period_end` is line.period_end's); and `audit_entry` by
(action, at), which replaces the indexes on action alone and on `at` alone
(no query reads records by time without their action, and the planner took
the index on `at` for the day's activations, reading every record of the
window).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENDED = "status IN ('terminated', 'transferred', 'ported_out')"

BACKFILL = """
UPDATE line SET
    service_started_at = (SELECT min(p.start) FROM line_period AS p WHERE p.line_id = line.id),
    period_gap_at = (
        SELECT min(p.start) FROM line_period AS p
        WHERE p.line_id = line.id
          AND p.start > (SELECT min(f.start) FROM line_period AS f WHERE f.line_id = line.id)
          AND NOT EXISTS (
              SELECT 1 FROM line_period AS q WHERE q.line_id = line.id AND q."end" = p.start
          )
    )
WHERE EXISTS (SELECT 1 FROM line_period AS p WHERE p.line_id = line.id)
"""


def upgrade() -> None:
    with op.batch_alter_table("line", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("service_started_at", app.core.db.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("period_gap_at", app.core.db.UTCDateTime(), nullable=True))

    op.execute(BACKFILL)
    with op.batch_alter_table("line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_line_service_started_at"), ["service_started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_line_period_gap_at"), ["period_gap_at"], unique=False)
        batch_op.create_index(
            "ix_line_ended_status_changed_at",
            ["status_changed_at"],
            unique=False,
            sqlite_where=sa.text(ENDED),
            postgresql_where=sa.text(ENDED),
        )

    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE line")  # the new columns' statistics, for the planner to use them

    with op.batch_alter_table("line_period", schema=None) as batch_op:
        batch_op.create_index("ix_line_period_ends", ["end"], unique=False)

    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entry_action_at", ["action", "at"], unique=False)
        batch_op.drop_index(batch_op.f("ix_audit_entry_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entry_action"))


def downgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_at"), ["at"], unique=False)
        batch_op.drop_index("ix_audit_entry_action_at")

    with op.batch_alter_table("line_period", schema=None) as batch_op:
        batch_op.drop_index("ix_line_period_ends")

    with op.batch_alter_table("line", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_line_ended_status_changed_at",
            sqlite_where=sa.text(ENDED),
            postgresql_where=sa.text(ENDED),
        )
        batch_op.drop_index(batch_op.f("ix_line_period_gap_at"))
        batch_op.drop_index(batch_op.f("ix_line_service_started_at"))
    # Not in a batch: SQLite drops a plain column in place, where a batch would copy
    # `line` and trip over the foreign keys that point at it.
    op.drop_column("line", "period_gap_at")
    op.drop_column("line", "service_started_at")
