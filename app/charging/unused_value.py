"""What prepaid money is still owed at an instant: positive balances and unused period value.

DESIGN §12 defines the refund of a line at an exit instant: its customer's
positive balance, plus — for a current period that runs past the instant —
`round_half_up(price × (period_end − instant) / (validity_days × 24 h))`.
This module is that arithmetic, used by the dashboard's "owed if we exited
today" and by the exit workflow, so both give the same figure.

* `unused_value_minor` is the pro-rated value of one period; the time left
  is counted to the microsecond, the plan's full validity in the divisor
  (a period shortened at an exit keeps the plan's rate).
* `unused_periods` is, set-based, every period not used up at the instant
  of lines not yet ended: the one containing it, any paid ahead after it
  (wholly unused: counted from its start), and the first period of a line
  bought in the store and still pending (paid by its order, not yet begun).
  The exit and a single line's termination refund them.
* `owed_at` adds every customer's positive prepaid balance (once per
  customer, whatever its number of lines) and those unused values — on
  PostgreSQL summed by the database in exact numerics (the same rounding,
  to the minor unit), on SQLite period by period here. The exit's
  invariant compares the two computations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import BigInteger, Numeric, Select, and_, case, cast, exists, func, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.charging.models import LinePeriod
from app.core.money import round_half_up
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.models import LedgerAccount
from app.subscribers.models import Line, PurchaseOrder
from plans.models import Plan

_Query = TypeVar("_Query", bound=Select)
ENDED_STATUSES = ("terminated", "transferred", "ported_out")
_MICROSECONDS_PER_DAY = 86_400 * 1_000_000
_CHUNK = 5000
# 2 · price · left + full stays below 2^63 when price ≤ 500,000, left ≤ 100 days and the
# validity ≤ 3,660 days: 2 · 5·10^5 · 8.64·10^12 + 3.2·10^14 < 8.65·10^18.
_INT8_PRICE_MAX = 500_000
_INT8_SPAN = timedelta(days=100)
_INT8_VALIDITY_DAYS = 3_660


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


@dataclass(frozen=True)
class UnusedPeriod:
    """The part of one line's period not used at an instant."""

    line_id: int
    customer_id: int
    currency: str
    value_minor: int


def unused_periods(
    session: Session, *, at: datetime, line_ids: Collection[int] | None = None
) -> list[UnusedPeriod]:
    """The unused value at `at` of every period ending after it, of lines not ended.

    A period containing `at` counts from `at`; one paid ahead (starting
    after `at`) counts from its start, so it is worth its whole price.
    `line_ids` narrows it to those lines (in chunks).
    """
    query = (
        sa_select(
            col(LinePeriod.line_id),
            col(Line.customer_id),
            col(LinePeriod.price_minor),
            col(LinePeriod.start),
            col(LinePeriod.end),
            col(Plan.validity_days),
            col(Plan.currency),
        )
        .join(Line, col(Line.id) == col(LinePeriod.line_id))
        .join(Plan, col(Plan.id) == col(LinePeriod.plan_id))
        .where(col(LinePeriod.end) > at, col(Line.status).notin_(ENDED_STATUSES))
        .order_by(col(LinePeriod.line_id), col(LinePeriod.start))
    )
    if line_ids is None:
        batches = [session.execute(query).all()]
    else:
        wanted = sorted(set(line_ids))
        batches = [
            session.execute(query.where(col(LinePeriod.line_id).in_(wanted[i : i + _CHUNK]))).all()
            for i in range(0, len(wanted), _CHUNK)
        ]
    periods = [
        UnusedPeriod(
            line_id=line_id,
            customer_id=customer_id,
            currency=currency,
            value_minor=unused_value_minor(
                price_minor=price,
                validity_days=validity,
                period_end=end,
                at=max(start, at),
            ),
        )
        for batch in batches
        for line_id, customer_id, price, start, end, validity, currency in batch
    ]
    return periods + _paid_first_periods(session, line_ids)


def _paid_first_periods(session: Session, line_ids: Collection[int] | None) -> list[UnusedPeriod]:
    """Pending lines bought in the store: their first period is paid (the order's plan
    price) but opens only at activation, so all of it is unused."""
    query = (
        sa_select(
            col(PurchaseOrder.line_id),
            col(Line.customer_id),
            col(PurchaseOrder.currency),
            col(PurchaseOrder.price_minor),
        )
        .join(Line, col(Line.id) == col(PurchaseOrder.line_id))
        .where(col(Line.status) == "pending", col(PurchaseOrder.status) == "paid")
        .where(~exists().where(col(LinePeriod.line_id) == col(Line.id)))
        .order_by(col(PurchaseOrder.line_id))
    )
    if line_ids is None:
        rows = list(session.execute(query))
    else:
        wanted = sorted(set(line_ids))
        rows = [
            row
            for i in range(0, len(wanted), _CHUNK)
            for row in session.execute(
                query.where(col(PurchaseOrder.line_id).in_(wanted[i : i + _CHUNK]))
            )
        ]
    return [
        UnusedPeriod(line_id=line_id, customer_id=customer_id, currency=currency, value_minor=price)
        for line_id, customer_id, currency, price in rows
        if price > 0
    ]


