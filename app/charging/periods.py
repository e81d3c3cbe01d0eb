"""Line periods (DESIGN §9, §13): opening them and finding the one in force.

Periods are exact: `end = start + validity_days × 24 h`. A period is
opened with the allowances of the plan it is opened on, in billable units
(data KB = `data_mb × 1024`, voice seconds = `voice_min × 60`, SMS count),
and `line.period_end` follows the line's latest period so the renewal job
finds due lines by one index. `line.service_started_at` is the start of the
line's first period; `line.period_gap_at` is set by the first period that
does not start where the latest one ended (a lapsed line renewed later), so
that a line without it has periods covering `service_started_at` to
`period_end` without a break (the dashboard counts lines by them).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.charging.models import LinePeriod
from app.subscribers.models import Line
from plans.models import Plan


def period_length(plan: Plan) -> timedelta:
    """How long one period of `plan` lasts (validity days of 24 hours)."""
    return timedelta(hours=24 * plan.validity_days)


def allowances(plan: Plan) -> dict[str, int]:
    """A plan's allowances in billable units."""
    return {"data_kb": plan.data_mb * 1024, "voice_s": plan.voice_min * 60, "sms": plan.sms}


def open_period(
    session: Session,
    *,
    line: Line,
    plan: Plan,
    start: datetime,
    now: datetime,
    entry_id: int | None = None,
    price_minor: int | None = None,
    end: datetime | None = None,
) -> LinePeriod:
    """Open a period of `line` on `plan` from `start`; the caller has locked the line.

    `end` defaults to `start + validity_days × 24 h` (the exit shortens it);
    `price_minor` to the plan's price (what the period cost).
    """
    assert line.id is not None and plan.id is not None
    period = LinePeriod(
        line_id=line.id,
        plan_id=plan.id,
        start=start,
        end=end or start + period_length(plan),
        price_minor=plan.price_minor if price_minor is None else price_minor,
        entry_id=entry_id,
        created_at=now,
        **allowances(plan),
    )
    session.add(period)
    follow_periods(line, start=period.start, end=period.end)
    line.plan_id = plan.id
    session.add(line)
    session.flush()
    return period


def follow_periods(line: Line, *, start: datetime, end: datetime) -> None:
    """Move `line` to its new latest period from `start` to `end`: `period_end`, the start
    of its service for its first period, and `period_gap_at` for a period that does not
    start where the latest one ended."""
    if line.service_started_at is not None and start != line.period_end:
        line.period_gap_at = line.period_gap_at or start
    if line.service_started_at is None or start < line.service_started_at:
        line.service_started_at = start
    line.period_end = end


def period_at(session: Session, *, line_id: int, at: datetime) -> LinePeriod | None:
    """The period of the line containing `at` (start ≤ at < end), if any."""
    statement = (
        select(LinePeriod)
        .where(LinePeriod.line_id == line_id, col(LinePeriod.end) > at, LinePeriod.start <= at)
        .order_by(col(LinePeriod.end))
        .limit(1)
    )
    return session.exec(statement).first()


def latest_period(session: Session, *, line_id: int) -> LinePeriod | None:
    """The line's period that ends last, or None when it has none."""
    statement = (
        select(LinePeriod)
        .where(LinePeriod.line_id == line_id)
        .order_by(col(LinePeriod.end).desc())
        .limit(1)
    )
    return session.exec(statement).first()


def period_for_display(session: Session, *, line_id: int, at: datetime) -> LinePeriod | None:
    """DESIGN §13 `line show`: the period containing `at`, else the latest one."""
    return period_at(session, line_id=line_id, at=at) or latest_period(session, line_id=line_id)


def list_periods(session: Session, *, line_id: int, limit: int = 50) -> list[LinePeriod]:
    """The line's periods, newest first, at most `limit`."""
    statement = (
        select(LinePeriod)
        .where(LinePeriod.line_id == line_id)
        .order_by(col(LinePeriod.start).desc())
        .limit(limit)
    )
    return list(session.exec(statement))
