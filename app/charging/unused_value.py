"""What prepaid money is still owed at an instant: positive balances and unused period value.

DESIGN §12 defines the refund of a line at an exit instant: its customer's
positive balance, plus — for a current period that runs past the instant —
`round_half_up(price × (period_end − instant) / (validity_days × 24 h))`.
This module is that arithmetic, used by the dashboard's "owed if we exited
today" and by the exit workflow, so both give the same figure.

* `unused_value_minor` is the pro-rated value of one period; the time left
  is counted to the microsecond, the plan's full validity in the divisor
  (a period shortened at an exit keeps the plan's rate).
* `owed_at` adds, set-based, every customer's positive prepaid balance
  (once per customer, whatever its number of lines) and the unused value of
  every line's period that contains the instant, for lines not yet ended —
  on PostgreSQL summed by the database in exact numerics (the same
  rounding, to the minor unit), on SQLite period by period here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Numeric, Select, case, cast, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.charging.models import LinePeriod
from app.core.money import round_half_up
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.models import LedgerAccount
from app.subscribers.models import Line
from plans.models import Plan

_Query = TypeVar("_Query", bound=Select)
ENDED_STATUSES = ("terminated", "transferred", "ported_out")
_MICROSECONDS_PER_DAY = 86_400 * 1_000_000


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def unused_value_minor(
    *, price_minor: int, validity_days: int, period_end: datetime, at: datetime
) -> int:
    """The value of a period not yet used at `at`: 0 once it has ended.

    round_half_up(price × (period_end − at) / (validity_days × 24 h)).
    """
    if period_end <= at or price_minor <= 0:
        return 0
    left = _micros(period_end - at)
    return round_half_up(price_minor * left, validity_days * _MICROSECONDS_PER_DAY)


@dataclass
class Owed:
    """What would be owed at `at`, in minor units per currency."""

    at: datetime
    positive_balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unused_periods: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    customers: int = 0
    lines: int = 0

    def total(self, currency: str) -> int:
        """Balances and unused periods together, in one currency."""
        return self.positive_balances.get(currency, 0) + self.unused_periods.get(currency, 0)

    @property
    def currencies(self) -> list[str]:
        """Every currency with something owed."""
        return sorted(set(self.positive_balances) | set(self.unused_periods))


def owed_at(session: Session, *, at: datetime) -> Owed:
    """Positive prepaid balances now, and the unused value of current periods at `at`.

    Balances are the accounts' cached balances (what is owed now); the
    periods are those containing `at`, of lines not ended.
    """
    owed = Owed(at=at)
    balances = session.execute(
        sa_select(col(LedgerAccount.currency), func.sum(LedgerAccount.balance_minor), func.count())
        .where(col(LedgerAccount.kind) == CUSTOMER_PREPAID, col(LedgerAccount.balance_minor) > 0)
        .group_by(col(LedgerAccount.currency))
    ).all()
    for currency, total, count in balances:
        owed.positive_balances[currency] = int(total or 0)
        owed.customers += int(count)
    if session.get_bind().dialect.name == "postgresql":
        _sum_unused_in_sql(session, at=at, owed=owed)
        return owed
    periods = session.execute(
        _current_periods(
            sa_select(
                col(LinePeriod.price_minor),
                col(LinePeriod.end),
                col(Plan.validity_days),
                col(Plan.currency),
            ),
            at,
        )
    ).all()
    for price, end, validity, currency in periods:
        value = unused_value_minor(price_minor=price, validity_days=validity, period_end=end, at=at)
        owed.unused_periods[currency] += value
        owed.lines += 1
    return owed


def _current_periods(query: _Query, at: datetime) -> _Query:
    """`query` over the periods containing `at` of lines not ended, with their plans."""
    return (
        query.select_from(LinePeriod)
        .join(Line, col(Line.id) == col(LinePeriod.line_id))
        .join(Plan, col(Plan.id) == col(LinePeriod.plan_id))
        .where(
            col(LinePeriod.start) <= at,
            col(LinePeriod.end) > at,
            col(Line.status).notin_(ENDED_STATUSES),
        )
    )


def _sum_unused_in_sql(session: Session, *, at: datetime, owed: Owed) -> None:
    """The unused value of the current periods per currency, summed by PostgreSQL.

    `unused_value_minor`'s arithmetic in exact numerics, so that a hundred
    thousand periods are not fetched one by one: the time left in
    microseconds (`extract(epoch …)` of an interval is exact to the
    microsecond) and round half up as the integer quotient
    ⌊(2 · price · left + full) / (2 · full)⌋, `full` the plan's validity in
    microseconds; a period without a price is worth nothing.
    """
    price = cast(col(LinePeriod.price_minor), Numeric)
    left = func.extract("epoch", col(LinePeriod.end) - at) * 1_000_000
    full = cast(col(Plan.validity_days), Numeric) * _MICROSECONDS_PER_DAY
    value = case((col(LinePeriod.price_minor) > 0, func.div(2 * price * left + full, 2 * full)))
    rows = session.execute(
        _current_periods(
            sa_select(col(Plan.currency), func.count(), func.coalesce(func.sum(value), 0)), at
        ).group_by(col(Plan.currency))
    ).all()
    for currency, count, total in rows:
        owed.unused_periods[currency] += int(total)
        owed.lines += int(count)
