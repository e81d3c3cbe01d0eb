"""Double-entry prepaid ledger tables (DESIGN §5).

* An account is identified by (kind, scope, currency): `scope` is
  `customer:<id>` for a customer's account and `system` otherwise, so the
  uniqueness holds for system accounts too (a NULL customer id would defeat
  a plain UNIQUE).
* An entry's postings sum to zero; a posting is never zero (named CHECK).
  On PostgreSQL a deferred constraint trigger checks the sum at commit.
* Entries are append-only; `idempotency_key` is UNIQUE, and `request_hash`
  fingerprints the payload so the same key with different postings is
  recognised as a conflict, not replayed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime

ACCOUNT_KINDS = (
    "customer_prepaid",
    "cash_offline",
    "cash_stripe",
    "revenue_plans",
    "revenue_usage",
    "refunds_payable",
    "host_payable",
    "voucher_float",
    "adjustments",
)
CUSTOMER_KINDS = ("customer_prepaid",)
_KINDS_SQL = ", ".join(f"'{kind}'" for kind in ACCOUNT_KINDS)


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_account"
    __table_args__ = (
        UniqueConstraint("kind", "scope", "currency"),
        CheckConstraint(f"kind IN ({_KINDS_SQL})", name="kind_known"),
        CheckConstraint(
            "(kind = 'customer_prepaid') = (customer_id IS NOT NULL)", name="customer_scoped"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    scope: str = Field(max_length=40)
    currency: str = Field(max_length=3)
    # 64-bit: a system account (cash) sums every customer's money.
    balance_minor: int = Field(default=0, sa_type=BigInteger)


class JournalEntry(SQLModel, table=True):
    __tablename__ = "journal_entry"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    request_hash: str = Field(max_length=64)
    external_ref: str | None = Field(default=None, max_length=200)
    actor_kind: str = Field(max_length=20)
    actor_id: int | None = None
    actor_label: str = Field(default="", max_length=200)
    memo: str = Field(default="", max_length=500)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    # What the money was for (app/ledger/activity.py): "plan:<CODE>", "addon" or "".
    tag: str = Field(default="", max_length=60)


class Posting(SQLModel, table=True):
    __tablename__ = "posting"
    __table_args__ = (CheckConstraint("amount_minor <> 0", name="amount_not_zero"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="journal_entry.id", index=True)
    account_id: int = Field(foreign_key="ledger_account.id", index=True)
    amount_minor: int


class LedgerActivity(SQLModel, table=True):
    """The postings to a system account per quarter-hour and tag (app/ledger/activity.py).

    Kept by the posting functions in the posting's transaction, so the
    figures read a few rows per day instead of every posting.
    """

    __tablename__ = "ledger_activity"

    account_id: int = Field(foreign_key="ledger_account.id", primary_key=True)
    # Quarter-hours since 1970-01-01T00:00Z of the entries' `at`.
    bucket: int = Field(primary_key=True)
    tag: str = Field(default="", max_length=60, primary_key=True)
    amount_minor: int = Field(default=0, sa_type=BigInteger)
    postings: int = 0
