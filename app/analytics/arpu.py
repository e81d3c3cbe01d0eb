"""Average revenue per line per month (ARPU).

Definitions, months in `TIMEZONE`:

* **Lines active in a month**: lines with a period overlapping it (a period
  that starts before the month ends and ends after it begins), each line
  once — the definition the host's settlement counts line fees by.
* **ARPU** = the month's revenue (plans, add-ons and overage, as in
  app/analytics/revenue.py) / its active lines, rounded half up to the
  minor unit; none for a month without active lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.analytics.calendar import DEFAULT_MONTHS, Span, last_months
from app.analytics.revenue import revenue_by_kind
from app.charging.models import LinePeriod
from app.core.db import UTCDateTime
from app.core.money import round_half_up
from app.subscribers.models import Line


@dataclass(frozen=True)
class ArpuMonth:
    """One month's revenue, active lines and ARPU (None without active lines)."""

    month: str
    revenue_minor: int
    active_lines: int
    arpu_minor: int | None


def _passed(column: Any, bounds: list[datetime], *, inclusive: bool, lo: int, hi: int) -> Any:
    """SQL: how many of the increasing `bounds` `column` has passed (is at or after,
    `inclusive`, or after), between `lo` and `hi`: a binary search, four comparisons
    for a year of months."""
    if lo == hi:
        return literal(lo)
    mid = (lo + hi) // 2
    passed = column >= bounds[mid] if inclusive else column > bounds[mid]
    return case(
        (passed, _passed(column, bounds, inclusive=inclusive, lo=mid + 1, hi=hi)),
        else_=_passed(column, bounds, inclusive=inclusive, lo=lo, hi=mid),
    )


def _unbroken_lines(session: Session, spans: list[Span]) -> list[int]:
    """Per span, the lines whose periods run end to start (no `period_gap_at`) with a
    period overlapping it: those whose service started before it ends and whose
    `period_end` comes after it begins.

    One pass over the lines: each line's start and end are placed among the
    spans' bounds, and the lines started by a span's end less those ended by its
    start are counted up in order.
    """
    bounds = [spans[0].start, *(span.end for span in spans)]
    started, ended = col(Line.service_started_at), col(Line.period_end)
    start_at = _passed(started, bounds, inclusive=True, lo=0, hi=len(bounds)).label("started")
    end_at = _passed(ended, bounds, inclusive=False, lo=0, hi=len(bounds)).label("ended")
    rows = session.execute(
        sa_select(start_at, end_at, func.count())
        .where(col(Line.period_gap_at).is_(None), started.is_not(None), ended.is_not(None))
        .group_by(start_at, end_at)
    ).all()
    # started_by[i]: lines started before bounds[i]; ended_by[i]: ended by bounds[i].
    started_by, ended_by = [0] * len(bounds), [0] * len(bounds)
    for start, end, count in rows:
        for i in range(int(start), len(bounds)):
            started_by[i] += int(count)
        for i in range(int(end), len(bounds)):
            ended_by[i] += int(count)
    return [started_by[i + 1] - ended_by[i] for i in range(len(spans))]


def _broken_lines(session: Session, spans: list[Span]) -> list[int]:
    """Per span, the lines with a gap between their periods (`period_gap_at`) with a
    period overlapping it, from their periods."""
    bounds = union_all(
        *(
            sa_select(
                literal(index).label("span"),
                literal(span.start, UTCDateTime()).label("span_start"),
                literal(span.end, UTCDateTime()).label("span_end"),
            )
            for index, span in enumerate(spans)
        )
    ).subquery()
    broken = sa_select(col(Line.id)).where(col(Line.period_gap_at).is_not(None))
    rows = session.execute(
        sa_select(bounds.c.span, func.count(func.distinct(col(LinePeriod.line_id))))
        .select_from(LinePeriod)
        .join(
            bounds,
            and_(
                col(LinePeriod.start) < bounds.c.span_end, col(LinePeriod.end) > bounds.c.span_start
            ),
        )
        .where(col(LinePeriod.line_id).in_(broken.scalar_subquery()))
        .where(col(LinePeriod.start) < spans[-1].end, col(LinePeriod.end) > spans[0].start)
        .group_by(bounds.c.span)
    ).all()
    counts = [0] * len(spans)
    for span, count in rows:
        counts[int(span)] = int(count)
    return counts


def lines_active_per_span(session: Session, *, spans: list[Span]) -> list[int]:
    """For each of the consecutive `spans`: the lines with a period overlapping it.

    Reads only. A line whose periods run end to start is covered from its start
    of service to its `period_end` (app/charging/periods.py), so those are
    counted from the lines alone; the few with a gap, from their periods.
    """
    unbroken = _unbroken_lines(session, spans)
    broken = _broken_lines(session, spans)
    return [a + b for a, b in zip(unbroken, broken, strict=True)]


def monthly_arpu(
    session: Session,
    *,
    now: datetime,
    timezone: str,
    currency: str,
    months: int = DEFAULT_MONTHS,
    revenue: list[tuple[int, int, int]] | None = None,
) -> list[ArpuMonth]:
    """Revenue, active lines and ARPU for the last `months` months, oldest first.

    `revenue` is `revenue_by_kind` of the same months when the caller has read it.
    Reads only. :raises InvalidInput: `months` outside 1 to 36 (field ``months``).
    """
    spans = last_months(now=now, timezone=timezone, months=months)
    if revenue is None:
        revenue = revenue_by_kind(session, spans=spans, currency=currency)
    lines = lines_active_per_span(session, spans=spans)
    out = []
    for span, kinds, active in zip(spans, revenue, lines, strict=True):
        total = sum(kinds)
        arpu = round_half_up(total, active) if active else None
        out.append(ArpuMonth(span.label, total, active, arpu))
    return out
