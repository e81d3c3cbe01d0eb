"""The SLA calendar: public holidays and make-up working days

`sla_day` amends the SLA working week (Monday to Friday, 09:00–18:00 in
`TIMEZONE`, app/care/sla.py), one row per local date (PRIMARY KEY `day`):
`holiday`, a day without working hours (the Spring Festival week), or
`workday`, a Saturday or Sunday with working hours 09:00–18:00 (a make-up
working day, 调休). Named CHECKs: known kind; known source (`public`,
loaded from a country's public holidays, or `staff`); a name of 1 to 100
characters. It starts empty, so SLA arithmetic is as before until days are
loaded (`mvno care holidays load`) or added; due instants already set are
not recomputed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("updated_at", app.core.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('holiday', 'workday')", name=op.f("ck_sla_day_kind_known")
        ),
        sa.CheckConstraint(
            "source IN ('public', 'staff')", name=op.f("ck_sla_day_source_known")
        ),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 100", name=op.f("ck_sla_day_name_length")
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_sla_day")),
    )


def downgrade() -> None:
    op.drop_table("sla_day")
