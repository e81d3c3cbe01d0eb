"""What is owed to whom when lines end (DESIGN §12): the one refund arithmetic.

For every line not ended, at the instant `at`:

    refund = max(balance, 0) + unused value of its periods past `at`

where the balance is its customer's prepaid balance (counted once per
customer and currency, whatever its number of lines) and the unused value
is `app.charging.unused_value` (round_half_up of price × time left /
validity, per period). A negative balance (arrears) is written off, never
refunded or carried.

`EXIT_BALANCE_POLICY`:

* `refund` — every customer is refunded, transferred or not.
* `carry` — a customer with a line transferred to the host carries, in that
  currency, its positive balance and the unused value of its transferred
  lines to the host (in the handover file, on its first transferred line);
  the unused value of its terminated lines is refunded.

So for every customer and currency: refund + carried = max(balance, 0) +
unused — the invariant the execution checks. The market exit
(`exit_breakdown`), its preview in the console and a single line's
termination or port-out (`line_refund`) all use these functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.charging.unused_value import unused_periods
from app.ledger.balances import prepaid_balances
from app.subscribers.models import FINAL_LINE_STATUSES, Line
from plans.models import Plan


@dataclass
class LineOwed:
    """One line at the exit: what becomes of it and the unused value of its periods."""

    line_id: int
    customer_id: int
    msisdn: str
    plan_code: str
    status: str
    currency: str
    outcome: str = "terminated"
    unused_minor: int = 0
    carried_minor: int = 0


@dataclass
class CustomerOwed:
    """One customer's money in one currency at the exit, and where it goes."""

    customer_id: int
    currency: str
    balance_minor: int = 0
    unused_minor: int = 0
    refund_minor: int = 0
    carried_minor: int = 0

    @property
    def written_off_minor(self) -> int:
        """Arrears written off (a negative balance)."""
        return max(-self.balance_minor, 0)

    @property
    def owed_minor(self) -> int:
        """The positive balance and the unused value: what the customer is owed."""
        return max(self.balance_minor, 0) + self.unused_minor


@dataclass
class Breakdown:
    """Every line and customer an exit ends, with totals (minor units, all currencies)."""

    at: datetime
    lines: list[LineOwed] = field(default_factory=list)
    customers: list[CustomerOwed] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """Lines ending with `outcome`."""
        return sum(line.outcome == outcome for line in self.lines)

    @property
    def refunds_minor(self) -> int:
        return sum(c.refund_minor for c in self.customers)

    @property
    def carried_minor(self) -> int:
        return sum(c.carried_minor for c in self.customers)

    @property
    def liability_minor(self) -> int:
        """Positive balances + unused value: what is owed before the exit."""
        return sum(c.owed_minor for c in self.customers)

    @property
    def written_off_minor(self) -> int:
        return sum(c.written_off_minor for c in self.customers)


def live_lines(session: Session, *, customer_ids: list[int] | None = None) -> list[LineOwed]:
    """Every line not ended (of `customer_ids`, or all), in id order."""
    query = (
        sa_select(
            col(Line.id),
            col(Line.customer_id),
            col(Line.msisdn),
            col(Plan.code),
            col(Line.status),
            col(Plan.currency),
        )
        .join(Plan, col(Plan.id) == col(Line.plan_id))
        .where(col(Line.status).not_in(FINAL_LINE_STATUSES))
        .order_by(col(Line.id))
    )
    if customer_ids is not None:
        query = query.where(col(Line.customer_id).in_(customer_ids))
    return [
        LineOwed(
            line_id=line_id,
            customer_id=customer_id,
            msisdn=msisdn,
            plan_code=code,
            status=status,
            currency=currency,
        )
        for line_id, customer_id, msisdn, code, status, currency in session.execute(query)
    ]


