"""Renewals at period end (DESIGN §9): debit and next period, catch-up, suspension,
resume on credit, termination after 90 days, notices, reruns and idempotency."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.charging.errors import RenewalRefused
from app.charging.line_renewal import renew_now
from app.charging.models import LinePeriod
from app.charging.periods import open_period
from app.charging.renewal_terms import ENTRY_KIND, RenewalReport, renewal_key
from app.charging.renewals import run_renewals
from app.charging.unpaid_lines import renew_suspended_lines
from app.core.audit import Actor, AuditEntry
from app.core.db import Database
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.balances import customer_balance
from app.ledger.checks import check_ledger
from app.ledger.errors import InsufficientBalance
from app.ledger.models import JournalEntry
from app.ledger.movements import credit_customer
from app.ledger.posting import BulkEntry, post_entries
from app.notifications.models import Notification
from app.payments.services import MoneyPolicy, record_offline_payment
from app.provisioning.models import ProvisioningEvent
from app.subscribers import lifecycle
from app.subscribers import services as subscribers
from app.subscribers.models import Line
from numbering.models import PhoneNumber
from plans.services import retire_plan
from tests.concurrency import fresh_database
from tests.factories import NOW
from tests.unit.charging.helpers import fund
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world
from tests.unit.wholesale.helpers import ACTOR as PLAN_ACTOR

DAY = timedelta(days=1)
PERIOD = 30 * DAY  # LITE30: 39.00 for 30 days; MAX60: 69.00 for 30 days
PRICE = 3900
OTHER_PRICE = 6900
END = NOW + PERIOD  # the end of the first period every line here gets
POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)
_keys = itertools.count(1)


@pytest.fixture
def world(session: Session) -> World:
    w = make_world(session, code="RENEW")
    w.customer.email = "renewals@example.com"
    session.add(w.customer)
    session.flush()
    return w


def _line(session: Session, world: World, *, balance: int = 0, auto_renew: bool = True) -> Line:
    """An active line whose first period runs NOW → END, and the customer's balance."""
    line = make_line(session, world)
    open_period(session, line=line, plan=world.plan, start=NOW, now=NOW)
    line.auto_renew = auto_renew
    session.add(line)
    session.flush()
    if balance:
        _credit(session, world, balance)
    return line


def _credit(session: Session, world: World, amount: int, *, now: Any = NOW) -> None:
    """A credit straight through the ledger (no renewal hook), for setting up balances."""
    fund(session, world, amount, now=now, key=f"test-credit-{next(_keys)}")


def _run(session: Session, now: Any, **kwargs: Any) -> RenewalReport:
    return run_renewals(session, now=now, quarantine_days=90, **kwargs)


def _balance(session: Session, world: World) -> int:
    assert world.customer.id is not None
    return customer_balance(session, customer_id=world.customer.id)


def _periods(session: Session, line: Line) -> list[LinePeriod]:
    return list(
        session.exec(
            select(LinePeriod).where(LinePeriod.line_id == line.id).order_by(col(LinePeriod.start))
        )
    )


def _entries(session: Session) -> list[JournalEntry]:
    return list(
        session.exec(
            select(JournalEntry)
            .where(JournalEntry.kind == ENTRY_KIND)
            .order_by(col(JournalEntry.id))
        )
    )


def _events(session: Session, line: Line) -> list[str]:
    return list(
        session.exec(
            select(ProvisioningEvent.action)
            .where(ProvisioningEvent.line_id == line.id)
            .order_by(col(ProvisioningEvent.id))
        )
    )


def _notices(session: Session) -> list[tuple[str, str | None]]:
    return [
        (n.kind, n.dedupe_key)
        for n in session.exec(select(Notification).order_by(col(Notification.id)))
    ]


def _fresh(session: Session, line: Line) -> Line:
    session.refresh(line)
    return line


def _ledger_ok(session: Session) -> None:
    check = check_ledger(session, cap_months=24, reference_monthly_minor=5000)
    assert check.ok, check.problems


# -- renewing -----------------------------------------------------------------------------


