"""SLA arithmetic: due instants in working time, and pauses that move them.

Rules:

* **Working time** is 09:00–18:00, Monday to Friday, in the reseller's
  `TIMEZONE` (local wall-clock hours, so a daylight-saving change moves the
  window in UTC, never its length on the clock face), as the **calendar**
  (`WorkCalendar`, the table of app/care/sla_calendar.py) amends it: a
  `holiday` has no working hours, a `workday` — a Saturday or Sunday
  declared a working day, 调休 — has 09:00–18:00. The dates are local dates
  in `TIMEZONE`. A target that runs **around the clock** counts every
  instant instead and ignores the calendar.
* **Bounded search.** A calendar with no working day in `MAX_CLOSED_DAYS`
  days in a row would leave a due instant nowhere: the search stops there
  and raises `SlaCalendarClosed` rather than looping (the calendar's
  services refuse such a calendar long before, app/care/sla_calendar.py).
* **Due** = the instant at which `minutes` of SLA time have passed since the
  start: a start outside working hours counts from the next opening
  (08:59 and 09:00 both give 09:00 + minutes); time that runs out exactly
  at 18:00 is due at 18:00, not at the next morning's 09:00.
* **Pauses.** While a ticket waits for the customer its clock stops: on the
  customer's reply each due instant still ahead moves on by the SLA time
  that passed during the pause (`working_time_between(paused, resumed)`),
  which is the same as counting the remaining time from the resumption.

Every function is pure: instants in, instants out (aware datetimes; results
in UTC). Naive datetimes are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.care.errors import SlaCalendarClosed
from app.core.errors import N_

WORK_START = time(9, 0)
WORK_END = time(18, 0)
WORK_DAYS = frozenset({0, 1, 2, 3, 4})  # Monday … Friday
ONE_DAY = timedelta(days=1)
ZERO = timedelta(0)
# Longer than any closure a care desk has: a search that finds no working hours
# in this many days in a row gives up (see the module's rules).
MAX_CLOSED_DAYS = 366


@dataclass(frozen=True)
class WorkCalendar:
    """Local dates that differ from Monday–Friday: days off, and weekend days worked."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"a date is both a holiday and a workday: {min(both)}")

    def is_working_day(self, day: date) -> bool:
        """Whether the local date has working hours."""
        if day in self.holidays:
            return False
        return day in self.workdays or day.weekday() in WORK_DAYS


NO_CALENDAR = WorkCalendar()


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to SLA arithmetic")
    return value.astimezone(UTC)


def working_window(
    day: date, zone: ZoneInfo, calendar: WorkCalendar = NO_CALENDAR
) -> tuple[datetime, datetime] | None:
    """The working hours of a local date as UTC instants, or None on a day off."""
    if not calendar.is_working_day(day):
        return None
    start = datetime.combine(day, WORK_START, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day, WORK_END, tzinfo=zone).astimezone(UTC)
    return start, end


def add_sla_time(
    start: datetime,
    amount: timedelta,
    *,
    zone: ZoneInfo,
    around_the_clock: bool,
    calendar: WorkCalendar = NO_CALENDAR,
) -> datetime:
    """The instant at which `amount` of SLA time has passed since `start` (UTC).

    :raises SlaCalendarClosed: no working day in `MAX_CLOSED_DAYS` days in a row.
    """
    start = _aware(start)
    if amount < ZERO:
        raise ValueError("SLA time to add must not be negative")
    if around_the_clock or amount == ZERO:
        return start + amount
    remaining = amount
    day = start.astimezone(zone).date()
    closed = 0
    while True:
        window = working_window(day, zone, calendar)
        if window is None:
            closed += 1
            if closed >= MAX_CLOSED_DAYS:
                raise SlaCalendarClosed(
                    N_("The SLA calendar has no working day in the %(days)s days from %(day)s on."),
                    days=MAX_CLOSED_DAYS,
                    day=(day - timedelta(days=closed - 1)).isoformat(),
                )
        else:
            closed = 0
            opens, closes = max(window[0], start), window[1]
            if opens < closes:
                if remaining <= closes - opens:
                    return opens + remaining
                remaining -= closes - opens
        day += ONE_DAY


def working_time_between(
    start: datetime,
    end: datetime,
    *,
    zone: ZoneInfo,
    around_the_clock: bool,
    calendar: WorkCalendar = NO_CALENDAR,
) -> timedelta:
    """How much SLA time passes from `start` to `end` (zero when `end` is not later)."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        return ZERO
    if around_the_clock:
        return end - start
    total = ZERO
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day <= last:
        window = working_window(day, zone, calendar)
        if window is not None:
            opens, closes = max(window[0], start), min(window[1], end)
            if opens < closes:
                total += closes - opens
        day += ONE_DAY
    return total


def due_at(
    opened: datetime,
    minutes: int,
    *,
    zone: ZoneInfo,
    around_the_clock: bool,
    calendar: WorkCalendar = NO_CALENDAR,
) -> datetime:
    """When a target of `minutes` falls due for a ticket opened at `opened`."""
    return add_sla_time(
        opened,
        timedelta(minutes=minutes),
        zone=zone,
        around_the_clock=around_the_clock,
        calendar=calendar,
    )


def resume(
    due: datetime,
    *,
    paused: datetime,
    resumed: datetime,
    zone: ZoneInfo,
    around_the_clock: bool,
    calendar: WorkCalendar = NO_CALENDAR,
) -> tuple[datetime, timedelta]:
    """A due instant moved on by the SLA time of a pause, and that time.

    (new due, SLA time paused). A pause that took no SLA time (a weekend
    or a holiday only, say) leaves the due instant where it was.
    """
    held = working_time_between(
        paused, resumed, zone=zone, around_the_clock=around_the_clock, calendar=calendar
    )
    moved = add_sla_time(due, held, zone=zone, around_the_clock=around_the_clock, calendar=calendar)
    return moved, held


def time_left(due: datetime, now: datetime) -> timedelta:
    """Wall-clock time until `due` (negative once it has passed)."""
    return _aware(due) - _aware(now)
