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

Counted set-based from `line` (`service_started_at` is the start of its
first period, kept by app/charging): one pass over the lines for the
statuses now and the live lines in service when the first day begins; the
lines that started in the window and the ended lines that ended in it or
later (ended lines in service when it begins) each through an index; then
per day the lines that started and ended, added up in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate

from sqlalchemy import case, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.analytics.calendar import DEFAULT_DAYS, Span, last_days, span_index, within
from app.core.audit import AuditEntry
from app.subscribers.models import FINAL_LINE_STATUSES, Line

ACTIVATION_ACTIONS = ("line.activate",)
LIVE_STATUSES = ("active", "suspended", "pending")
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


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _audit_counts(session: Session, spans: list[Span]) -> tuple[list[int], list[int]]:
    """Activations and terminations per span, from the lifecycle's audit records.

    The records are read through the (action, at) index in a subquery of its own
    (`OFFSET 0`): folded into the grouping, a misestimate of how many there are
    had PostgreSQL start parallel workers to sort a handful of rows into days.
    """
    actions = (*ACTIVATION_ACTIONS, *TERMINATION_ACTIONS)
    records = (
        sa_select(col(AuditEntry.at).label("at"), col(AuditEntry.action).label("action"))
        .where(col(AuditEntry.action).in_(actions), within(col(AuditEntry.at), spans))
        .offset(0)
        .subquery()
    )
    span = span_index(records.c.at, spans, dialect=_dialect(session)).label("span")
    rows = session.execute(
        sa_select(span, records.c.action, func.count()).group_by(span, records.c.action)
    ).all()
    activations, terminations = [0] * len(spans), [0] * len(spans)
    for index, action, count in rows:
        if index is None:
            continue
        target = activations if action in ACTIVATION_ACTIONS else terminations
        target[int(index)] += int(count)
    return activations, terminations


def _count_statuses(session: Session) -> dict[str, int]:
    """How many lines are active, suspended and pending now: one pass over the lines."""
    status = col(Line.status)
    row = session.execute(
        sa_select(*(func.count().filter(status == name) for name in LIVE_STATUSES))
    ).one()
    return dict(zip(LIVE_STATUSES, (int(n) for n in row), strict=True))


def _service_changes(
    session: Session, spans: list[Span], live: int
) -> tuple[int, list[int], list[int]]:
    """(lines in service when the first span begins, lines started per span, ended per span).

    A line starts at its first period's start and ends at its final status's
    `status_changed_at`, never before it started. In service when the first
    span begins: the `live` lines (not ended) but those that started in it or
    later or never, and the ended lines that started before it and ended in
    it or later — each set read through an index.
    """
    first, dialect = spans[0].start, _dialect(session)
    started_at, changed = col(Line.service_started_at), col(Line.status_changed_at)
    is_ended = col(Line.status).in_(FINAL_LINE_STATUSES)
    late = session.execute(
        sa_select(
            is_ended.label("ended"),
            span_index(started_at, spans, dialect=dialect).label("span"),
            func.count(),
        )
        .where(or_(started_at >= first, started_at.is_(None)))
        .group_by("ended", "span")
    ).all()
    ended_at = case((changed > started_at, changed), else_=started_at)
    ends = session.execute(
        sa_select(
            span_index(started_at, spans, before=BEFORE, dialect=dialect).label("started"),
            span_index(ended_at, spans, dialect=dialect).label("ended"),
            func.count(),
        )
        .where(is_ended, started_at.is_not(None), or_(changed >= first, started_at >= first))
        .group_by("started", "ended")
    ).all()
    base, started, ended = live, [0] * len(spans), [0] * len(spans)
    for was_ended, span, count in late:
        if not was_ended:
            base -= int(count)
        if span is not None:
            started[int(span)] += int(count)
    for start, end, count in ends:
        if start == BEFORE:
            base += int(count)
        if end is not None:
            ended[int(end)] += int(count)
    return base, started, ended


def line_activity(
    session: Session, *, now: datetime, timezone: str, days: int = DEFAULT_DAYS
) -> LineActivity:
    """Lines by status now, and per local day of the last `days` (today included):
    lines in service at the day's end, activations and terminations.

    Reads only. :raises InvalidInput: `days` outside 1 to 366 (field ``days``).
    """
    spans = last_days(now=now, timezone=timezone, days=days)
    statuses = _count_statuses(session)
    activations, terminations = _audit_counts(session, spans)
    base, started, ended = _service_changes(session, spans, sum(statuses.values()))
    in_service = [base + n for n in accumulate(s - e for s, e in zip(started, ended, strict=True))]
    return LineActivity(
        active_now=statuses["active"],
        suspended_now=statuses["suspended"],
        pending_now=statuses["pending"],
        days=[
            LineDay(span.label, in_service[i], activations[i], terminations[i])
            for i, span in enumerate(spans)
        ],
    )
