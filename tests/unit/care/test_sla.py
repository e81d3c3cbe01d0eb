"""SLA arithmetic at its boundaries: working hours, weekends, pauses, 24×7, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.care import sla
from app.care.errors import SlaCalendarClosed

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    """A local wall-clock time ("2026-12-04 17:30", a Friday) as an aware instant."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def local(value: datetime, zone: ZoneInfo = SHANGHAI) -> str:
    return value.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


# 2026-12-04 is a Friday; 12-05/06 the weekend; 12-07 a Monday.
@pytest.mark.parametrize(
    ("opened", "minutes", "due"),
    [
        ("2026-12-04 17:30", 60, "Mon 2026-12-07 09:30"),  # Friday evening: over the weekend
        ("2026-12-04 17:00", 60, "Fri 2026-12-04 18:00"),  # runs out at closing: due then
        ("2026-12-07 08:59", 60, "Mon 2026-12-07 10:00"),  # before opening: from 09:00
        ("2026-12-07 09:00", 60, "Mon 2026-12-07 10:00"),
        ("2026-12-07 18:00", 60, "Tue 2026-12-08 10:00"),  # at closing: from tomorrow
        ("2026-12-07 17:59", 1, "Mon 2026-12-07 18:00"),
        ("2026-12-07 17:59", 2, "Tue 2026-12-08 09:01"),
        ("2026-12-05 10:00", 60, "Mon 2026-12-07 10:00"),  # opened on a Saturday
        ("2026-12-06 23:59", 540, "Mon 2026-12-07 18:00"),  # a whole working day
        ("2026-12-07 10:00", 8 * 60, "Mon 2026-12-07 18:00"),  # complaint, normal: 8 h
        ("2026-12-07 10:00", 5 * 540, "Mon 2026-12-14 10:00"),  # … 5 working days
        ("2026-12-04 17:30", 10 * 540, "Fri 2026-12-18 17:30"),  # two weekends
    ],
)
def test_due_in_working_hours(opened, minutes, due):
    result = sla.due_at(at(opened), minutes, zone=SHANGHAI, around_the_clock=False)
    assert local(result) == due
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("opened", "minutes", "due"),
    [
        ("2026-12-04 17:30", 60, "Fri 2026-12-04 18:30"),  # urgent: first response in 1 h
        ("2026-12-04 17:30", 8 * 60, "Sat 2026-12-05 01:30"),  # … resolution in 8 h
        ("2026-12-05 10:00", 60, "Sat 2026-12-05 11:00"),  # weekends count
    ],
)
def test_due_around_the_clock(opened, minutes, due):
    assert local(sla.due_at(at(opened), minutes, zone=SHANGHAI, around_the_clock=True)) == due


def test_working_time_between_counts_only_working_hours():
    between = sla.working_time_between(
        at("2026-12-04 17:00"), at("2026-12-07 10:00"), zone=SHANGHAI, around_the_clock=False
    )
    assert between == timedelta(hours=2)  # Friday 17–18, Monday 9–10
    assert sla.working_time_between(
        at("2026-12-07 12:00"), at("2026-12-07 11:00"), zone=SHANGHAI, around_the_clock=False
    ) == timedelta(0)
    assert sla.working_time_between(
        at("2026-12-04 17:00"), at("2026-12-07 10:00"), zone=SHANGHAI, around_the_clock=True
    ) == timedelta(hours=65)


def test_a_pause_across_a_weekend_moves_the_due_time_by_its_working_time():
    due, held = sla.resume(
        at("2026-12-07 12:00"),
        paused=at("2026-12-04 17:00"),
        resumed=at("2026-12-07 10:00"),
        zone=SHANGHAI,
        around_the_clock=False,
    )
    assert held == timedelta(hours=2)
    assert local(due) == "Mon 2026-12-07 14:00"


def test_a_pause_within_a_weekend_moves_nothing():
    before = at("2026-12-07 12:00")
    due, held = sla.resume(
        before,
        paused=at("2026-12-05 10:00"),
        resumed=at("2026-12-06 15:00"),
        zone=SHANGHAI,
        around_the_clock=False,
    )
    assert held == timedelta(0)
    assert due == before


def test_a_pause_around_the_clock_moves_by_its_whole_length():
    due, held = sla.resume(
        at("2026-12-05 01:30"),
        paused=at("2026-12-04 20:00"),
        resumed=at("2026-12-05 00:00"),
        zone=SHANGHAI,
        around_the_clock=True,
    )
    assert held == timedelta(hours=4)
    assert local(due) == "Sat 2026-12-05 05:30"


