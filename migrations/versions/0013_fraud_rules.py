"""Per-line daily usage, fraud rule settings and fraud alerts

`line_usage_day` (app/charging) holds what a line used per local day —
billable data KB, voice seconds, SMS, outgoing voice calls, incoming calls
from our own lines, and what was used within 24 h of activation — summed by
rating in each import's transaction; PRIMARY KEY (line_id, day), CHECK that
no count is negative. It starts empty: days are built by imports from this
revision on (earlier usage is not summed back), so the median rule waits
for its days of history. `fraud_rule` (app/analytics) keeps an edited rule's
switches and thresholds (JSON), CHECK known rule; a rule without a row runs
with its defaults. `fraud_alert` is one finding, UNIQUE per (rule, subject,
day) so scans raise it once; CHECK known rule and status, and a line on
every alert but the voucher rule's.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fraud_rule",
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("auto_suspend", sa.Boolean(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("updated_at", app.core.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "rule IN ('usage_spike', 'sim_box', 'new_line_burst', 'voucher_failures')",
            name=op.f("ck_fraud_rule_rule_known"),
        ),
        sa.PrimaryKeyConstraint("rule", name=op.f("pk_fraud_rule")),
    )
    op.create_table(
        "line_usage_day",
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("data_kb", sa.BigInteger(), nullable=False),
        sa.Column("voice_s", sa.BigInteger(), nullable=False),
        sa.Column("sms", sa.Integer(), nullable=False),
        sa.Column("voice_calls", sa.Integer(), nullable=False),
        sa.Column("incoming_calls", sa.Integer(), nullable=False),
        sa.Column("early_data_kb", sa.BigInteger(), nullable=False),
        sa.Column("early_voice_s", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "data_kb >= 0 AND voice_s >= 0 AND sms >= 0 AND voice_calls >= 0 AND incoming_calls >= 0 AND early_data_kb >= 0 AND early_voice_s >= 0",
            name=op.f("ck_line_usage_day_counts_not_negative"),
        ),
        sa.PrimaryKeyConstraint("line_id", "day", name=op.f("pk_line_usage_day")),
    )
    with op.batch_alter_table("line_usage_day", schema=None) as batch_op:
        batch_op.create_index("ix_line_usage_day_day", ["day"], unique=False)

    op.create_table(
        "fraud_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("suspended_at", app.core.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.Column("status_changed_at", app.core.db.UTCDateTime(), nullable=True),
        sa.Column(
            "status_changed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False
        ),
        sa.CheckConstraint(
            "line_id IS NOT NULL OR rule = 'voucher_failures'",
            name=op.f("ck_fraud_alert_line_unless_vouchers"),
        ),
        sa.CheckConstraint(
            "rule IN ('usage_spike', 'sim_box', 'new_line_burst', 'voucher_failures')",
            name=op.f("ck_fraud_alert_rule_known"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'dismissed')",
            name=op.f("ck_fraud_alert_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_fraud_alert_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(["line_id"], ["line.id"], name=op.f("fk_fraud_alert_line_id_line")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_fraud_alert_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_alert")),
        sa.UniqueConstraint("rule", "subject", "day", name=op.f("uq_fraud_alert_rule_subject_day")),
    )
    with op.batch_alter_table("fraud_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fraud_alert_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_fraud_alert_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_fraud_alert_line_id"), ["line_id"], unique=False)
        batch_op.create_index("ix_fraud_alert_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fraud_alert", schema=None) as batch_op:
        batch_op.drop_index("ix_fraud_alert_status_id")
        batch_op.drop_index(batch_op.f("ix_fraud_alert_line_id"))
        batch_op.drop_index(batch_op.f("ix_fraud_alert_customer_id"))
        batch_op.drop_index(batch_op.f("ix_fraud_alert_created_at"))

    op.drop_table("fraud_alert")
    with op.batch_alter_table("line_usage_day", schema=None) as batch_op:
        batch_op.drop_index("ix_line_usage_day_day")

    op.drop_table("line_usage_day")
    op.drop_table("fraud_rule")
