"""Usage records, rejects and imports; settlement runs and disputes; arrears

`usage_file` is one import of a host's usage file (UNIQUE host and
SHA-256: the same file twice is a no-op) or a reprocessing run; its counts
add up (CHECK rows = charged + duplicates + rejected). `usage_record` holds
each charged record with its line, period and rating; on PostgreSQL it is
partitioned by RANGE of `start_time`, one partition per month created by
the importer ahead of use, and its key (host, record id, start time) holds
the partition column as PostgreSQL requires. `usage_reject` keeps unusable
rows for reprocessing. `settlement_run` keeps each settlement export or
reconciliation with its files; `settlement_dispute` each difference beyond
tolerance. `arrears_suspension` records lines suspended while late usage
leaves the customer below zero. `host_carrier` gains its usage-file column
mapping and reconciliation tolerances (existing hosts: default columns,
zero tolerance).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_record",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("start_time", app.core.db.UTCDateTime(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("within", sa.BigInteger(), nullable=False),
        sa.Column("over", sa.BigInteger(), nullable=False),
        sa.Column("charge_minor", sa.BigInteger(), nullable=False),
        sa.Column("called_number", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("host_id", "record_id", "start_time", name=op.f("pk_usage_record")),
        postgresql_partition_by="RANGE (start_time)",
    )
    with op.batch_alter_table("usage_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_record_line_id", ["line_id"], unique=False
        )

    op.create_table(
        "settlement_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("total_minor", sa.Integer(), nullable=False),
        sa.Column("invoice_total_minor", sa.Integer(), nullable=True),
        sa.Column("discrepancies", sa.Integer(), nullable=False),
        sa.Column("csv_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("csv_text", sa.Text(), nullable=False),
        sa.Column("json_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("json_text", sa.Text(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('export', 'reconcile')", name=op.f("ck_settlement_run_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["host_carrier.id"], name=op.f("fk_settlement_run_host_id_host_carrier")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_run")),
    )
    with op.batch_alter_table("settlement_run", schema=None) as batch_op:
        batch_op.create_index("ix_settlement_run_host_id_month", ["host_id", "month"], unique=False)

    op.create_table(
        "usage_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("header", sa.Text(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("charged", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("charge_minor", sa.Integer(), nullable=False),
        sa.Column("first_start", app.core.db.UTCDateTime(), nullable=True),
        sa.Column("last_start", app.core.db.UTCDateTime(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('file', 'reprocess')", name=op.f("ck_usage_file_kind_known")),
        sa.CheckConstraint(
            "rows_total = charged + duplicates + rejected", name=op.f("ck_usage_file_counts_add_up")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["host_carrier.id"], name=op.f("fk_usage_file_host_id_host_carrier")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_file")),
        sa.UniqueConstraint("host_id", "sha256", name=op.f("uq_usage_file_host_id_sha256")),
    )
    with op.batch_alter_table("usage_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_file_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_usage_file_host_id"), ["host_id"], unique=False)

    op.create_table(
        "settlement_dispute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("our_quantity", sa.BigInteger(), nullable=False),
        sa.Column("invoice_quantity", sa.BigInteger(), nullable=False),
        sa.Column("our_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("invoice_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", app.core.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'resolved')", name=op.f("ck_settlement_dispute_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["host_carrier.id"],
            name=op.f("fk_settlement_dispute_host_id_host_carrier"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["settlement_run.id"],
            name=op.f("fk_settlement_dispute_run_id_settlement_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_dispute")),
    )
    with op.batch_alter_table("settlement_dispute", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlement_dispute_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_settlement_dispute_status", ["status"], unique=False)

    op.create_table(
        "usage_reject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("record_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("resolved_file_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", app.core.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'resolved')", name=op.f("ck_usage_reject_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["usage_file.id"], name=op.f("fk_usage_reject_file_id_usage_file")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["host_carrier.id"], name=op.f("fk_usage_reject_host_id_host_carrier")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_file_id"],
            ["usage_file.id"],
            name=op.f("fk_usage_reject_resolved_file_id_usage_file"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_reject")),
    )
    with op.batch_alter_table("usage_reject", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_reject_file_id"), ["file_id"], unique=False)
        batch_op.create_index("ix_usage_reject_host_id_status", ["host_id", "status"], unique=False)

    op.create_table(
        "arrears_suspension",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("balance_minor", sa.Integer(), nullable=False),
        sa.Column("suspended_at", app.core.db.UTCDateTime(), nullable=False),
        sa.Column("resumed_at", app.core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_arrears_suspension_customer_id_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["line_id"], ["line.id"], name=op.f("fk_arrears_suspension_line_id_line")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arrears_suspension")),
    )
    with op.batch_alter_table("arrears_suspension", schema=None) as batch_op:
        batch_op.create_index(
            "ix_arrears_suspension_customer_id_resumed_at",
            ["customer_id", "resumed_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_arrears_suspension_line_id"), ["line_id"], unique=False
        )

    with op.batch_alter_table("host_carrier", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cdr_columns", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "reconcile_amount_tolerance_minor", sa.Integer(), nullable=False, server_default="0"
            )
        )
        batch_op.add_column(
            sa.Column(
                "reconcile_quantity_tolerance_bp", sa.Integer(), nullable=False, server_default="0"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("host_carrier", schema=None) as batch_op:
        batch_op.drop_column("reconcile_quantity_tolerance_bp")
        batch_op.drop_column("reconcile_amount_tolerance_minor")
        batch_op.drop_column("cdr_columns")

    with op.batch_alter_table("arrears_suspension", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_arrears_suspension_line_id"))
        batch_op.drop_index("ix_arrears_suspension_customer_id_resumed_at")

    op.drop_table("arrears_suspension")
    with op.batch_alter_table("usage_reject", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_reject_host_id_status")
        batch_op.drop_index(batch_op.f("ix_usage_reject_file_id"))

    op.drop_table("usage_reject")
    with op.batch_alter_table("settlement_dispute", schema=None) as batch_op:
        batch_op.drop_index("ix_settlement_dispute_status")
        batch_op.drop_index(batch_op.f("ix_settlement_dispute_run_id"))

    op.drop_table("settlement_dispute")
    with op.batch_alter_table("usage_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_file_host_id"))
        batch_op.drop_index(batch_op.f("ix_usage_file_created_at"))

    op.drop_table("usage_file")
    with op.batch_alter_table("settlement_run", schema=None) as batch_op:
        batch_op.drop_index("ix_settlement_run_host_id_month")

    op.drop_table("settlement_run")
    with op.batch_alter_table("usage_record", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_record_line_id")

    op.drop_table("usage_record")  # with its partitions
