"""The SLA calendar's services: public holidays from the library, days set and removed by
admins, closures refused, and tickets whose due instants follow the calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.care import sla_calendar, workflow
from app.care.errors import SlaCalendarClosed, SlaDayInvalid, SlaDayNotFound
from app.care.models import SlaDay
from app.care.sla_calendar import (
    list_sla_days,
    load_public_holidays,
    remove_sla_day,
    set_sla_day,
    work_calendar,
)
from app.core.audit import AuditEntry
from app.core.errors import InvalidInput
from tests.unit.care.helpers import TZ, make_desk, open_complaint
from tests.unit.subscribers.helpers import STAFF

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def audits(session: Session, action: str) -> list[AuditEntry]:
    return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


def test_the_2025_public_holidays_of_china_load_with_their_make_up_days(session):
    report = load_public_holidays(session, country="CN", year=2025, actor=STAFF, now=NOW)
    # The library's 2025: Spring Festival 28 January – 4 February (the weekend between
    # is off anyway), worked on Sunday 26 January and Saturday 8 February.
    assert {date(2025, 1, 26), date(2025, 2, 8)} <= set(report.workdays)
    assert set(report.workdays) == {
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 4, 27),
        date(2025, 9, 28),
        date(2025, 10, 11),
    }
    assert {date(2025, 1, 28), date(2025, 1, 29), date(2025, 2, 3), date(2025, 2, 4)} <= set(
        report.holidays
    )
    calendar = work_calendar(session)
    assert not any(calendar.is_working_day(d) for d in days("2025-01-28", "2025-02-04"))
    assert calendar.is_working_day(date(2025, 1, 26)) and calendar.is_working_day(date(2025, 2, 8))
    assert calendar.is_working_day(date(2025, 2, 5))
    rows = {row.day: row for row in list_sla_days(session, year=2025)}
    assert rows[date(2025, 1, 29)].name == "春节"
    assert rows[date(2025, 1, 28)].name == "农历除夕"
    assert rows[date(2025, 1, 26)].kind == "workday" and rows[date(2025, 1, 26)].name == "调休上班"
    assert all(row.source == "public" for row in rows.values())
    assert len(audits(session, "sla_day.load")) == len(rows)
    assert list_sla_days(session, year=2024) == []


def test_loading_again_changes_nothing(session):
    first = load_public_holidays(session, year=2025, actor=STAFF, now=NOW)
    again = load_public_holidays(session, year=2025, actor=STAFF, now=NOW)
    assert again.holidays == again.workdays == []
    assert sorted(again.kept) == sorted(first.holidays + first.workdays)
    assert len(audits(session, "sla_day.load")) == len(first.kept) + len(first.holidays) + len(
        first.workdays
    )


def test_loading_never_overwrites_a_day_staff_set(session):
    edited = date(2025, 1, 28)
    set_sla_day(session, day=edited, kind="holiday", name="公司年会", actor=STAFF, now=NOW)
    # Staff decided the make-up Saturday is not worked here.
    set_sla_day(session, day=date(2025, 2, 8), kind="holiday", name="不调休", actor=STAFF, now=NOW)
    report = load_public_holidays(session, year=2025, actor=STAFF, now=NOW)
    assert {edited, date(2025, 2, 8)} <= set(report.kept)
    assert edited not in report.holidays and date(2025, 2, 8) not in report.workdays
    kept = session.get(SlaDay, edited)
    assert (kept.kind, kept.name, kept.source) == ("holiday", "公司年会", "staff")
    assert session.get(SlaDay, date(2025, 2, 8)).kind == "holiday"
    assert session.get(SlaDay, date(2025, 1, 29)).source == "public"


@pytest.mark.parametrize(
    ("country", "year", "field"),
    [
        ("XX", 2025, "country"),
        ("", 2025, "country"),
        ("CN", 1999, "year"),
        ("CN", 2100, "year"),
    ],
)
def test_a_load_of_nothing_known_is_refused(session, country, year, field):
    with pytest.raises(SlaDayInvalid) as refused:
        load_public_holidays(session, country=country, year=year, actor=STAFF, now=NOW)
    assert refused.value.field == field
    assert list_sla_days(session) == []


def test_a_day_is_set_corrected_and_removed_audited(session):
    day = date(2026, 10, 9)  # a Friday
    row = set_sla_day(session, day=day, kind="holiday", name="店庆", actor=STAFF, now=NOW)
    assert (row.kind, row.source) == ("holiday", "staff")
    set_sla_day(session, day=day, kind="holiday", name="店庆", actor=STAFF, now=NOW)  # same
    set_sla_day(session, day=day, kind="holiday", name="店庆日", actor=STAFF, now=NOW)
    changes = audits(session, "sla_day.set")
    assert len(changes) == 2
    assert changes[1].target_id == "2026-10-09"
    assert changes[1].details["before"] == {"kind": "holiday", "name": "店庆", "source": "staff"}
    assert not work_calendar(session).is_working_day(day)
    remove_sla_day(session, day=day, actor=STAFF, now=NOW)
    assert session.get(SlaDay, day) is None
    assert work_calendar(session).is_working_day(day)
    assert audits(session, "sla_day.remove")[0].details["before"]["name"] == "店庆日"
    with pytest.raises(SlaDayNotFound):
        remove_sla_day(session, day=day, actor=STAFF, now=NOW)


@pytest.mark.parametrize(
    ("day", "kind", "name", "field"),
    [
        (date(2026, 10, 9), "workday", "周五", "kind"),  # a Friday works anyway
        (date(2026, 10, 10), "closed", "x", "kind"),
        (date(2026, 10, 10), "workday", "x" * 101, "name"),
        (date(2026, 10, 10), "workday", "  ", "name"),
        (date(2026, 10, 10), "workday", "bad\x07bell", "name"),
        (date(1999, 12, 31), "holiday", "x", "year"),
        (date(2100, 1, 1), "holiday", "x", "year"),
    ],
)
def test_bad_days_are_refused_naming_the_field(session, day, kind, name, field):
    with pytest.raises(InvalidInput) as refused:
        set_sla_day(session, day=day, kind=kind, name=name, actor=STAFF, now=NOW)
    assert refused.value.field == field
    assert list_sla_days(session) == []


def test_a_name_of_a_hundred_characters_is_kept_whole(session):
    row = set_sla_day(
        session, day=date(2026, 10, 10), kind="workday", name="调" * 100, actor=STAFF, now=NOW
    )
    session.expire_all()
    assert session.get(SlaDay, row.day).name == "调" * 100


@pytest.mark.parametrize("text", ["2026-02-30", "2026-2-3", "20260203", "", "tomorrow"])
def test_dates_are_read_strictly(text):
    with pytest.raises(SlaDayInvalid):
        sla_calendar.parse_day(text)


def test_more_than_a_month_without_working_hours_is_refused(session):
    # Saturday 28 February to Sunday 29 March 2026 off: 30 days.
    for day in days("2026-03-02", "2026-03-27"):
        if day.weekday() < 5:
            session.add(SlaDay(day=day, kind="holiday", name="关闭", updated_at=NOW))
    session.flush()
    set_sla_day(session, day=date(2026, 3, 30), kind="holiday", name="x", actor=STAFF, now=NOW)
    with pytest.raises(SlaCalendarClosed):
        set_sla_day(session, day=date(2026, 3, 31), kind="holiday", name="x", actor=STAFF, now=NOW)
    assert session.get(SlaDay, date(2026, 3, 31)) is None
    assert sla_calendar.days_off_around(work_calendar(session), date(2026, 3, 10)) == 31
    # A make-up Saturday inside a long closure cannot be removed to join two closures.
    set_sla_day(session, day=date(2026, 4, 4), kind="workday", name="补", actor=STAFF, now=NOW)
    for day in days("2026-04-06", "2026-04-30"):
        if day.weekday() < 5:
            session.add(SlaDay(day=day, kind="holiday", name="关闭", updated_at=NOW))
    session.add(SlaDay(day=date(2026, 3, 31), kind="holiday", name="关闭", updated_at=NOW))
    session.add(SlaDay(day=date(2026, 4, 1), kind="holiday", name="关闭", updated_at=NOW))
    session.add(SlaDay(day=date(2026, 4, 2), kind="holiday", name="关闭", updated_at=NOW))
    session.add(SlaDay(day=date(2026, 4, 3), kind="holiday", name="关闭", updated_at=NOW))
    session.flush()
    with pytest.raises(SlaCalendarClosed):
        remove_sla_day(session, day=date(2026, 4, 4), actor=STAFF, now=NOW)
    assert session.get(SlaDay, date(2026, 4, 4)) is not None


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"kind": "closed"}, "ck_sla_day_kind_known"),
        ({"source": "robot"}, "ck_sla_day_source_known"),
        ({"name": ""}, "ck_sla_day_name_length"),
    ],
)
def test_the_database_keeps_the_calendar_valid(session, values, constraint):
    row = {"day": date(2026, 5, 5), "kind": "holiday", "name": "x", "updated_at": NOW, **values}
    session.add(SlaDay(**row))
    with pytest.raises(IntegrityError, match=constraint):
        session.flush()


def _spring_2026(session: Session) -> None:
    for day in (16, 17, 18, 19, 20, 23):
        set_sla_day(
            session, day=date(2026, 2, day), kind="holiday", name="春节", actor=STAFF, now=NOW
        )
    for day in (14, 28):
        set_sla_day(
            session, day=date(2026, 2, day), kind="workday", name="调休上班", actor=STAFF, now=NOW
        )


def test_a_ticket_opened_before_the_holidays_is_due_after_them(session):
    _spring_2026(session)
    desk = make_desk(session)
    # Saturday 14 February 2026, a make-up working day, 17:00 in Shanghai.
    opened = datetime(2026, 2, 14, 9, 0, tzinfo=UTC)
    ticket = open_complaint(session, desk, now=opened)
    # Complaint, normal: 8 working hours — Saturday 17–18, then Tuesday 24th 09:00–16:00.
    assert ticket.first_response_due_at == datetime(2026, 2, 24, 8, 0, tzinfo=UTC)
    urgent = open_complaint(session, desk, now=opened, priority="urgent")
    assert urgent.first_response_due_at == opened + timedelta(hours=1)  # around the clock


def test_a_pause_over_the_holidays_moves_the_due_instants_by_working_time_only(session):
    desk = make_desk(session)
    # Friday 13 February 2026 10:00 in Shanghai, before the calendar is filled.
    ticket = open_complaint(session, desk, now=datetime(2026, 2, 13, 2, 0, tzinfo=UTC))
    due = ticket.resolution_due_at
    _spring_2026(session)
    # Waits for the customer from Saturday 14th 17:00 to Tuesday 24th 10:00: 2 working hours.
    paused = datetime(2026, 2, 14, 9, 0, tzinfo=UTC)
    workflow.change_status(
        session,
        ticket_id=ticket.id,
        status="pending_customer",
        actor=desk.agent_actor,
        now=paused,
        timezone=TZ,
    )
    workflow.change_status(
        session,
        ticket_id=ticket.id,
        status="open",
        actor=desk.agent_actor,
        now=datetime(2026, 2, 24, 2, 0, tzinfo=UTC),
        timezone=TZ,
    )
    assert ticket.paused_seconds == 2 * 3600
    # Five working days from Friday 13th 10:00 was Friday 20th 10:00 (without a calendar);
    # two working hours on from there, where the 20th and 23rd are now holidays.
    assert due == datetime(2026, 2, 20, 2, 0, tzinfo=UTC)
    assert ticket.resolution_due_at == datetime(2026, 2, 24, 3, 0, tzinfo=UTC)