def test_line_renews_from_its_balance_exactly_at_the_old_end(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=5000)

    early = _run(session, END - timedelta(microseconds=1))
    assert early.lines_seen == 0

    report = _run(session, END)

    assert (report.lines_seen, report.renewed, report.periods_opened, report.suspended) == (
        1,
        1,
        1,
        0,
    )
    line = _fresh(session, line)
    assert line.status == "active" and line.period_end == END + PERIOD
    _first, second = _periods(session, line)
    assert (second.start, second.end) == (END, END + PERIOD)
    assert second.price_minor == PRICE and second.plan_id == world.plan.id
    assert second.data_kb == world.plan.data_mb * 1024
    (entry,) = _entries(session)
    assert entry.idempotency_key == renewal_key(line.id or 0, END)
    assert second.entry_id == entry.id
    assert _balance(session, world) == 5000 - PRICE
    renew_audits = session.exec(select(AuditEntry).where(AuditEntry.action == "line.renew")).all()
    assert [a.target_id for a in renew_audits] == [str(line.id)]
    assert renew_audits[0].details["entry_id"] == entry.id
    kinds = [kind for kind, _ in _notices(session)]
    # 11.00 left will not cover the next 39.00: a low-balance notice too.
    assert kinds == ["renewal", "low_balance"]
    _ledger_ok(session)


def test_enough_for_the_next_renewal_sends_no_low_balance_notice(
    session: Session, world: World
) -> None:
    _line(session, world, balance=2 * PRICE)
    _run(session, END)
    assert [kind for kind, _ in _notices(session)] == ["renewal"]


def test_short_balance_suspends_the_line_with_a_provisioning_event_and_a_notice(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=PRICE - 1)

    report = _run(session, END + timedelta(minutes=5))

    assert (report.renewed, report.suspended, report.unpaid) == (0, 1, 1)
    line = _fresh(session, line)
    assert line.status == "suspended"
    # Suspended as of the end of the paid period, and marked as the renewal's suspension.
    assert line.status_changed_at == END and line.renewal_failed_at == END
    assert line.period_end == END
    assert _events(session, line) == ["suspend"]
    assert _entries(session) == []
    assert _balance(session, world) == PRICE - 1
    assert _notices(session) == [("suspension", f"suspension:{line.id}:{END.isoformat()}")]
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "line.suspend")).one()
    assert audit.details["reason"] == "renewal unpaid"


def test_auto_renew_off_suspends_even_with_money(session: Session, world: World) -> None:
    line = _line(session, world, balance=10 * PRICE, auto_renew=False)

    report = _run(session, END)

    assert (report.renewed, report.suspended) == (0, 1)
    assert _fresh(session, line).status == "suspended"
    assert _balance(session, world) == 10 * PRICE
    notice = session.exec(select(Notification)).one()
    assert notice.data["reason"] == "auto_renew_off"


def test_catch_up_renews_period_after_period_then_suspends_when_money_runs_out(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=3 * PRICE + 100)

    report = _run(session, NOW + 5 * PERIOD)

    assert (report.renewed, report.periods_opened, report.suspended) == (1, 3, 1)
    periods = _periods(session, line)
    assert [(p.start, p.end) for p in periods] == [
        (NOW + k * PERIOD, NOW + (k + 1) * PERIOD) for k in range(4)
    ]
    entries = _entries(session)
    assert [e.idempotency_key for e in entries] == [
        renewal_key(line.id or 0, NOW + k * PERIOD) for k in (1, 2, 3)
    ]
    assert [p.entry_id for p in periods[1:]] == [e.id for e in entries]
    assert _balance(session, world) == 100
    line = _fresh(session, line)
    assert line.status == "suspended"
    assert line.status_changed_at == NOW + 4 * PERIOD == line.renewal_failed_at
    _ledger_ok(session)


