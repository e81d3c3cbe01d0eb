"""The market exit and what it decided for every line and customer (DESIGN §12).

A `MarketExit` moves draft → announced → executed → completed, or to
cancelled from draft or announced. At most one exit is in progress (not
cancelled) at a time: `plan` refuses a second one while another is draft,
announced, executed or completed. The exit instant `exit_at` is 00:00 of
`exit_date` in `TIMEZONE`, kept in UTC.

* `ExitChoice` is a subscriber's choice for one line — transfer to the host
  or terminate and refund — changeable until the exit instant, by the
  subscriber in self-care or by staff on the subscriber's word (audited,
  with the agent's note). No choice means terminate.
* `ExitLine` and `ExitCustomer` are written by the execution, in its one
  transaction: each line's outcome and the unused value of its period past
  the instant; each customer's balance before, and where the money went
  (refunded, carried to the host, written off). The files of the exit are
  built from them, so a rerun writes the same bytes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

EXIT_STATES = ("draft", "announced", "executed", "completed", "cancelled")
# States of an exit that is going ahead or has happened: at most one such exit.
LIVE_EXIT_STATES = ("draft", "announced", "executed", "completed")
CHOICES = ("transfer", "terminate")
OUTCOMES = ("transferred", "terminated")
BALANCE_POLICIES = ("refund", "carry")
DEFAULT_NOTICE_DAYS = 90
MIN_NOTICE_DAYS = 30
# Ten years: a longer notice is a typing error, not a plan.
MAX_NOTICE_DAYS = 3650

EXIT_STATE_LABELS = {
    "draft": N_("draft"),
    "announced": N_("announced"),
    "executed": N_("executed"),
    "completed": N_("completed"),
    "cancelled": N_("cancelled"),
}
CHOICE_LABELS = {
    "transfer": N_("transfer to the host"),
    "terminate": N_("terminate and refund"),
}
LABELS: dict[str, dict[str, str]] = {
    "exit_state": EXIT_STATE_LABELS,
    "exit_choice": CHOICE_LABELS,
}


class MarketExit(SQLModel, table=True):
    """The reseller leaving the market on `exit_date`."""

    __tablename__ = "market_exit"
    __table_args__ = (
        CheckConstraint(in_check("state", EXIT_STATES), name="state_known"),
        CheckConstraint(in_check("balance_policy", BALANCE_POLICIES), name="policy_known"),
        CheckConstraint(f"notice_days >= {MIN_NOTICE_DAYS}", name="notice_long_enough"),
    )

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default="draft", max_length=12, index=True)
    exit_date: date
    exit_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    notice_days: int = Field(default=DEFAULT_NOTICE_DAYS)
    # EXIT_BALANCE_POLICY as it was when the exit was executed.
    balance_policy: str = Field(default="refund", max_length=8)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_by: str = Field(default="", max_length=200)
    announced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    announced_by: str = Field(default="", max_length=200)
    executed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_by: str = Field(default="", max_length=200)
    # What the execution found and did (the `exit execute --json` figures).
    summary: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class ExitChoice(SQLModel, table=True):
    """A subscriber's choice for one line at an exit (the latest one counts)."""

    __tablename__ = "exit_choice"
    __table_args__ = (
        UniqueConstraint("exit_id", "line_id"),
        CheckConstraint(in_check("choice", CHOICES), name="choice_known"),
        CheckConstraint("given_by IN ('customer', 'staff')", name="given_by_known"),
    )

    id: int | None = Field(default=None, primary_key=True)
    exit_id: int = Field(foreign_key="market_exit.id")
    line_id: int = Field(foreign_key="line.id", index=True)
    choice: str = Field(max_length=10)
    given_by: str = Field(max_length=10)
    actor_label: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=1000)
    chosen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ExitLine(SQLModel, table=True):
    """What the execution did with one line."""

    __tablename__ = "exit_line"
    __table_args__ = (
        UniqueConstraint("exit_id", "line_id"),
        CheckConstraint(in_check("outcome", OUTCOMES), name="outcome_known"),
        CheckConstraint("unused_minor >= 0 AND carried_minor >= 0", name="amounts_not_negative"),
        Index("ix_exit_line_exit_id_customer_id", "exit_id", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    exit_id: int = Field(foreign_key="market_exit.id")
    line_id: int = Field(foreign_key="line.id")
    customer_id: int = Field(foreign_key="customer.id")
    msisdn: str = Field(max_length=20)
    plan_code: str = Field(max_length=40)
    status_before: str = Field(max_length=12)
    outcome: str = Field(max_length=12)
    currency: str = Field(max_length=3)
    # Unused value of the line's period past the exit instant (DESIGN §12).
    unused_minor: int = 0
    # Money that goes to the host with the line (EXIT_BALANCE_POLICY=carry).
    carried_minor: int = 0


class ExitCustomer(SQLModel, table=True):
    """Where one customer's prepaid money went at the execution, in one currency."""

    __tablename__ = "exit_customer"
    __table_args__ = (
        UniqueConstraint("exit_id", "customer_id", "currency"),
        CheckConstraint(
            "unused_minor >= 0 AND refund_minor >= 0 AND carried_minor >= 0"
            " AND written_off_minor >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint(
            "refund_minor + carried_minor = unused_minor"
            " + CASE WHEN balance_minor > 0 THEN balance_minor ELSE 0 END",
            name="all_money_accounted",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    exit_id: int = Field(foreign_key="market_exit.id")
    customer_id: int = Field(foreign_key="customer.id")
    currency: str = Field(max_length=3)
    # The prepaid balance just before the execution (negative: arrears).
    balance_minor: int = 0
    unused_minor: int = 0
    refund_minor: int = 0
    carried_minor: int = 0
    written_off_minor: int = 0
    # Refunds paid back to card payments, and the rest left for finance to pay by hand.
    refunded_to_cards_minor: int = 0
    refund_by_hand_minor: int = 0