def test_moving_a_due_time_equals_counting_the_rest_from_the_resumption():
    opened, paused, resumed = at("2026-12-03 16:00"), at("2026-12-04 10:00"), at("2026-12-08 15:00")
    due = sla.due_at(opened, 1200, zone=SHANGHAI, around_the_clock=False)
    rest = sla.working_time_between(paused, due, zone=SHANGHAI, around_the_clock=False)
    moved, _held = sla.resume(
        due, paused=paused, resumed=resumed, zone=SHANGHAI, around_the_clock=False
    )
    assert moved == sla.add_sla_time(resumed, rest, zone=SHANGHAI, around_the_clock=False)


def test_working_hours_are_local_in_another_time_zone_across_a_daylight_saving_change():
    # London leaves summer time on Sunday 2026-10-25: Friday 17:30 BST is 16:30 UTC,
    # Monday 09:30 GMT is 09:30 UTC.
    due = sla.due_at(at("2026-10-23 17:30", LONDON), 60, zone=LONDON, around_the_clock=False)
    assert due == datetime(2026, 10, 26, 9, 30, tzinfo=UTC)
    # The same instant in Shanghai is Saturday 00:30: due Monday 10:00 there.
    shanghai = sla.due_at(at("2026-10-23 17:30", LONDON), 60, zone=SHANGHAI, around_the_clock=False)
    assert local(shanghai) == "Mon 2026-10-26 10:00"
    # New York: 09:00–18:00 local is 14:00–23:00 UTC in winter.
    ny = sla.due_at(
        datetime(2026, 12, 7, 22, 30, tzinfo=UTC), 60, zone=NEW_YORK, around_the_clock=False
    )
    assert ny == datetime(2026, 12, 8, 14, 30, tzinfo=UTC)


def test_zero_time_is_due_at_once_and_naive_times_are_refused():
    start = at("2026-12-05 10:00")
    assert sla.due_at(start, 0, zone=SHANGHAI, around_the_clock=False) == start
    with pytest.raises(ValueError, match="naive"):
        sla.due_at(datetime(2026, 12, 7, 9, 0), 60, zone=SHANGHAI, around_the_clock=False)
    with pytest.raises(ValueError, match="negative"):
        sla.add_sla_time(start, timedelta(minutes=-1), zone=SHANGHAI, around_the_clock=False)


def test_time_left_is_negative_once_overdue():
    due = at("2026-12-07 10:00")
    assert sla.time_left(due, at("2026-12-07 09:00")) == timedelta(hours=1)
    assert sla.time_left(due, at("2026-12-07 10:30")) == timedelta(minutes=-30)


# The 2026 Spring Festival as the State Council set it: 15–23 February off (the
# weekdays 16–20 and 23 are holidays, 15, 21 and 22 a weekend anyway), and the
# Saturdays 14 and 28 February worked instead.
SPRING_2026 = sla.WorkCalendar(
    holidays=frozenset(datetime(2026, 2, d).date() for d in (16, 17, 18, 19, 20, 23)),
    workdays=frozenset({datetime(2026, 2, 14).date(), datetime(2026, 2, 28).date()}),
)


def due_with(opened: str, minutes: int, calendar: sla.WorkCalendar, zone: ZoneInfo = SHANGHAI):
    return sla.due_at(
        at(opened, zone), minutes, zone=zone, around_the_clock=False, calendar=calendar
    )


@pytest.mark.parametrize(
    ("opened", "minutes", "due"),
    [
        # The evening before the holiday week: from the first working morning after it.
        ("2026-02-14 17:30", 60, "Tue 2026-02-24 09:30"),
        ("2026-02-14 18:00", 60, "Tue 2026-02-24 10:00"),
        ("2026-02-14 17:59", 2, "Tue 2026-02-24 09:01"),
        ("2026-02-16 10:00", 60, "Tue 2026-02-24 10:00"),  # opened during the holidays
        ("2026-02-22 23:59", 540, "Tue 2026-02-24 18:00"),  # Mon 23 is a holiday too
        # A make-up Saturday counts 09:00–18:00, like a weekday.
        ("2026-02-13 17:30", 60, "Sat 2026-02-14 09:30"),
        ("2026-02-14 08:00", 540, "Sat 2026-02-14 18:00"),
        ("2026-02-14 17:00", 60, "Sat 2026-02-14 18:00"),
        ("2026-02-27 17:00", 120, "Sat 2026-02-28 10:00"),
        ("2026-02-21 12:00", 60, "Tue 2026-02-24 10:00"),  # an ordinary weekend day stays off
        # Thursday 10:00 + 5 working days: Thu, Fri, Sat 14, Tue 24, Wed 25, Thu 26 10:00.
        ("2026-02-12 10:00", 5 * 540, "Thu 2026-02-26 10:00"),
    ],
)
def test_due_in_working_hours_of_the_calendar(opened, minutes, due):
    assert local(due_with(opened, minutes, SPRING_2026)) == due