def test_two_lines_of_one_customer_share_the_balance_in_time_order(
    session: Session, world: World
) -> None:
    early = _line(session, world)
    late = make_line(session, world)
    open_period(session, line=late, plan=world.plan, start=NOW + DAY, now=NOW)
    _credit(session, world, 2 * PRICE)

    _run(session, NOW + 2 * PERIOD + DAY)

    # early renews at END and late at END + 1 day; at END + 30 days early is
    # out of money, and so is late a day later.
    assert len(_periods(session, early)) == 2 and len(_periods(session, late)) == 2
    assert _fresh(session, early).status == "suspended"
    assert _fresh(session, late).status == "suspended"
    assert _balance(session, world) == 0


def test_next_plan_is_applied_at_renewal_and_the_switch_audited(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=OTHER_PRICE)
    assert world.other_plan.id is not None
    lifecycle.change_plan(
        session, line_id=line.id or 0, plan_id=world.other_plan.id, actor=STAFF, now=NOW
    )

    _run(session, END)

    line = _fresh(session, line)
    assert line.plan_id == world.other_plan.id and line.next_plan_id is None
    new = _periods(session, line)[-1]
    assert (new.plan_id, new.price_minor) == (world.other_plan.id, OTHER_PRICE)
    assert _balance(session, world) == 0
    switch = session.exec(select(AuditEntry).where(AuditEntry.action == "line.plan_switch")).one()
    assert switch.details["from_plan_id"] == world.plan.id
    assert switch.details["to_plan_id"] == world.other_plan.id


def test_next_plan_that_the_balance_does_not_cover_suspends_and_stays_pending(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=PRICE)  # covers LITE30, not MAX60
    assert world.other_plan.id is not None
    lifecycle.change_plan(
        session, line_id=line.id or 0, plan_id=world.other_plan.id, actor=STAFF, now=NOW
    )

    _run(session, END)

    line = _fresh(session, line)
    assert line.status == "suspended" and line.next_plan_id == world.other_plan.id


def test_a_retired_plan_keeps_its_terms(session: Session, world: World) -> None:
    line = _line(session, world, balance=PRICE)
    retire_plan(session, plan_id=world.plan.id or 0, actor=PLAN_ACTOR, now=NOW)

    _run(session, END)

    new = _periods(session, _fresh(session, line))[-1]
    assert (new.plan_id, new.price_minor) == (world.plan.id, PRICE)
    assert _fresh(session, line).status == "active"


# -- reruns and idempotency ---------------------------------------------------------------


def test_a_rerun_with_the_same_now_changes_nothing(session: Session, world: World) -> None:
    _line(session, world, balance=PRICE + 10)
    _line(session, world)  # suspended by the first run

    def counts() -> tuple[int, ...]:
        return tuple(
            session.exec(select(func.count()).select_from(table)).one()
            for table in (JournalEntry, LinePeriod, AuditEntry, Notification, ProvisioningEvent)
        )

    first = _run(session, END)
    before = counts()
    second = _run(session, END)

    assert (first.renewed, first.suspended) == (1, 1)
    assert second.as_dict() == {**RenewalReport(now=END).as_dict()}
    assert counts() == before


def test_a_renewal_already_posted_under_its_key_is_not_charged_twice(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=PRICE)
    assert world.customer.id is not None
    account = customer_account_ids(session, customer_ids=[world.customer.id], currency="CNY")[
        world.customer.id
    ]
    revenue = system_account_id(session, kind="revenue_plans", currency="CNY")
    key = renewal_key(line.id or 0, END)
    posted = post_entries(
        session,
        entries=[
            BulkEntry(
                kind=ENTRY_KIND, idempotency_key=key, postings=((account, -PRICE), (revenue, PRICE))
            )
        ],
        actor=STAFF,
        now=NOW,
    )

    _run(session, END)

    (entry,) = _entries(session)
    assert entry.id == posted.posted[key]
    assert _periods(session, line)[-1].entry_id == entry.id
    assert _balance(session, world) == 0
    assert _fresh(session, line).status == "active"
    _ledger_ok(session)