def settle(
    lines: list[LineOwed],
    balances: Mapping[tuple[int, str], int],
    *,
    carry: bool,
    at: datetime,
) -> Breakdown:
    """Where the money of `lines` (outcomes and unused values set) and `balances` goes.

    Pure arithmetic: every (customer, currency) with a line or a balance
    gets a `CustomerOwed` with refund + carried = max(balance, 0) + unused.
    """
    owed: dict[tuple[int, str], CustomerOwed] = {}
    for (customer_id, currency), balance in sorted(balances.items()):
        owed[(customer_id, currency)] = CustomerOwed(customer_id, currency, balance_minor=balance)
    carriers: dict[tuple[int, str], LineOwed] = {}
    for line in lines:
        key = (line.customer_id, line.currency)
        customer = owed.setdefault(key, CustomerOwed(line.customer_id, line.currency))
        customer.unused_minor += line.unused_minor
        line.carried_minor = 0
        if carry and line.outcome == "transferred":
            line.carried_minor = line.unused_minor
            customer.carried_minor += line.unused_minor
            carriers.setdefault(key, line)
    for key, customer in owed.items():
        carrier = carriers.get(key)
        if carrier is not None:
            carrier.carried_minor += max(customer.balance_minor, 0)
            customer.carried_minor += max(customer.balance_minor, 0)
        customer.refund_minor = customer.owed_minor - customer.carried_minor
    ordered = sorted(owed.values(), key=lambda c: (c.customer_id, c.currency))
    return Breakdown(at=at, lines=lines, customers=ordered)


def exit_breakdown(
    session: Session, *, at: datetime, choices: Mapping[int, str], carry: bool
) -> Breakdown:
    """Every line not ended and every customer with money, as the exit at `at` would end them.

    `choices` is line id → "transfer" | "terminate"; a line without a
    choice is terminated. Balances are the cached ones (what is held now).
    """
    lines = live_lines(session)
    unused: dict[int, int] = defaultdict(int)
    for period in unused_periods(session, at=at):
        unused[period.line_id] += period.value_minor
    for line in lines:
        line.unused_minor = unused.get(line.line_id, 0)
        line.outcome = "transferred" if choices.get(line.line_id) == "transfer" else "terminated"
    balances = prepaid_balances(session, nonzero=True)
    return settle(lines, balances, carry=carry, at=at)


@dataclass(frozen=True)
class LineRefund:
    """What ending one line pays back: its unused value, and the balance if it was the last line.

    One line ending is not an exit: nothing is written off, so arrears (a
    negative balance, `arrears_minor`, whether or not other lines are left)
    are paid from the unused value first, as any credit pays them (DESIGN §5),
    and only what is left is refunded.
    """

    customer_id: int
    currency: str
    unused_minor: int
    balance_minor: int
    arrears_minor: int = 0

    @property
    def refund_minor(self) -> int:
        return max(self.unused_minor + max(self.balance_minor, 0) - self.arrears_minor, 0)


def line_refund(session: Session, *, line_id: int, at: datetime) -> LineRefund:
    """The refund of ending one line at `at` (termination or port-out), by §12's arithmetic.

    The customer's balance is refunded with the line only when it is the
    customer's last line not ended in that currency (the money belongs to
    the customer, whose other lines still draw on it); arrears are paid
    first (`LineRefund`).
    """
    line = session.get(Line, line_id)
    assert line is not None
    plan = session.get(Plan, line.plan_id)
    assert plan is not None
    unused = sum(p.value_minor for p in unused_periods(session, at=at, line_ids=[line_id]))
    others = [
        other
        for other in live_lines(session, customer_ids=[line.customer_id])
        if other.line_id != line_id and other.currency == plan.currency
    ]
    held = prepaid_balances(session, customer_ids=[line.customer_id]).get(
        (line.customer_id, plan.currency), 0
    )
    return LineRefund(
        customer_id=line.customer_id,
        currency=plan.currency,
        unused_minor=unused,
        balance_minor=0 if others else held,
        arrears_minor=max(-held, 0),
    )
