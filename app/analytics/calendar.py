"""The dashboard's days and months in `TIMEZONE`, as UTC instants, and the SQL that
sorts rows into them.

Rules:

* A local day runs from 00:00 to the next 00:00 in the zone; a month from
  00:00 of its first day to 00:00 of the next month's first
  (`wholesale.settlement.month_bounds`). Times are stored in UTC, so each
  span is a pair of UTC instants, start included, end excluded.
* "The last N days" end with today (the local day containing `now`); "the
  last N months" end with the current month. Both are listed oldest first.
* A row is put into its span by comparing its instant with the spans'
  bounds (`span_index`): a CASE of one comparison per span on SQLite,
  `width_bucket` over the array of bounds on PostgreSQL — right across
  daylight-saving changes, cheap, and with no time zone arithmetic in the
  database. Rows
  summed per quarter-hour (`ledger_activity`, `usage_quarter_hour`) are
  sorted the same way by their bucket (`bucket_bounds`): every zone in use
  has an offset in whole quarter-hours, so a span is whole buckets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, DateTime, and_, bindparam, case, func
from sqlalchemy.dialects.postgresql import ARRAY

from app.core.errors import N_, InvalidInput
from app.ledger.activity import bucket_of
from wholesale.settlement import month_bounds

DEFAULT_DAYS = 30
DEFAULT_MONTHS = 12
MAX_DAYS = 366
MAX_MONTHS = 36


@dataclass(frozen=True)
class Span:
    """A local day (`label` YYYY-MM-DD) or month (YYYY-MM) as UTC instants [start, end)."""

    label: str
    start: datetime
    end: datetime


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def check_count(value: int, *, field: str, maximum: int) -> int:
    """`value` when it is a whole number from 1 to `maximum`.

    :raises InvalidInput: anything else, naming `field`.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(
            N_("%(name)s must be a whole number from 1 to %(max)s."),
            field=field,
            name=field,
            max=maximum,
        )
    return value


def local_date(at: datetime, timezone: str) -> date:
    """The local date of the instant `at` in `timezone`."""
    return at.astimezone(ZoneInfo(timezone)).date()


def month_label(at: datetime, timezone: str) -> str:
    """The month (YYYY-MM) containing the instant `at` in `timezone`."""
    day = local_date(at, timezone)
    return f"{day.year:04d}-{day.month:02d}"


def last_days(*, now: datetime, timezone: str, days: int = DEFAULT_DAYS) -> list[Span]:
    """The last `days` local days, today included, oldest first.

    :raises InvalidInput: `days` outside 1 to MAX_DAYS (field ``days``).
    """
    check_count(days, field="days", maximum=MAX_DAYS)
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    spans = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        spans.append(
            Span(day.isoformat(), _start_of(day, zone), _start_of(day + timedelta(1), zone))
        )
    return spans


def month_span(month: str, timezone: str) -> Span:
    """The calendar month `month` (YYYY-MM) in `timezone`.

    :raises InvalidInput: a month not written YYYY-MM (field ``month``).
    """
    start, end = month_bounds(month, timezone)
    return Span(month, start, end)


def last_months(*, now: datetime, timezone: str, months: int = DEFAULT_MONTHS) -> list[Span]:
    """The last `months` calendar months, the current one included, oldest first.

    :raises InvalidInput: `months` outside 1 to MAX_MONTHS (field ``months``).
    """
    check_count(months, field="months", maximum=MAX_MONTHS)
    today = local_date(now, timezone)
    index = today.year * 12 + today.month - 1
    labels = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(index - back, 12)
        labels.append(f"{year:04d}-{month + 1:02d}")
    return [month_span(label, timezone) for label in labels]


def span_index(
    column: Any,
    spans: Sequence[Span | BucketSpan],
    *,
    before: int | None = None,
    dialect: str = "sqlite",
) -> Any:
    """SQL: the index in `spans` of the span containing `column`'s instant; `before`
    for an instant earlier than the first span; NULL for a later one or NULL.

    `spans` must be consecutive and in order (as `last_days` and
    `last_months` give them). On PostgreSQL (`dialect`) `width_bucket` finds the
    span in the array of the spans' bounds: one bound parameter, however many
    spans, where the CASE of one comparison per span has a parameter each.
    """
    if dialect == "postgresql":
        bounds = [spans[0].start, *(span.end for span in spans)]
        kind = BigInteger() if isinstance(spans[0], BucketSpan) else DateTime(timezone=True)
        passed = func.width_bucket(column, bindparam(None, bounds, type_=ARRAY(kind)))
        return case((passed == 0, before), (passed > len(spans), None), else_=passed - 1)
    whens = [(column < span.end, index) for index, span in enumerate(spans)]
    return case((column < spans[0].start, before), *whens, else_=None)


@dataclass(frozen=True)
class BucketSpan:
    """A span as quarter-hour buckets [start, end) (`app.ledger.activity.bucket_of`)."""

    label: str
    start: int
    end: int


def bucket_bounds(spans: list[Span]) -> list[BucketSpan]:
    """The spans with their ends as quarter-hour buckets instead of instants, for
    `span_index` and `within` over a bucket column."""
    return [BucketSpan(span.label, bucket_of(span.start), bucket_of(span.end)) for span in spans]


def within(column: Any, spans: Sequence[Span | BucketSpan]) -> Any:
    """SQL: `column`'s instant lies in one of the consecutive `spans`."""
    return and_(column >= spans[0].start, column < spans[-1].end)
