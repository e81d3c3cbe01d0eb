"""Lines now, and lines in service, activations and terminations per local day
(DESIGN §10).

Definitions:

* **Active now**: lines whose status is `active` (pending and suspended
  lines are counted beside it, not in it).
* **Activations** of a day: the lifecycle's `line.activate` audit records
  of that day — a line the host activated. Lines brought in by a migration
  import arrive active and are not activations.
* **Terminations** of a day: the `line.terminate`, `line.port_out` and
  `line.transfer` audit records of that day — every way a line ends.
* **Lines in service** at the end of a day: lines whose first period had
  started by then and that had not ended by then (status terminated,
  ported out or transferred, ended at `status_changed_at`: a final status
  never changes again). A suspended line is in service: it keeps its
  number and its periods.

Counted set-based: the lines in service when the first day begins, then
per day the lines that started and ended, added up in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.analytics.calendar import DEFAULT_DAYS, Span, last_days, span_index, within
from app.charging.models import LinePeriod
from app.core.audit import AuditEntry
from app.subscribers.models import FINAL_LINE_STATUSES, Line

ACTIVATION_ACTIONS = ("line.activate",)
BEFORE = -1
TERMINATION_ACTIONS = ("line.terminate", "line.port_out", "line.transfer")


@dataclass(frozen=True)
class LineDay:
    """One local day: lines in service at its end, and its activations and terminations."""

    day: str
    in_service: int
    activations: int
    terminations: int


@dataclass(frozen=True)
class LineActivity:
    """Lines by status now and the daily series, oldest day first."""

    active_now: int
    suspended_now: int
    pending_now: int
    days: list[LineDay]


def count_lines_by_status(session: Session) -> dict[str, int]:
    """How many lines have each status now (statuses with none are left out)."""
    rows = session.execute(
        sa_select(col(Line.status), func.count()).group_by(col(Line.status))
    ).all()
    return {status: int(count) for status, count in rows}


def _audit_counts(session: Session, spans: list[Span]) -> tuple[list[int], list[int]]:
    """Activations and terminations per span, from the lifecycle's audit records."""
    actions = (*ACTIVATION_ACTIONS, *TERMINATION_ACTIONS)
    inner = (
        sa_select(
            span_index(col(AuditEntry.at), spans).label("span"),
            col(AuditEntry.action).label("action"),
        )
        .where(col(AuditEntry.action).in_(actions), within(col(AuditEntry.at), spans))
        .subquery()
    )
    rows = session.execute(
        sa_select(inner.c.span, inner.c.action, func.count()).group_by(inner.c.span, inner.c.action)
    ).all()
    activations, terminations = [0] * len(spans), [0] * len(spans)
    for span, action, count in rows:
        if span is None:
            continue
        target = activations if action in ACTIVATION_ACTIONS else terminations
        target[int(span)] += int(count)
    return activations, terminations


def _service_changes(session: Session, spans: list[Span]) -> tuple[int, list[int], list[int]]:
    """(lines in service when the first span begins, lines started per span, ended per span).

    A line starts at its first period's start and ends at its final status's
    `status_changed_at`, never before it started.
    """
    first = (
        sa_select(
            col(LinePeriod.line_id).label("line_id"),
            func.min(col(LinePeriod.start)).label("started"),
        )
        .group_by(col(LinePeriod.line_id))
        .subquery()
    )
    changed = col(Line.status_changed_at)
    ended = case(
        (
            col(Line.status).in_(FINAL_LINE_STATUSES),
            case((changed > first.c.started, changed), else_=first.c.started),
        ),
        else_=None,
    )
    # One pass: each line's start and end as a span index, BEFORE when earlier
    # than the first span, NULL when later (or, for the end, when still live).
    lines = (
        sa_select(
            span_index(first.c.started, spans, before=BEFORE).label("started"),
            span_index(ended, spans, before=BEFORE).label("ended"),
        )
        .join(Line, col(Line.id) == first.c.line_id)
        .subquery()
    )
    rows = session.execute(
        sa_select(lines.c.started, lines.c.ended, func.count()).group_by(
            lines.c.started, lines.c.ended
        )
    ).all()
    base, started, ended_per_span = 0, [0] * len(spans), [0] * len(spans)
    for start, end, count in rows:
        for index, counts, sign in ((start, started, 1), (end, ended_per_span, -1)):
            if index == BEFORE:
                base += sign * int(count)
            elif index is not None:
                counts[int(index)] += int(count)
    return base, started, ended_per_span


def line_activity(
    session: Session, *, now: datetime, timezone: str, days: int = DEFAULT_DAYS
) -> LineActivity:
    """Lines by status now, and per local day of the last `days` (today included):
    lines in service at the day's end, activations and terminations.

    Reads only. :raises InvalidInput: `days` outside 1 to 366 (field ``days``).
    """
    spans = last_days(now=now, timezone=timezone, days=days)
    by_status = count_lines_by_status(session)
    activations, terminations = _audit_counts(session, spans)
    base, started, ended = _service_changes(session, spans)
    in_service = [base + n for n in accumulate(s - e for s, e in zip(started, ended, strict=True))]
    return LineActivity(
        active_now=by_status.get("active", 0),
        suspended_now=by_status.get("suspended", 0),
        pending_now=by_status.get("pending", 0),
        days=[
            LineDay(span.label, in_service[i], activations[i], terminations[i])
            for i, span in enumerate(spans)
        ],
    )