def test_batches_each_in_their_own_transaction_cover_every_due_line(db: Database) -> None:
    with db.transaction() as session:
        world = make_world(session, code="RENEWB")
        ids = [_line(session, world).id for _ in range(5)]
        _credit(session, world, 3 * PRICE)

    report = run_renewals(db, now=END, quarantine_days=90, batch_size=2)

    assert (report.lines_seen, report.renewed, report.suspended) == (5, 3, 2)
    with db.transaction() as session:
        statuses = [session.get(Line, i).status for i in ids]  # type: ignore[union-attr]
    # The balance pays the lowest ids first (same period end: id order).
    assert statuses == ["active", "active", "active", "suspended", "suspended"]


def test_limit_caps_the_lines_handled(session: Session, world: World) -> None:
    for _ in range(3):
        _line(session, world)
    assert _run(session, END, limit=2).lines_seen == 2
    assert _run(session, END).lines_seen == 1


# -- resume on credit ---------------------------------------------------------------------


def test_a_credit_during_suspension_renews_from_the_credit_and_resumes(
    session: Session, world: World
) -> None:
    line = _line(session, world)
    _run(session, END)
    assert _fresh(session, line).status == "suspended"
    paid_at = END + 5 * DAY

    record_offline_payment(
        session,
        customer_id=world.customer.id or 0,
        amount_minor=5000,
        method="cash",
        reference="R-1",
        actor=STAFF,
        now=paid_at,
        policy=POLICY,
    )

    line = _fresh(session, line)
    assert line.status == "active" and line.renewal_failed_at is None
    new = _periods(session, line)[-1]
    assert (new.start, new.end) == (paid_at, paid_at + PERIOD)
    assert line.period_end == paid_at + PERIOD
    assert _events(session, line) == ["suspend", "resume"]
    assert _balance(session, world) == 5000 - PRICE
    (entry,) = _entries(session)
    assert entry.idempotency_key == renewal_key(line.id or 0, END)
    kinds = [kind for kind, _ in _notices(session)]
    assert kinds == ["suspension", "renewal", "low_balance", "resumed"]
    # The next run has nothing to do for it.
    assert _run(session, paid_at).lines_seen == 0
    _ledger_ok(session)


def test_a_credit_too_small_leaves_the_line_suspended(session: Session, world: World) -> None:
    line = _line(session, world)
    _run(session, END)
    assert world.customer.id is not None
    _credit(session, world, PRICE - 1)

    assert (
        renew_suspended_lines(session, customer_id=world.customer.id, actor=STAFF, now=END + DAY)
        == []
    )
    assert _fresh(session, line).status == "suspended"
    assert _entries(session) == []


