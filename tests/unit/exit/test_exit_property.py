"""The exit's invariant on random populations (DESIGN §12), checked against a model here.

For any mix of lines (statuses, periods before, across and after the exit
instant), balances (positive, zero, arrears), choices and balance policy:
refunds + transferred balances = positive balances + unused value, to the
minor unit, by an independent computation in this test; every prepaid
account ends at zero; every line ends transferred or terminated; the
ledger still checks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from app.core.money import round_half_up
from app.exit.choices import choose
from app.exit.execute import execute_exit
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.checks import check_ledger
from app.ledger.models import LedgerAccount
from app.subscribers.models import FINAL_LINE_STATUSES, Line
from tests.unit.exit.helpers import ADMIN, ANNOUNCED, EXIT_AT, announced, arrears, customer, line
from tests.unit.subscribers.helpers import World, make_world

HOUR = timedelta(hours=1)
# A line: (hours its period starts before the exit instant — negative: after it,
# status, transfer?)
LINE = st.tuples(
    st.integers(min_value=-24 * 20, max_value=24 * 40),
    st.sampled_from(["active", "active", "suspended", "pending"]),
    st.booleans(),
)
CUSTOMER = st.tuples(
    st.integers(min_value=-3000, max_value=30_000),  # balance (negative: arrears)
    st.lists(LINE, max_size=3),
)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def _unused(price: int, validity_days: int, start: Any, end: Any) -> int:
    """The model's own arithmetic: the part of [start, end) after the exit instant."""
    left = end - max(start, EXIT_AT)
    if left <= timedelta(0):
        return 0
    micros = int(left / timedelta(microseconds=1))
    return round_half_up(price * micros, validity_days * 86_400 * 1_000_000)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(population=st.lists(CUSTOMER, min_size=1, max_size=5), carry=st.booleans())
def test_refunds_and_carried_balances_equal_what_was_owed(
    session: Session, world: World, population: list[Any], carry: bool
) -> None:
    with session.begin_nested() as savepoint:
        expected_owed = 0
        expected_carried = 0
        lines = 0
        transfers: list[str] = []
        for balance, specs in population:
            who = customer(session, world, balance=max(balance, 0))
            if balance < 0:
                arrears(session, who, -balance)
            expected_owed += max(balance, 0)
            if carry and any(transfer for *_, transfer in specs):
                expected_carried += max(balance, 0)
            for hours, status, transfer in specs:
                start = EXIT_AT - hours * HOUR
                row = line(session, who, start=start, status=status)
                value = _unused(3900, 30, start, start + timedelta(days=30))
                expected_owed += value
                lines += 1
                if transfer:
                    transfers.append(row.msisdn)
                    expected_carried += value if carry else 0
        announced(session)
        for msisdn in transfers:
            choose(session, msisdn=msisdn, choice="transfer", actor=ADMIN, now=ANNOUNCED, note="p")
        found = execute_exit(
            session, policy="carry" if carry else "refund", actor=ADMIN, now=EXIT_AT + HOUR
        )
        summary = found.summary
        assert summary["liability_before"] == expected_owed
        assert summary["refunds"] + summary["transferred_balances"] == expected_owed
        assert summary["transferred_balances"] == expected_carried
        assert summary["lines"] == lines
        nonzero = session.exec(
            select(func.count())
            .select_from(LedgerAccount)
            .where(LedgerAccount.kind == CUSTOMER_PREPAID, LedgerAccount.balance_minor != 0)
        ).one()
        assert nonzero == 0
        live = session.exec(
            select(func.count()).select_from(Line).where(Line.status.not_in(FINAL_LINE_STATUSES))  # type: ignore[attr-defined]
        ).one()
        assert live == 0
        assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok
        savepoint.rollback()
