"""Planning and announcing an exit (DESIGN §12): notice, sales freeze, the cap, renewals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, col, select

from app.charging.errors import RenewalRefused, SalesClosed
from app.charging.line_renewal import renew_now
from app.charging.models import LinePeriod
from app.charging.renewals import run_renewals
from app.core.errors import InvalidInput
from app.exit import schedule
from app.exit.choices import choose
from app.exit.errors import ExitNotFound, ExitRefused
from app.ledger.cap import prepaid_cap_minor
from app.notifications.models import Notification
from app.onboarding.orders import hold_number
from app.subscribers.models import Line
from tests.unit.exit.helpers import (
    ADMIN,
    ANNOUNCED,
    DAY,
    EXIT_AT,
    EXIT_DATE,
    PLANNED,
    TZ,
    announced,
    customer,
    line,
)
from tests.unit.subscribers.helpers import World, make_world

CAP = {"settings_months": 24, "reference_monthly_minor": 5000}


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def _plan(session: Session, exit_date: date, **kwargs: object) -> object:
    values = {"notice_days": None, "timezone": TZ, "actor": ADMIN, "now": PLANNED, **kwargs}
    return schedule.plan_exit(session, exit_date=exit_date, **values)  # type: ignore[arg-type]


def test_the_exit_instant_is_midnight_of_the_exit_date_in_the_time_zone() -> None:
    assert schedule.exit_instant(EXIT_DATE, TZ) == EXIT_AT


def test_a_plan_needs_the_notice_period_and_names_the_earliest_date(session: Session) -> None:
    with pytest.raises(ExitRefused, match="at least 90 days") as refused:
        _plan(session, date(2027, 2, 1))
    assert refused.value.params["earliest"] == "2027-02-19"
    # 90 days after 2026-11-20T00:00Z is 2027-02-18T00:00Z = 08:00 in Shanghai: the 19th.
    _plan(session, date(2027, 2, 19))


def test_notice_is_never_under_30_days(session: Session) -> None:
    with pytest.raises(InvalidInput, match="at least 30 days"):
        _plan(session, date(2027, 1, 1), notice_days=29)
    found = _plan(session, date(2026, 12, 21), notice_days=30)
    assert found.notice_days == 30  # type: ignore[attr-defined]


def test_planning_again_replans_the_draft_but_not_an_announced_exit(
    session: Session, world: World
) -> None:
    first = _plan(session, date(2027, 4, 1))
    second = _plan(session, EXIT_DATE)
    assert first is second and second.exit_date == EXIT_DATE  # type: ignore[attr-defined]
    schedule.announce_exit(session, timezone=TZ, actor=ADMIN, now=ANNOUNCED)
    with pytest.raises(ExitRefused, match="already announced"):
        _plan(session, date(2027, 4, 1))


def test_announcing_rechecks_the_notice(session: Session) -> None:
    _plan(session, date(2027, 2, 19))
    with pytest.raises(ExitRefused, match="at least 90 days"):
        schedule.announce_exit(session, timezone=TZ, actor=ADMIN, now=PLANNED + 2 * DAY)


def test_nothing_to_announce_or_cancel_without_a_plan(session: Session) -> None:
    with pytest.raises(ExitNotFound):
        schedule.announce_exit(session, timezone=TZ, actor=ADMIN, now=ANNOUNCED)
    with pytest.raises(ExitNotFound):
        schedule.cancel_exit(session, reason="", actor=ADMIN, now=ANNOUNCED)


def test_announcement_stops_sales_and_cancelling_reopens_them(
    session: Session, world: World
) -> None:
    announced(session)
    with pytest.raises(SalesClosed, match="2027-03-01"):
        hold_number(
            session,
            plan_id=world.plan.id,
            msisdn="+8617012340150",
            holder="cart:x",
            previous=None,
            now=ANNOUNCED,
        )
    schedule.cancel_exit(session, reason="deal with an investor", actor=ADMIN, now=ANNOUNCED)
    held = hold_number(
        session,
        plan_id=world.plan.id,
        msisdn="+8617012340150",
        holder="cart:x",
        previous=None,
        now=ANNOUNCED,
    )
    assert held.status == "reserved"


def test_after_the_announcement_the_cap_is_the_renewals_until_the_exit(
    session: Session, world: World
) -> None:
    empty = customer(session, world)
    rich = customer(session, world, balance=20_000)
    for who in (empty, rich):
        line(session, who, start=ANNOUNCED - 25 * DAY)  # renews on 26 Nov
    before = prepaid_cap_minor(session, customer_id=empty.customer.id, **CAP)
    assert before == 24 * 3900
    announced(session)
    # 26 Nov → 26 Dec → 25 Jan → 24 Feb: three periods of 39.00, then 4 days 16 h to
    # the exit instant: round_half_up(3900 × 112 h / 720 h) = 607.
    assert prepaid_cap_minor(session, customer_id=empty.customer.id, **CAP) == 3 * 3900 + 607
    # A balance prepaid before the announcement stays and takes no more.
    assert prepaid_cap_minor(session, customer_id=rich.customer.id, **CAP) == 20_000
    schedule.cancel_exit(session, reason="", actor=ADMIN, now=ANNOUNCED)
    assert prepaid_cap_minor(session, customer_id=empty.customer.id, **CAP) == before


def test_a_renewal_running_past_the_exit_is_shortened_and_pro_rated(
    session: Session, world: World
) -> None:
    who = customer(session, world, balance=10_000)
    row = line(session, who, start=EXIT_AT - 40 * DAY)  # its period ends 10 days before
    announced(session)
    run_renewals(session, now=EXIT_AT - 10 * DAY, quarantine_days=90)
    periods = session.exec(
        select(LinePeriod).where(LinePeriod.line_id == row.id).order_by(col(LinePeriod.start))
    ).all()
    assert [(p.start, p.end, p.price_minor) for p in periods][-1] == (
        EXIT_AT - 10 * DAY,
        EXIT_AT,
        1300,  # 3900 × 10 / 30
    )
    # At the exit instant nothing renews, and the line is not suspended for it.
    report = run_renewals(session, now=EXIT_AT + timedelta(minutes=5), quarantine_days=90)
    assert report.renewed == 0
    session.expire_all()
    assert session.get(Line, row.id).status == "active"


def test_renew_now_cannot_buy_past_the_exit(session: Session, world: World) -> None:
    who = customer(session, world, balance=10_000)
    row = line(session, who, start=EXIT_AT - 20 * DAY)  # ends 10 days after the exit
    announced(session)
    with pytest.raises(RenewalRefused, match="market exit"):
        renew_now(session, line_id=row.id, actor=ADMIN, now=ANNOUNCED)


def test_manual_renewal_before_the_exit_is_shortened_too(session: Session, world: World) -> None:
    who = customer(session, world, balance=10_000)
    row = line(session, who, start=EXIT_AT - 45 * DAY)  # ends 15 days before the exit
    announced(session)
    period = renew_now(session, line_id=row.id, actor=ADMIN, now=ANNOUNCED)
    assert (period.end, period.price_minor) == (EXIT_AT, 1950)


def test_announcement_notifies_customers_with_a_link_and_never_twice(
    session: Session, world: World, tmp_path: object
) -> None:
    from app.core.config import Settings
    from app.exit.workflow import announce

    who = customer(session, world)
    line(session, who, start=ANNOUNCED - DAY)
    schedule.plan_exit(
        session, exit_date=EXIT_DATE, notice_days=None, timezone=TZ, actor=ADMIN, now=PLANNED
    )
    settings = Settings(database_url="sqlite://", secret_key="x", instance_path=tmp_path)  # type: ignore[arg-type]
    for _ in range(2):
        found, report = announce(
            session,
            settings=settings,
            actor=ADMIN,
            now=ANNOUNCED,
            out_dir=tmp_path,  # type: ignore[arg-type]
        )
    notices = session.exec(
        select(Notification).where(
            Notification.kind == "exit_notice", Notification.customer_id == who.customer.id
        )
    ).all()
    assert len(notices) == 1
    assert notices[0].data["choose_url"].endswith("/exit")
    assert notices[0].data["exit_date"] == "2027-03-01"
    assert "exit_date,2027-03-01" in report.read_text(encoding="utf-8")
    assert found.state == "announced"


def test_choices_are_taken_until_the_exit_instant_and_can_change(
    session: Session, world: World
) -> None:
    who = customer(session, world)
    row = line(session, who, start=ANNOUNCED - DAY)
    with pytest.raises(ExitNotFound):
        choose(session, msisdn=row.msisdn, choice="transfer", actor=ADMIN, now=ANNOUNCED, note="x")
    announced(session)
    subscriber = ADMIN.__class__("subscriber", 9, "me@example.com")
    first = choose(
        session,
        msisdn=row.msisdn,
        choice="transfer",
        actor=subscriber,
        now=ANNOUNCED,
        customer_id=who.customer.id,
    )
    assert (first.choice, first.given_by) == ("transfer", "customer")
    changed = choose(
        session, msisdn=row.msisdn, choice="terminate", actor=ADMIN, now=ANNOUNCED, note="phone"
    )
    assert changed.id == first.id and changed.given_by == "staff"
    with pytest.raises(InvalidInput):
        choose(session, msisdn=row.msisdn, choice="terminate", actor=ADMIN, now=ANNOUNCED)
    other = customer(session, world)
    from app.core.errors import Forbidden

    with pytest.raises(Forbidden):
        choose(
            session,
            msisdn=row.msisdn,
            choice="transfer",
            actor=subscriber,
            now=ANNOUNCED,
            customer_id=other.customer.id,
        )
    with pytest.raises(ExitRefused, match="exit date has come"):
        choose(session, msisdn=row.msisdn, choice="transfer", actor=ADMIN, now=EXIT_AT, note="late")