def test_no_calendar_keeps_the_plain_week():
    # Without days set, the same Saturday is a weekend and the holiday week works.
    assert local(due_with("2026-02-13 17:30", 60, sla.NO_CALENDAR)) == "Mon 2026-02-16 09:30"
    assert due_with("2026-02-13 17:30", 60, sla.NO_CALENDAR) == sla.due_at(
        at("2026-02-13 17:30"), 60, zone=SHANGHAI, around_the_clock=False
    )


def test_around_the_clock_ignores_the_calendar():
    due = sla.due_at(
        at("2026-02-16 10:00"), 60, zone=SHANGHAI, around_the_clock=True, calendar=SPRING_2026
    )
    assert local(due) == "Mon 2026-02-16 11:00"
    held = sla.working_time_between(
        at("2026-02-16 00:00"),
        at("2026-02-17 00:00"),
        zone=SHANGHAI,
        around_the_clock=True,
        calendar=SPRING_2026,
    )
    assert held == timedelta(hours=24)


@pytest.mark.parametrize(
    ("paused", "resumed", "held_hours", "due_after"),
    [
        # Paused and resumed within the holidays: no SLA time, the due instant stays.
        ("2026-02-16 10:00", "2026-02-23 17:00", 0, "Mon 2026-03-02 12:00"),
        # Friday 17–18, the make-up Saturday 9–18, Tuesday 9–10: 11 working hours.
        ("2026-02-13 17:00", "2026-02-24 10:00", 11, "Tue 2026-03-03 14:00"),
        # From the last working hour before the holidays to the first after them: 2 h.
        ("2026-02-14 17:00", "2026-02-24 10:00", 2, "Mon 2026-03-02 14:00"),
    ],
)
def test_a_pause_spanning_the_holidays_takes_no_sla_time_for_them(
    paused, resumed, held_hours, due_after
):
    due, held = sla.resume(
        at("2026-03-02 12:00"),
        paused=at(paused),
        resumed=at(resumed),
        zone=SHANGHAI,
        around_the_clock=False,
        calendar=SPRING_2026,
    )
    assert held == timedelta(hours=held_hours)
    assert local(due) == due_after


def test_holidays_are_local_dates_of_the_zone_given():
    christmas = sla.WorkCalendar(
        holidays=frozenset({datetime(2026, 12, 25).date(), datetime(2026, 12, 28).date()})
    )
    # London: Thursday 24 December 17:30 GMT, Friday 25 and Monday 28 off → Tuesday 09:30 GMT.
    due = due_with("2026-12-24 17:30", 60, christmas, LONDON)
    assert due == datetime(2026, 12, 29, 9, 30, tzinfo=UTC)
    # New York, Thanksgiving Thursday 26 November: Wednesday 17:30 EST → Friday 09:30 EST.
    thanksgiving = sla.WorkCalendar(holidays=frozenset({datetime(2026, 11, 26).date()}))
    ny = due_with("2026-11-25 17:30", 60, thanksgiving, NEW_YORK)
    assert ny == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    # The same London instant is Friday 01:30 in Shanghai, where the 25th is off as well.
    shanghai = sla.due_at(
        at("2026-12-24 17:30", LONDON),
        60,
        zone=SHANGHAI,
        around_the_clock=False,
        calendar=christmas,
    )
    assert local(shanghai) == "Tue 2026-12-29 10:00"


def _closed_for(days: int, first: str = "2027-01-01") -> sla.WorkCalendar:
    start = datetime.fromisoformat(first).date()
    return sla.WorkCalendar(holidays=frozenset(start + timedelta(days=n) for n in range(days)))


def test_a_long_closure_is_waited_out_but_a_calendar_without_working_days_is_refused():
    # Monday 4 January to Friday 31 December 2027 off, then a weekend: 364 days.
    just_open = sla.add_sla_time(
        at("2027-01-04 10:00"),
        timedelta(hours=1),
        zone=SHANGHAI,
        around_the_clock=False,
        calendar=_closed_for(362, "2027-01-04"),
    )
    assert local(just_open) == "Mon 2028-01-03 10:00"
    opened = at("2027-01-01 10:00")
    with pytest.raises(SlaCalendarClosed) as refused:
        sla.add_sla_time(
            opened,
            timedelta(hours=1),
            zone=SHANGHAI,
            around_the_clock=False,
            calendar=_closed_for(sla.MAX_CLOSED_DAYS + 30),
        )
    assert refused.value.params == {"days": 366, "day": "2027-01-01"}


def test_a_date_cannot_be_both_a_holiday_and_a_workday():
    day = datetime(2026, 2, 14).date()
    with pytest.raises(ValueError, match="both"):
        sla.WorkCalendar(holidays=frozenset({day}), workdays=frozenset({day}))
    assert SPRING_2026.is_working_day(day)
    assert not SPRING_2026.is_working_day(datetime(2026, 2, 16).date())