def owed_at(session: Session, *, at: datetime) -> Owed:
    """Positive prepaid balances now, and the unused value of periods at `at`.

    Balances are the accounts' cached balances (what is owed now); the
    periods are those of `unused_periods`, of lines not ended.
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
    _add_unused(session, owed, count_lines=True)
    return owed


def unused_value_at(session: Session, *, at: datetime) -> dict[str, int]:
    """The unused value at `at` per currency: `owed_at(at).unused_periods`, the same
    arithmetic, without reading balances or counting lines (the dashboard's)."""
    owed = Owed(at=at)
    _add_unused(session, owed, count_lines=False)
    return dict(owed.unused_periods)


def _add_unused(session: Session, owed: Owed, *, count_lines: bool) -> None:
    """Add the unused value at `owed.at` to `owed`, and its lines when `count_lines`."""
    if session.get_bind().dialect.name == "postgresql":
        _sum_unused_in_sql(session, at=owed.at, owed=owed, count_lines=count_lines)
        for period in _paid_first_periods(session, None):
            owed.unused_periods[period.currency] += period.value_minor
            owed.lines += 1
        return
    lines: set[int] = set()
    for period in unused_periods(session, at=owed.at):
        owed.unused_periods[period.currency] += period.value_minor
        lines.add(period.line_id)
    owed.lines = len(lines)


def _unused_periods_query(query: _Query, at: datetime) -> _Query:
    """`query` over the periods ending after `at` of lines not ended, with their plans.

    The periods come through the index on `end`; the ended lines, through the
    index of ended lines, are left out by an anti-join rather than every line
    joined in.
    """
    ended = exists().where(
        col(Line.id) == col(LinePeriod.line_id), col(Line.status).in_(ENDED_STATUSES)
    )
    return (
        query.select_from(LinePeriod)
        .join(Plan, col(Plan.id) == col(LinePeriod.plan_id))
        .where(col(LinePeriod.end) > at, ~ended)
    )


def _sum_unused_in_sql(session: Session, *, at: datetime, owed: Owed, count_lines: bool) -> None:
    """The unused value of the periods ending after `at` per currency, summed by PostgreSQL,
    and their lines when `count_lines`.

    `unused_value_minor`'s arithmetic, exact, so that a hundred thousand
    periods are not fetched one by one: the time left in microseconds from
    the later of `at` and the period's start (`extract(epoch …)` of an
    interval is exact to the microsecond) and round half up as the integer
    quotient ⌊(2 · price · left + full) / (2 · full)⌋, `full` the plan's
    validity in microseconds; a period without a price is worth nothing. In
    64-bit integers where that cannot overflow — a price up to
    `_INT8_PRICE_MAX`, a period ending at most `_INT8_SPAN` after `at` (the
    time left is never longer) and a validity of at most
    `_INT8_VALIDITY_DAYS` — and in numerics otherwise; both give the same
    quotient.
    """
    since = func.greatest(col(LinePeriod.start), at)
    seconds = func.extract("epoch", col(LinePeriod.end) - since)
    full_days = col(Plan.validity_days)
    fits = and_(
        col(LinePeriod.price_minor) <= _INT8_PRICE_MAX,
        col(LinePeriod.end) <= at + _INT8_SPAN,
        full_days <= _INT8_VALIDITY_DAYS,
    )
    price_i8 = cast(col(LinePeriod.price_minor), BigInteger)
    left_i8 = cast(seconds * 1_000_000, BigInteger)
    full_i8 = cast(full_days, BigInteger) * _MICROSECONDS_PER_DAY
    price = cast(col(LinePeriod.price_minor), Numeric)
    full = cast(full_days, Numeric) * _MICROSECONDS_PER_DAY
    value = case(
        (col(LinePeriod.price_minor) <= 0, None),
        (fits, (2 * price_i8 * left_i8 + full_i8) // (2 * full_i8)),
        else_=func.div(2 * price * seconds * 1_000_000 + full, 2 * full),
    )
    lines = func.count(func.distinct(col(LinePeriod.line_id))) if count_lines else literal(0)
    rows = session.execute(
        _unused_periods_query(
            sa_select(col(Plan.currency), lines, func.coalesce(func.sum(value), 0)), at
        ).group_by(col(Plan.currency))
    ).all()
    for currency, count, total in rows:
        owed.unused_periods[currency] += int(total)
        owed.lines += int(count)
