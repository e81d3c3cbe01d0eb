"""Entry tags, system accounts' activity per quarter-hour, usage per quarter-hour

`journal_entry.tag` says what an entry's money was for (app/ledger/activity.py):
`plan:<CODE>` for a plan's sale, `addon` for an add-on, "" otherwise. Existing
entries are tagged by what pointed at them: an add-on bought with the entry,
else the plan of the store order, else the plan of the period it paid for.

`ledger_activity` sums the postings to every system account per (account,
quarter-hour of the entry's `at`, tag); `usage_quarter_hour` sums the usage
records per (host, service, quarter-hour of start). Both are kept by the
posting functions and the importer in their own transactions from this
revision on, and are summed here from what exists, set-based.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table pointing at the entry, tag) in order: the first that applies wins.
_TAG_FROM = (
    ("SELECT entry_id, 'addon' AS tag FROM period_addon GROUP BY entry_id", "addon"),
    (
        "SELECT x.entry_id, min(substr('plan:' || p.code, 1, 60)) AS tag FROM purchase_order x"
        " JOIN plan p ON p.id = x.plan_id WHERE x.entry_id IS NOT NULL GROUP BY x.entry_id",
        "order",
    ),
    (
        "SELECT x.entry_id, min(substr('plan:' || p.code, 1, 60)) AS tag FROM line_period x"
        " JOIN plan p ON p.id = x.plan_id WHERE x.entry_id IS NOT NULL GROUP BY x.entry_id",
        "period",
    ),
)


def _bucket(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / 900) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER) / 900"


def upgrade() -> None:
    with op.batch_alter_table("journal_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "tag",
                sqlmodel.sql.sqltypes.AutoString(length=60),
                nullable=False,
                server_default="",
            )
        )
    for pointing, _what in _TAG_FROM:
        op.execute(
            f"UPDATE journal_entry SET tag = t.tag FROM ({pointing}) AS t"
            " WHERE t.entry_id = journal_entry.id AND journal_entry.tag = ''"
        )

    op.create_table(
        "ledger_activity",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("postings", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_account.id"],
            name=op.f("fk_ledger_activity_account_id_ledger_account"),
        ),
        sa.PrimaryKeyConstraint("account_id", "bucket", "tag", name=op.f("pk_ledger_activity")),
    )
    op.execute(
        "INSERT INTO ledger_activity (account_id, bucket, tag, amount_minor, postings)"
        f" SELECT p.account_id, {_bucket('e.at')}, e.tag, sum(p.amount_minor), count(*)"
        " FROM posting p JOIN journal_entry e ON e.id = p.entry_id"
        " JOIN ledger_account a ON a.id = p.account_id"
        " WHERE a.kind <> 'customer_prepaid' GROUP BY 1, 2, 3"
    )

    op.create_table(
        "usage_quarter_hour",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("host_id", "service", "bucket", name=op.f("pk_usage_quarter_hour")),
    )
    op.execute(
        "INSERT INTO usage_quarter_hour (host_id, service, bucket, quantity, records)"
        f" SELECT host_id, service, {_bucket('start_time')}, sum(quantity), count(*)"
        " FROM usage_record GROUP BY 1, 2, 3"
    )


def downgrade() -> None:
    op.drop_table("usage_quarter_hour")
    op.drop_table("ledger_activity")
    with op.batch_alter_table("journal_entry", schema=None) as batch_op:
        batch_op.drop_column("tag")
