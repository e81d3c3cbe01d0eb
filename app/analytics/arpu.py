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

from sqlalchemy import and_, func, literal, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.analytics.calendar import DEFAULT_MONTHS, Span, last_months
from app.analytics.revenue import revenue_by_kind
from app.charging.models import LinePeriod
from app.core.db import UTCDateTime
from app.core.money import round_half_up


@dataclass(frozen=True)
class ArpuMonth:
    """One month's revenue, active lines and ARPU (None without active lines)."""

    month: str
    revenue_minor: int
    active_lines: int
    arpu_minor: int | None


def lines_active_per_span(session: Session, *, spans: list[Span]) -> list[int]:
    """For each of the consecutive `spans`: the lines with a period overlapping it.

    Reads only; one query over the periods that reach into the spans.
    """
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
    rows = session.execute(
        sa_select(bounds.c.span, func.count(func.distinct(col(LinePeriod.line_id))))
        .select_from(LinePeriod)
        .join(
            bounds,
            and_(
                col(LinePeriod.start) < bounds.c.span_end, col(LinePeriod.end) > bounds.c.span_start
            ),
        )
        .where(col(LinePeriod.start) < spans[-1].end, col(LinePeriod.end) > spans[0].start)
        .group_by(bounds.c.span)
    ).all()
    counts = [0] * len(spans)
    for span, count in rows:
        counts[int(span)] = int(count)
    return counts


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
