"""Customers and lines (DESIGN §10) — the minimum the ledger needs.

A customer (`C-0001`) holds money in the ledger and owns lines; a line is a
number on a plan with a status: `pending` → `active` ⇄ `suspended` →
`terminated` | `transferred` | `ported_out`. The last three are final: a
line in one of them no longer counts towards the prepayment cap. Each change
of status is one service of app/subscribers/lifecycle.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime
from app.core.errors import N_

LINE_STATUSES = ("pending", "active", "suspended", "terminated", "transferred", "ported_out")
FINAL_LINE_STATUSES = ("terminated", "transferred", "ported_out")
# Shown to people; the catalogs translate them.
LINE_STATUS_LABELS = {
    "pending": N_("pending"),
    "active": N_("active"),
    "suspended": N_("suspended"),
    "terminated": N_("terminated"),
    "transferred": N_("transferred"),
    "ported_out": N_("ported out"),
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
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Line(SQLModel, table=True):
    __tablename__ = "line"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'active', 'suspended', 'terminated', 'transferred',"
            " 'ported_out')",
            name="status_known",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    msisdn: str = Field(max_length=20, unique=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    # The plan the next renewal switches to (a plan change waits for the renewal).
    next_plan_id: int | None = Field(default=None, foreign_key="plan.id", index=True)
    # The SIM or eSIM profile in use; None until one is assigned.
    sim_id: int | None = Field(default=None, foreign_key="sim.id", index=True, unique=True)
    status: str = Field(default="pending", max_length=12)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status_changed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
