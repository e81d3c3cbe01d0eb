"""SLA arithmetic: due instants in working time, and pauses that move them.

Rules:

* **Working time** is 09:00–18:00, Monday to Friday, in the reseller's
  `TIMEZONE` (local wall-clock hours, so a daylight-saving change moves the
  window in UTC, never its length on the clock face). Public holidays are
  not modelled. A target that runs **around the clock** counts every
  instant instead.
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

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WORK_START = time(9, 0)
WORK_END = time(18, 0)
WORK_DAYS = frozenset({0, 1, 2, 3, 4})  # Monday … Friday
ONE_DAY = timedelta(days=1)
ZERO = timedelta(0)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to SLA arithmetic")
    return value.astimezone(UTC)


def working_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The working hours of a local date as UTC instants, or None on a weekend."""
    if day.weekday() not in WORK_DAYS:
        return None
    start = datetime.combine(day, WORK_START, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day, WORK_END, tzinfo=zone).astimezone(UTC)
    return start, end


def add_sla_time(
    start: datetime, amount: timedelta, *, zone: ZoneInfo, around_the_clock: bool
) -> datetime:
    """The instant at which `amount` of SLA time has passed since `start` (UTC)."""
    start = _aware(start)
    if amount < ZERO:
        raise ValueError("SLA time to add must not be negative")
    if around_the_clock or amount == ZERO:
        return start + amount
    remaining = amount
    day = start.astimezone(zone).date()
    while True:
        window = working_window(day, zone)
        if window is not None:
            opens, closes = max(window[0], start), window[1]
            if opens < closes:
                if remaining <= closes - opens:
                    return opens + remaining
                remaining -= closes - opens
        day += ONE_DAY


def working_time_between(
    start: datetime, end: datetime, *, zone: ZoneInfo, around_the_clock: bool
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
        window = working_window(day, zone)
        if window is not None:
            opens, closes = max(window[0], start), min(window[1], end)
            if opens < closes:
                total += closes - opens
        day += ONE_DAY
    return total


def due_at(opened: datetime, minutes: int, *, zone: ZoneInfo, around_the_clock: bool) -> datetime:
    """When a target of `minutes` falls due for a ticket opened at `opened`."""
    return add_sla_time(
        opened, timedelta(minutes=minutes), zone=zone, around_the_clock=around_the_clock
    )


def resume(
    due: datetime,
    *,
    paused: datetime,
    resumed: datetime,
    zone: ZoneInfo,
    around_the_clock: bool,
) -> tuple[datetime, timedelta]:
    """A due instant moved on by the SLA time of a pause, and that time.

    (new due, SLA time paused). A pause that took no SLA time (a weekend
    only, say) leaves the due instant where it was.
    """
    held = working_time_between(paused, resumed, zone=zone, around_the_clock=around_the_clock)
    return add_sla_time(due, held, zone=zone, around_the_clock=around_the_clock), held


def time_left(due: datetime, now: datetime) -> timedelta:
    """Wall-clock time until `due` (negative once it has passed)."""
    return _aware(due) - _aware(now)