def test_credit_resumes_oldest_suspension_first_while_the_balance_covers(
    session: Session, world: World
) -> None:
    older = _line(session, world)
    _run(session, END)
    younger = make_line(session, world)
    open_period(session, line=younger, plan=world.plan, start=NOW + DAY, now=NOW)
    _run(session, END + DAY)
    assert world.customer.id is not None
    _credit(session, world, PRICE + PRICE // 2)

    resumed = renew_suspended_lines(
        session, customer_id=world.customer.id, actor=STAFF, now=END + 2 * DAY
    )

    assert resumed == [older.id]
    assert _fresh(session, younger).status == "suspended"


def test_a_staff_suspension_is_not_lifted_by_a_credit(session: Session, world: World) -> None:
    line = _line(session, world)
    lifecycle.suspend_line(
        session, line_id=line.id or 0, reason="fraud check", actor=STAFF, now=NOW + DAY
    )

    report = _run(session, END)  # due, unpaid: marked, but it stays the staff's suspension

    assert (report.suspended, report.unpaid) == (0, 1)
    line = _fresh(session, line)
    assert line.renewal_failed_at == END and line.status_changed_at == NOW + DAY
    assert [kind for kind, _ in _notices(session)] == ["renewal_failed"]
    _credit(session, world, 10 * PRICE)
    assert (
        renew_suspended_lines(
            session, customer_id=world.customer.id or 0, actor=STAFF, now=END + DAY
        )
        == []
    )
    assert _run(session, END + DAY).resumed == 0
    assert _fresh(session, line).status == "suspended"


def test_a_staff_suspended_line_keeps_renewing_while_paid(session: Session, world: World) -> None:
    line = _line(session, world, balance=PRICE)
    lifecycle.suspend_line(session, line_id=line.id or 0, reason="lost phone", actor=STAFF, now=NOW)

    assert _run(session, END).renewed == 1
    line = _fresh(session, line)
    assert line.status == "suspended" and line.period_end == END + PERIOD


def test_the_job_resumes_a_line_whose_money_arrived_without_the_hook(
    session: Session, world: World
) -> None:
    line = _line(session, world)
    _run(session, END)
    _credit(session, world, PRICE)  # straight into the ledger: no renewal hook

    report = _run(session, END + 3 * DAY)

    assert report.resumed == 1
    line = _fresh(session, line)
    assert line.status == "active" and line.period_end == END + 3 * DAY + PERIOD


def test_a_line_staff_resumed_unpaid_restarts_at_now_when_paid(
    session: Session, world: World
) -> None:
    line = _line(session, world)
    _run(session, END)
    lifecycle.resume_line(session, line_id=line.id or 0, reason="goodwill", actor=STAFF, now=END)
    _credit(session, world, PRICE)
    later = END + 10 * DAY

    assert _run(session, later).renewed == 1

    new = _periods(session, _fresh(session, line))[-1]
    assert (new.start, new.end) == (later, later + PERIOD)


def test_a_line_keeps_when_its_service_began_and_its_first_gap(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=PRICE)
    _run(session, END)  # renewed at the old end: the periods run end to start
    line = _fresh(session, line)
    assert (line.service_started_at, line.period_gap_at) == (NOW, None)

    _run(session, END + PERIOD)  # unpaid: suspended, the period over
    _credit(session, world, 2 * PRICE)
    later = END + PERIOD + 3 * DAY
    assert _run(session, later).resumed == 1  # the batch renews it from `later`
    line = _fresh(session, line)
    assert (line.service_started_at, line.period_gap_at) == (NOW, later)

    _run(session, later + PERIOD)  # renewed at the old end: the first gap stays
    assert _fresh(session, line).period_gap_at == later
    assert line.period_end == later + 2 * PERIOD


def test_renew_now_after_a_lapse_records_the_gap_and_ahead_does_not(
    session: Session, world: World
) -> None:
    ahead = _line(session, world, balance=3 * PRICE, auto_renew=False)
    renew_now(session, line_id=ahead.id or 0, actor=STAFF, now=NOW + DAY, expected_period_end=END)
    assert (_fresh(session, ahead).service_started_at, ahead.period_gap_at) == (NOW, None)

    lapsed = _line(session, world, auto_renew=False)
    _run(session, END)
    renew_now(session, line_id=lapsed.id or 0, actor=STAFF, now=END + DAY)
    assert (_fresh(session, lapsed).service_started_at, lapsed.period_gap_at) == (NOW, END + DAY)


# -- termination ----------------------------------------------------------------------------


def test_ninety_days_suspended_terminates_and_quarantines_the_number(
    session: Session, world: World
) -> None:
    line = _line(session, world)
    _run(session, END)

    assert _run(session, END + 90 * DAY - timedelta(microseconds=1)).terminated == 0
    report = _run(session, END + 90 * DAY)

    assert report.terminated == 1
    line = _fresh(session, line)
    assert line.status == "terminated"
    assert _events(session, line) == ["suspend", "terminate"]
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == line.msisdn)).one()
    assert number.status == "quarantined"
    assert ("termination", f"termination:{line.id}") in _notices(session)


def test_one_run_far_ahead_suspends_and_terminates(session: Session, world: World) -> None:
    line = _line(session, world, balance=PRICE)

    report = _run(session, END + PERIOD + 90 * DAY)

    assert (report.periods_opened, report.suspended, report.terminated) == (1, 1, 1)
    assert _fresh(session, line).status == "terminated"


def test_a_staff_suspension_with_paid_periods_is_never_terminated(
    session: Session, world: World
) -> None:
    line = _line(session, world, balance=10 * PRICE)
    lifecycle.suspend_line(session, line_id=line.id or 0, reason="lost phone", actor=STAFF, now=NOW)

    report = _run(session, NOW + 100 * DAY)

    assert report.terminated == 0 and report.periods_opened == 3
    assert _fresh(session, line).status == "suspended"


