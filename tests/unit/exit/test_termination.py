"""One line's termination or port-out with its refund (DESIGN §12's last rule)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.audit import Actor, AuditEntry
from app.core.errors import Forbidden
from app.exit.termination import port_out_with_refund, quote_line_end, terminate_with_refund
from app.ledger.accounts import system_balance
from app.ledger.balances import customer_balance
from app.ledger.checks import check_ledger
from app.ledger.models import JournalEntry
from app.notifications.models import Notification
from app.payments.models import Refund
from app.provisioning.models import ProvisioningEvent
from app.subscribers import lifecycle
from app.subscribers.errors import LineStateError
from app.subscribers.models import Line
from numbering.models import PhoneNumber, Sim
from tests.unit.exit.helpers import ADMIN, DAY, PLANNED, arrears, card_payment, customer, line
from tests.unit.subscribers.helpers import World, make_world

NOW = PLANNED + 10 * DAY
# LITE30: 39.00 for 30 days; started 10 days before NOW, 20 days are left.
UNUSED = 2600
CAP = {"cap_months": 24, "reference_monthly_minor": 5000}


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def _terminate(session: Session, row: Line, *, now: datetime = NOW, **extra):
    assert row.id is not None
    return terminate_with_refund(
        session,
        line_id=row.id,
        reason="customer asked",
        quarantine_days=90,
        actor=ADMIN,
        now=now,
        **extra,
    )


def _balance(session: Session, world: World) -> int:
    assert world.customer.id is not None
    return customer_balance(session, customer_id=world.customer.id)


def _refunds(session: Session, world: World) -> list[tuple[int | None, int]]:
    rows = session.exec(
        select(Refund)
        .where(Refund.customer_id == world.customer.id, Refund.reason == "termination")
        .order_by(col(Refund.id))
    )
    return [(r.payment_id, r.amount_minor) for r in rows]


def _number(session: Session, row: Line) -> str:
    return session.exec(select(PhoneNumber.status).where(PhoneNumber.msisdn == row.msisdn)).one()


def _events(session: Session, row: Line) -> list[str]:
    query = select(ProvisioningEvent.action).where(ProvisioningEvent.line_id == row.id)
    return list(session.exec(query))


def test_the_last_line_mid_period_refunds_the_balance_and_the_unused_value(session, world):
    mine = customer(session, world, balance=5000)
    row = line(session, mine, start=PLANNED)
    revenue_before = system_balance(session, kind="revenue_plans", currency="CNY")
    quote = quote_line_end(session, line_id=row.id or 0, now=NOW)
    assert (quote.unused_minor, quote.balance_minor, quote.refund_minor) == (UNUSED, 5000, 7600)
    ended = _terminate(session, row)
    assert (ended.refund_minor, ended.currency, ended.replayed) == (7600, "CNY", False)
    assert ended.line.status == "terminated"
    assert _refunds(session, mine) == [(None, 7600)]  # no card payment: by hand
    assert (ended.to_cards_minor, ended.by_hand_minor) == (0, 7600)
    assert _balance(session, mine) == 0
    revenue_after = system_balance(session, kind="revenue_plans", currency="CNY")
    assert revenue_after - revenue_before == -UNUSED
    assert _number(session, row) == "quarantined"
    assert session.get(Sim, row.sim_id).status == "retired"
    assert _events(session, row) == ["terminate"]
    [notice] = session.exec(
        select(Notification).where(Notification.customer_id == mine.customer.id)
    ).all()
    assert notice.kind == "exit_refund" and notice.data["amount"] == "76.00"
    [audit] = session.exec(select(AuditEntry).where(AuditEntry.action == "line.end_refund"))
    assert audit.details["refund_minor"] == 7600 and audit.details["unused_minor"] == UNUSED
    assert check_ledger(session, **CAP).ok


def test_a_period_ending_exactly_now_has_no_unused_value(session, world):
    mine = customer(session, world, balance=1200)
    row = line(session, mine, start=NOW - 30 * DAY)
    ended = _terminate(session, row)
    assert ended.refund_minor == 1200
    assert _refunds(session, mine) == [(None, 1200)]


def test_a_period_paid_ahead_counts_whole(session, world):
    mine = customer(session, world)
    row = line(session, mine, start=NOW + DAY)
    assert _terminate(session, row).refund_minor == 3900


def test_a_suspended_line_refunds_what_is_left_of_its_period(session, world):
    mine = customer(session, world)
    row = line(session, mine, start=PLANNED)
    lifecycle.suspend_line(session, line_id=row.id or 0, reason="lost", actor=ADMIN, now=NOW)
    assert _terminate(session, row).refund_minor == UNUSED


def test_a_suspended_line_whose_period_ended_refunds_nothing(session, world):
    mine = customer(session, world)
    row = line(session, mine, start=NOW - 40 * DAY)
    lifecycle.suspend_line(session, line_id=row.id or 0, reason="unpaid", actor=ADMIN, now=NOW)
    ended = _terminate(session, row)
    assert ended.refund_minor == 0 and ended.refunds == []
    assert _refunds(session, mine) == []
    [notice] = session.exec(
        select(Notification).where(Notification.customer_id == mine.customer.id)
    ).all()
    assert notice.kind == "termination"
    assert ended.line.status == "terminated"


def test_arrears_larger_than_the_unused_value_leave_no_refund(session, world):
    mine = customer(session, world)
    row = line(session, mine, start=PLANNED)
    arrears(session, mine, 3000)
    ended = _terminate(session, row)
    assert ended.refund_minor == 0 and _refunds(session, mine) == []
    assert _balance(session, mine) == UNUSED - 3000  # the unused value paid part of the debt
    assert check_ledger(session, **CAP).ok


def test_arrears_are_paid_from_the_unused_value_before_a_refund(session, world):
    mine = customer(session, world)
    row = line(session, mine, start=PLANNED)
    arrears(session, mine, 1000)
    ended = _terminate(session, row)
    assert ended.refund_minor == UNUSED - 1000
    assert _balance(session, mine) == 0


def test_other_live_lines_keep_the_balance(session, world):
    mine = customer(session, world, balance=5000)
    row = line(session, mine, start=PLANNED)
    line(session, mine, start=PLANNED)
    quote = quote_line_end(session, line_id=row.id or 0, now=NOW)
    assert (quote.balance_minor, quote.refund_minor) == (0, UNUSED)
    assert _terminate(session, row).refund_minor == UNUSED
    assert _balance(session, mine) == 5000


def test_an_ended_line_does_not_hold_the_balance_back(session, world):
    mine = customer(session, world, balance=5000)
    first = line(session, mine, start=PLANNED)
    second = line(session, mine, start=PLANNED)
    _terminate(session, first)
    assert _terminate(session, second).refund_minor == 5000 + UNUSED
    assert _balance(session, mine) == 0


def test_the_refund_goes_to_card_payments_newest_first_then_by_hand(session, world):
    mine = customer(session, world, balance=5000)
    older = card_payment(session, mine.customer, 3000, "pi_old")
    newer = card_payment(session, mine.customer, 2000, "pi_new")
    other_currency = card_payment(session, mine.customer, 9000, "pi_usd")
    other_currency.currency = "USD"
    session.add(other_currency)
    session.add(
        Refund(
            customer_id=mine.customer.id or 0,
            payment_id=newer.id,
            reason="staff",
            status="succeeded",
            amount_minor=500,
            currency="CNY",
            created_at=PLANNED,
            updated_at=PLANNED,
        )
    )
    session.flush()
    row = line(session, mine, start=PLANNED)
    ended = _terminate(session, row)
    assert _refunds(session, mine) == [(newer.id, 1500), (older.id, 3000), (None, 3100)]
    assert (ended.to_cards_minor, ended.by_hand_minor) == (4500, 3100)


def test_a_double_submit_pays_once(session, world):
    mine = customer(session, world, balance=5000)
    row = line(session, mine, start=PLANNED)
    first = _terminate(session, row)
    again = _terminate(session, row, now=NOW + timedelta(seconds=2))
    assert again.replayed and again.refund_minor == first.refund_minor == 7600
    assert [r.id for r in again.refunds] == [r.id for r in first.refunds]
    assert _refunds(session, mine) == [(None, 7600)]
    entries = session.exec(
        select(func.count())
        .select_from(JournalEntry)
        .where(col(JournalEntry.idempotency_key).contains(f"line-end:{row.id}"))
    ).one()
    assert entries == 2  # the unused value back, the refund out
    assert check_ledger(session, **CAP).ok


def test_port_out_marks_the_number_ported_out_and_refunds(session, world):
    mine = customer(session, world, balance=800)
    row = line(session, mine, start=PLANNED)
    ended = port_out_with_refund(
        session, line_id=row.id or 0, reason="moving operator", actor=ADMIN, now=NOW
    )
    assert ended.line.status == "ported_out" and ended.refund_minor == 800 + UNUSED
    assert _number(session, row) == "ported_out"
    assert session.get(Sim, row.sim_id).status == "retired"
    assert _events(session, row) == ["port_out"]
    again = port_out_with_refund(
        session, line_id=row.id or 0, reason="moving operator", actor=ADMIN, now=NOW
    )
    assert again.replayed and _refunds(session, mine) == [(None, 800 + UNUSED)]


def test_a_pending_line_cannot_be_ported_out_and_nothing_is_paid(session, world):
    mine = customer(session, world, balance=800)
    row = line(session, mine, start=PLANNED, status="pending")
    with pytest.raises(LineStateError, match="cannot be ported out"):
        port_out_with_refund(session, line_id=row.id or 0, reason="x", actor=ADMIN, now=NOW)
    assert _refunds(session, mine) == [] and _balance(session, mine) == 800


def test_a_line_ended_otherwise_is_refused(session, world):
    mine = customer(session, world, balance=800)
    row = line(session, mine, start=PLANNED)
    port_out_with_refund(session, line_id=row.id or 0, reason="x", actor=ADMIN, now=NOW)
    with pytest.raises(LineStateError, match="already ended"):
        _terminate(session, row)
    with pytest.raises(LineStateError, match="already ended"):
        quote_line_end(session, line_id=row.id or 0, now=NOW)


def test_a_subscriber_may_end_only_their_own_line(session, world):
    mine = customer(session, world, balance=800)
    theirs = customer(session, world)
    row = line(session, mine, start=PLANNED)
    subscriber = Actor("subscriber", 7, "someone@example.com")
    with pytest.raises(Forbidden):
        terminate_with_refund(
            session,
            line_id=row.id or 0,
            reason="self-care",
            quarantine_days=90,
            actor=subscriber,
            now=NOW,
            customer_id=theirs.customer.id,
        )
    with pytest.raises(Forbidden):
        quote_line_end(session, line_id=row.id or 0, now=NOW, customer_id=theirs.customer.id)
    assert session.get(Line, row.id).status == "active"
