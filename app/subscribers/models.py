"""Customers and lines (DESIGN §10) — the minimum the ledger needs.

A customer (`C-0001`) holds money in the ledger and owns lines; a line is a
number on a plan with a status: `pending` → `active` ⇄ `suspended` →
`terminated` | `transferred` | `ported_out`. The last three are final: a
line in one of them no longer counts towards the prepayment cap. Each change
of status is one service of app/subscribers/lifecycle.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text, text
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime
from app.core.errors import N_

LINE_STATUSES = ("pending", "active", "suspended", "terminated", "transferred", "ported_out")
FINAL_LINE_STATUSES = ("terminated", "transferred", "ported_out")
_LIVE_SQL = "status IN ('pending', 'active', 'suspended')"
_FINAL_SQL = "status IN ('terminated', 'transferred', 'ported_out')"
# Shown to people; the catalogs translate them.
LINE_STATUS_LABELS = {
    "pending": N_("pending"),
    "active": N_("active"),
    "suspended": N_("suspended"),
    "terminated": N_("terminated"),
    "transferred": N_("transferred"),
    "ported_out": N_("ported out"),
}
# Identity documents accepted for real-name registration.
ID_TYPES = ("cn_ric", "passport")
ID_TYPE_LABELS = {"cn_ric": N_("Chinese resident ID card"), "passport": N_("passport")}
ORDER_STATUSES = ("awaiting_payment", "paid", "cancelled", "expired")
ORDER_STATUS_LABELS = {
    "awaiting_payment": N_("awaiting payment"),
    "paid": N_("paid"),
    "cancelled": N_("cancelled"),
    "expired": N_("expired"),
}
ORDER_PAYMENT_METHODS = ("stripe", "voucher", "store", "balance")


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "line_status": LINE_STATUS_LABELS,
    "id_type": ID_TYPE_LABELS,
    "order_status": ORDER_STATUS_LABELS,
}


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=20, unique=True)
    name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254)
    # The store login of this customer; at most one customer per login.
    subscriber_account_id: int | None = Field(
        default=None, foreign_key="subscriber_account.id", index=True, unique=True
    )
    # Real-name registration (DESIGN §10): the ID number is kept only
    # encrypted with PII_KEY (app/core/pii.py) plus a masked form for display.
    id_type: str | None = Field(default=None, max_length=10)
    id_number_enc: str | None = Field(default=None, sa_type=Text)
    id_number_masked: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Line(SQLModel, table=True):
    __tablename__ = "line"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'active', 'suspended', 'terminated', 'transferred',"
            " 'ported_out')",
            name="status_known",
        ),
        # A number has at most one line that is not final; a number back from
        # quarantine can be sold again while its ended lines stay on record.
        Index(
            "uq_line_live_msisdn",
            "msisdn",
            unique=True,
            sqlite_where=text(_LIVE_SQL),
            postgresql_where=text(_LIVE_SQL),
        ),
        # The ended lines, by when they ended: the dashboard's terminations and the
        # lines an exit's unused value leaves out.
        Index(
            "ix_line_ended_status_changed_at",
            "status_changed_at",
            sqlite_where=text(_FINAL_SQL),
            postgresql_where=text(_FINAL_SQL),
        ),
        # By number; on PostgreSQL with what a month's line count reads (settlement).
        Index(
            "ix_line_msisdn",
            "msisdn",
            postgresql_include=["service_started_at", "period_end", "period_gap_at"],
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    msisdn: str = Field(max_length=20)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    # The plan the next renewal switches to (a plan change waits for the renewal).
    next_plan_id: int | None = Field(default=None, foreign_key="plan.id", index=True)
    # The SIM or eSIM profile in use; None until one is assigned.
    sim_id: int | None = Field(default=None, foreign_key="sim.id", index=True, unique=True)
    status: str = Field(default="pending", max_length=12)
    auto_renew: bool = Field(default=True)
    # End of the line's latest period (app/charging): the renewal job's index.
    period_end: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # When the line's last renewal went unpaid (app/charging/renewals.py); None
    # while its periods are paid. The suspension is the renewal's own while
    # `status_changed_at` equals it (a staff resume or suspend moves that).
    renewal_failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status_changed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Start of the line's first period (app/charging): when its service began; None
    # until a period opens. Written with the periods, for the dashboard's counts.
    service_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # Start of the first period that did not open where the line's periods had ended
    # until then (a lapsed line renewed later); None while they run end to start, so
    # that together they cover `service_started_at` to `period_end` without a break.
    period_gap_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class PurchaseOrder(SQLModel, table=True):
    """A plan bought in the store: a held number, a SIM kind, and what is owed.

    `awaiting_payment` → `paid` (the price was debited from the buyer's
    prepaid balance and the pending line opened, `line_id`) | `cancelled` |
    `expired` (the number hold ran out). `total_minor` = plan price + the
    number's golden surcharge at the time of the order.
    """

    __tablename__ = "purchase_order"
    __table_args__ = (
        CheckConstraint(
            "status IN ('awaiting_payment', 'paid', 'cancelled', 'expired')", name="status_known"
        ),
        CheckConstraint("sim_kind IN ('physical', 'esim')", name="sim_kind_known"),
        CheckConstraint(
            "price_minor >= 0 AND surcharge_minor >= 0"
            " AND total_minor = price_minor + surcharge_minor",
            name="amounts_consistent",
        ),
        CheckConstraint("(status = 'paid') = (line_id IS NOT NULL)", name="paid_has_line"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=20, unique=True)
    account_id: int = Field(foreign_key="subscriber_account.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    plan_id: int = Field(foreign_key="plan.id")
    msisdn: str = Field(max_length=16, index=True)
    sim_kind: str = Field(max_length=10)
    status: str = Field(default="awaiting_payment", max_length=20)
    payment_method: str | None = Field(default=None, max_length=10)
    price_minor: int
    surcharge_minor: int = 0
    total_minor: int
    currency: str = Field(default="CNY", max_length=3)
    payment_id: int | None = Field(default=None, foreign_key="payment.id", index=True)
    line_id: int | None = Field(default=None, foreign_key="line.id", unique=True)
    entry_id: int | None = Field(default=None, foreign_key="journal_entry.id")
    hold_until: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