# -- renew now ------------------------------------------------------------------------------


def test_renew_now_resumes_a_line_suspended_with_auto_renew_off(
    session: Session, world: World
) -> None:
    line = _line(session, world, auto_renew=False)
    _run(session, END)
    _credit(session, world, PRICE)
    assert (
        renew_suspended_lines(
            session, customer_id=world.customer.id or 0, actor=STAFF, now=END + DAY
        )
        == []
    )
    subscriber = Actor("subscriber", 1, "sub@example.com")

    period = renew_now(session, line_id=line.id or 0, actor=subscriber, now=END + DAY)

    assert (period.start, period.end) == (END + DAY, END + DAY + PERIOD)
    assert _fresh(session, line).status == "active"
    assert _events(session, line) == ["suspend", "resume"]


def test_renew_now_extends_a_running_period_once_per_click(session: Session, world: World) -> None:
    line = _line(session, world, balance=2 * PRICE, auto_renew=False)

    period = renew_now(
        session, line_id=line.id or 0, actor=STAFF, now=NOW + DAY, expected_period_end=END
    )
    again = renew_now(
        session, line_id=line.id or 0, actor=STAFF, now=NOW + DAY, expected_period_end=END
    )

    assert (period.start, period.end) == (END, END + PERIOD)
    assert again.id == period.id
    assert _balance(session, world) == PRICE


def test_renew_now_refuses_a_short_balance_and_a_final_line(session: Session, world: World) -> None:
    line = _line(session, world, balance=PRICE - 1)
    with pytest.raises(InsufficientBalance):
        renew_now(session, line_id=line.id or 0, actor=STAFF, now=NOW + DAY)
    lifecycle.terminate_line(
        session, line_id=line.id or 0, reason="asked", quarantine_days=90, actor=STAFF, now=NOW
    )
    with pytest.raises(RenewalRefused):
        renew_now(session, line_id=line.id or 0, actor=STAFF, now=NOW + DAY)
    assert _entries(session) == []


def test_renew_now_refuses_to_pay_more_than_24_months_ahead(session: Session, world: World) -> None:
    line = _line(session, world, balance=24 * PRICE)
    for _ in range(24):
        renew_now(session, line_id=line.id or 0, actor=STAFF, now=NOW)
    with pytest.raises(RenewalRefused):
        renew_now(session, line_id=line.id or 0, actor=STAFF, now=NOW)
    assert len(_entries(session)) == 24


def test_a_free_plan_renews_without_an_entry(session: Session, world: World) -> None:
    from tests.unit.plans.helpers import make_plan, publish

    assert world.host.id is not None
    free = publish(
        session,
        make_plan(session, host_id=world.host.id, code="FREE30", price_minor=0),
        override_negative_margin=True,
        reason="promotion",
    )
    line = make_line(session, world)
    open_period(session, line=line, plan=free, start=NOW, now=NOW)

    report = _run(session, END + PERIOD)

    assert report.periods_opened == 2
    assert [p.entry_id for p in _periods(session, line)] == [None, None, None]
    assert _entries(session) == []
    assert _fresh(session, line).status == "active"


# -- concurrency ----------------------------------------------------------------------------


@pytest.fixture
def own_database(backend: str, tmp_path: Any) -> Any:
    """A fresh, migrated database of the backend, outside the per-test rollback."""
    yield from fresh_database(backend, tmp_path, "concurrency", pool_size=12)


