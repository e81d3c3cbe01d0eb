"""What is owed at an instant (DESIGN §12): unused period value, positive balances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from app.charging.unused_value import owed_at, unused_value_minor
from app.subscribers import lifecycle
from tests.unit.charging.helpers import fund
from tests.unit.subscribers.helpers import STAFF, World, make_world
from tests.unit.usage.helpers import at, import_rows, subject

END = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("price", "validity", "left", "value"),
    [
        (3900, 30, 15 * DAY, 1950),
        (3901, 30, 15 * DAY, 1951),  # 1950.5 rounds half up
        (3899, 30, 15 * DAY, 1950),  # 1949.5 rounds half up
        (3900, 30, 30 * DAY, 3900),  # the whole period
        (3900, 30, timedelta(microseconds=1), 0),
        (3900, 30, timedelta(0), 0),  # ends exactly at the instant
        (3900, 30, -DAY, 0),  # ended before
        (9900, 90, 45 * DAY, 4950),
        (0, 30, 10 * DAY, 0),
        (3900, 30, 10 * DAY + timedelta(hours=12), 1365),  # 3900 × 10.5 / 30
    ],
)
def test_unused_value(price: int, validity: int, left: timedelta, value: int) -> None:
    assert (
        unused_value_minor(price_minor=price, validity_days=validity, period_end=END, at=END - left)
        == value
    )


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def test_owed_counts_a_balance_once_and_every_unused_period(session: Session, world: World) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    at = start + 10 * DAY
    first = subject(session, world, start=start)
    second = subject(session, world, start=start - 5 * DAY)
    later = subject(session, world, start=at + DAY)  # paid, not yet begun at `at`: all unused
    ended = subject(session, world, start=start)
    lifecycle.terminate_line(
        session, line_id=ended.line.id or 0, reason="test", actor=STAFF, now=at, quarantine_days=90
    )
    fund(session, world, 5000)
    owed = owed_at(session, at=at)
    expected = sum(
        unused_value_minor(
            price_minor=s.period.price_minor,
            validity_days=s.plan.validity_days,
            period_end=s.period.end,
            at=at,
        )
        for s in (first, second)
    )
    assert expected > 0 and later.period.start > at
    assert owed.positive_balances["CNY"] == 5000
    # A period paid ahead is worth its whole price: it is counted from its start.
    assert owed.unused_periods["CNY"] == expected + later.period.price_minor
    assert owed.total("CNY") == 5000 + expected + later.period.price_minor
    assert (owed.customers, owed.lines) == (1, 3)


def test_a_balance_in_arrears_is_not_owed(session: Session, world: World, tmp_path) -> None:
    s = subject(session, world, start=datetime(2026, 10, 1, tzinfo=UTC))
    import_rows(session, tmp_path, [("S1", s.msisdn, "sms", at(1), 5)])  # 3 over: −30
    later = s.period.end + DAY  # the period has ended too
    owed = owed_at(session, at=later)
    assert (owed.total("CNY"), owed.customers, owed.lines) == (0, 0, 0)


def test_owed_rounds_each_period_as_unused_value_does(session: Session, world: World) -> None:
    """The database's sum (PostgreSQL) and the per-period arithmetic agree at the halves."""
    at = datetime(2026, 10, 20, 9, 30, 15, 250_001, tzinfo=UTC)
    cases = [
        (3901, 15 * DAY),  # exactly 1950.5: up
        (3901, 15 * DAY - timedelta(microseconds=1)),  # just under the half: down
        (3899, 15 * DAY + timedelta(microseconds=1)),  # just over 1949.5: up
        (7777, timedelta(days=3, hours=7, microseconds=333)),
        (1, timedelta(microseconds=1)),
        (0, 10 * DAY),  # no price, nothing owed
        # at and beyond the bounds of the 64-bit sum (price 500,000, 100 days), and where
        # only numerics hold it: the same rounding either way
        (500_000, timedelta(days=40, microseconds=7)),
        (500_001, timedelta(days=40, microseconds=7)),
        (3901, timedelta(days=150, microseconds=1)),
        (2_000_000_001, timedelta(days=150, seconds=1)),
    ]
    expected = 0
    for price, left in cases:
        s = subject(session, world, start=at - DAY)
        s.period.price_minor = price
        s.period.end = at + left
        session.add(s.period)
        expected += unused_value_minor(
            price_minor=price, validity_days=s.plan.validity_days, period_end=at + left, at=at
        )
    session.flush()
    owed = owed_at(session, at=at)
    assert owed.unused_periods["CNY"] == expected
    assert owed.lines == len(cases)
