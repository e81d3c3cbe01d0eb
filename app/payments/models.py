"""Voucher tables: batches, vouchers and redemption attempts.

* A batch is printed once: `create_voucher_batch` returns the PINs in clear
  and the database keeps only a salted scrypt hash of each (`pin_salt`,
  `pin_hash`), so a copy of the database does not give away spendable
  vouchers.
* `serial` is UNIQUE and printable (`V` + batch id + sequence); `status` is
  available | redeemed | void (named CHECK), `value_minor` is positive
  (named CHECK).
* A redeemed voucher names the customer and the journal entry that
  credited it; the entry's idempotency key `voucher:<id>` makes a second
  credit for the same voucher impossible.
* `voucher_attempt` records every redemption try for lockouts (like
  `login_attempt`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime

VOUCHER_STATUSES = ("available", "redeemed", "void")


class VoucherBatch(SQLModel, table=True):
    __tablename__ = "voucher_batch"
    __table_args__ = (
        CheckConstraint("value_minor > 0", name="value_positive"),
        CheckConstraint("count > 0", name="count_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    value_minor: int
    currency: str = Field(max_length=3)
    count: int
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Voucher(SQLModel, table=True):
    __tablename__ = "voucher"
    __table_args__ = (
        CheckConstraint("status IN ('available', 'redeemed', 'void')", name="status_known"),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="voucher_batch.id", index=True)
    serial: str = Field(max_length=40, unique=True)
    pin_salt: str = Field(max_length=32)
    pin_hash: str = Field(max_length=64)
    status: str = Field(default="available", max_length=20)
    redeemed_by_customer_id: int | None = Field(default=None, foreign_key="customer.id")
    redeemed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    journal_entry_id: int | None = Field(default=None, foreign_key="journal_entry.id")


class VoucherAttempt(SQLModel, table=True):
    """Every redemption try, for lockouts per customer and per address."""

    __tablename__ = "voucher_attempt"
    __table_args__ = (
        Index("ix_voucher_attempt_customer_id_at", "customer_id", "at"),
        Index("ix_voucher_attempt_ip_at", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    ip: str = Field(default="", max_length=64)
    success: bool
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