def test_parallel_runs_and_credits_handle_each_line_once_without_deadlock(
    own_database: Database,
) -> None:
    """Two runs of three workers each and a credit per customer, all at once."""

    customers: list[int] = []
    with own_database.transaction() as session:
        world = make_world(session, code="PAR")
        for k in range(12):
            customer = subscribers.create_customer(session, ref=f"C-PAR{k}", now=NOW)
            assert customer.id is not None
            customers.append(customer.id)
            for _ in range(3):
                line = make_line(session, world)
                line.customer_id = customer.id
                session.add(line)
                session.flush()
                open_period(session, line=line, plan=world.plan, start=NOW, now=NOW)
            if k % 4:  # 0 to 3 renewals' worth, before the credit below
                credit_customer(
                    session,
                    customer_id=customer.id,
                    amount_minor=PRICE * (k % 4),
                    source_kind="cash_offline",
                    idempotency_key=f"seed-{k}",
                    actor=STAFF,
                    now=NOW,
                    currency="CNY",
                    **POLICY.cap_kwargs(),
                )
    errors: list[BaseException] = []
    reports: list[RenewalReport] = []

    def run() -> None:
        try:
            reports.append(
                run_renewals(own_database, now=END, quarantine_days=90, workers=3, batch_size=5)
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    def pay(customer_id: int) -> None:
        try:
            with own_database.transaction() as session:
                record_offline_payment(
                    session,
                    customer_id=customer_id,
                    amount_minor=PRICE,
                    method="cash",
                    reference=f"PAR-{customer_id}",
                    actor=STAFF,
                    now=END,
                    policy=POLICY,
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    threads += [threading.Thread(target=pay, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(r.lines_seen for r in reports) == 36  # each line taken by one run only
    with own_database.transaction(write=False) as session:
        _ledger_ok(session)
        lines = session.exec(select(Line)).all()
        assert all(
            (line.status == "active" and line.period_end == END + PERIOD)
            or (line.status == "suspended" and line.period_end == END)
            for line in lines
        )
        periods = session.exec(select(func.count()).select_from(LinePeriod)).one()
        renewed = sum(1 for line in lines if line.period_end == END + PERIOD)
        assert periods == 36 + renewed
        assert len(_entries(session)) == renewed


# -- every credit resumes, except money meant for a store order -----------------------------


def _suspended_line(session: Session, world: World) -> Line:
    line = _line(session, world)
    _run(session, END)
    assert _fresh(session, line).status == "suspended"
    return line


def test_a_positive_adjustment_resumes_and_a_negative_one_does_not(
    session: Session, world: World
) -> None:
    from app.payments.services import adjust_balance

    line = _suspended_line(session, world)
    common: dict[str, Any] = {
        "customer_id": world.customer.id,
        "actor": STAFF,
        "now": END + DAY,
        "policy": POLICY,
    }
    adjust_balance(
        session, amount_minor=PRICE + 1, reason="goodwill", idempotency_key="a1", **common
    )
    assert _fresh(session, line).status == "active"
    assert _balance(session, world) == 1

    other = _suspended_line(session, world)
    adjust_balance(session, amount_minor=-1, reason="fix", idempotency_key="a2", **common)
    assert _fresh(session, other).status == "suspended"


@pytest.mark.parametrize(("purpose", "resumed"), [("topup", True), ("purchase", False)])
def test_a_card_top_up_resumes_but_a_card_purchase_pays_its_order_first(
    session: Session, world: World, purpose: str, resumed: bool
) -> None:
    from app.payments.stripe_payments import complete_stripe_payment, create_stripe_payment

    line = _suspended_line(session, world)
    payment = create_stripe_payment(
        session,
        customer_id=world.customer.id or 0,
        amount_minor=PRICE,
        purpose=purpose,
        actor=STAFF,
        now=END,
        policy=POLICY,
    )
    complete_stripe_payment(
        session,
        payment_id=payment.id or 0,
        amount_received_minor=PRICE,
        stripe_session_id="cs_test_1",
        payment_intent_id="pi_test_1",
        now=END + DAY,
        policy=POLICY,
    )

    assert (_fresh(session, line).status == "active") is resumed


def test_an_offline_payment_for_an_order_leaves_the_line_suspended(
    session: Session, world: World
) -> None:
    line = _suspended_line(session, world)
    record_offline_payment(
        session,
        customer_id=world.customer.id or 0,
        amount_minor=PRICE,
        method="cash",
        reference="ORDER-1",
        actor=STAFF,
        now=END + DAY,
        policy=POLICY,
        renew_suspended=False,
    )
    assert _fresh(session, line).status == "suspended"
    assert _balance(session, world) == PRICE
