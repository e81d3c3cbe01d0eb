"""Payment tables: payments, refunds, Stripe events, vouchers.

Payments and refunds:

* A `payment` is money coming in: by Stripe Checkout (`stripe`), or
  recorded by finance staff (`cash`, `bank_transfer`). Our row is written
  and committed first; its id is the idempotency key of the Checkout
  Session created at Stripe, so a retry after a crash gets the same session.
  Status: created → pending (at Stripe) → succeeded | failed | expired.
  `credited_minor` is what reached the prepaid balance; the rest of a
  succeeded payment went to refunds payable (the cap) and has a refund.
* A `refund` is money going out, always from refunds payable: status
  pending (queued, not yet sent) → processing (sent to Stripe, waiting) →
  succeeded | failed; a failed refund is retried or paid out by hand
  (`paid_offline`) by finance staff. Its id is Stripe's idempotency key.
* `stripe_event` keeps every webhook event id (primary key), written in
  the same transaction as its effect, so a redelivered event does nothing.

Vouchers:

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

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime
from app.core.errors import N_

VOUCHER_STATUSES = ("available", "redeemed", "void")
PAYMENT_METHODS = ("stripe", "cash", "bank_transfer")
PAYMENT_PURPOSES = ("topup", "purchase")
PAYMENT_STATUSES = ("created", "pending", "succeeded", "failed", "expired")
REFUND_REASONS = ("cap_excess", "staff", "exit", "termination")
REFUND_STATUSES = ("pending", "processing", "succeeded", "failed", "paid_offline")
FINAL_REFUND_STATUSES = ("succeeded", "paid_offline")

# Shown to people; the catalogs translate them.
PAYMENT_METHOD_LABELS = {
    "stripe": N_("card (Stripe)"),
    "cash": N_("cash"),
    "bank_transfer": N_("bank transfer"),
}
PAYMENT_STATUS_LABELS = {
    "created": N_("created"),
    "pending": N_("awaiting payment"),
    "succeeded": N_("paid"),
    "failed": N_("failed"),
    "expired": N_("expired"),
}
REFUND_REASON_LABELS = {
    "cap_excess": N_("above the prepayment cap"),
    "staff": N_("staff refund"),
    "exit": N_("service exit"),
    "termination": N_("line ended"),
}
REFUND_STATUS_LABELS = {
    "pending": N_("queued"),
    "processing": N_("processing"),
    "succeeded": N_("refunded"),
    "failed": N_("failed"),
    "paid_offline": N_("paid by hand"),
}
VOUCHER_STATUS_LABELS = {
    "available": N_("available"),
    "redeemed": N_("redeemed"),
    "void": N_("void"),
}


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "payment_method": PAYMENT_METHOD_LABELS,
    "payment_status": PAYMENT_STATUS_LABELS,
    "refund_reason": REFUND_REASON_LABELS,
    "refund_status": REFUND_STATUS_LABELS,
    "voucher_status": VOUCHER_STATUS_LABELS,
}


def _known(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Payment(SQLModel, table=True):
    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(_known("method", PAYMENT_METHODS), name="method_known"),
        CheckConstraint(_known("purpose", PAYMENT_PURPOSES), name="purpose_known"),
        CheckConstraint(_known("status", PAYMENT_STATUSES), name="status_known"),
        CheckConstraint(
            "credited_minor >= 0 AND credited_minor <= amount_minor", name="credited_in_range"
        ),
        UniqueConstraint("method", "reference"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    method: str = Field(max_length=20)
    purpose: str = Field(default="topup", max_length=20)
    status: str = Field(default="created", max_length=20, index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    credited_minor: int = 0
    # Offline: the bank or receipt reference (unique per method). Stripe: None.
    reference: str | None = Field(default=None, max_length=200)
    stripe_session_id: str | None = Field(default=None, max_length=255, unique=True)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255, index=True)
    checkout_url: str | None = Field(default=None, max_length=2000)
    journal_entry_id: int | None = Field(default=None, foreign_key="journal_entry.id")
    memo: str = Field(default="", max_length=500)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Refund(SQLModel, table=True):
    __tablename__ = "refund"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(_known("reason", REFUND_REASONS), name="reason_known"),
        CheckConstraint(_known("status", REFUND_STATUSES), name="status_known"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    # The payment the money goes back to; None when there is none to refund
    # to (paid out by hand).
    payment_id: int | None = Field(default=None, foreign_key="payment.id", index=True)
    reason: str = Field(max_length=20)
    status: str = Field(default="pending", max_length=20, index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    stripe_refund_id: str | None = Field(default=None, max_length=255, unique=True)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    note: str = Field(default="", max_length=500)
    journal_entry_id: int | None = Field(default=None, foreign_key="journal_entry.id")
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class StripeEvent(SQLModel, table=True):
    """A webhook event already handled: its id is the primary key."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    outcome: str = Field(default="", max_length=200)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


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
