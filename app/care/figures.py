"""Ticket figures for the dashboard: volume, open tickets, SLA attainment.

* **Opened per day**: tickets opened on each local day (`TIMEZONE`) of a
  period, days without tickets included as 0.
* **Open by status**: live tickets (open, waiting for the customer,
  escalated) now, every live status present.
* **SLA attainment** over the tickets opened in a period: a first response
  is met when it came no later than its due instant (as moved by pauses);
  a resolution is met when the ticket was resolved no later than its due
  instant. A ticket counts towards a measure once its outcome is known —
  answered or resolved, or past due without — so a young ticket still
  within its time counts for neither. `both` counts the tickets whose two
  outcomes are known, met when both were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from app.care.models import ACTIVE_STATUSES, Ticket


@dataclass(frozen=True)
class Attainment:
    """Met and counted, per measure; `share` is met / counted (None when nothing counted)."""

    first_response_met: int = 0
    first_response_total: int = 0
    resolution_met: int = 0
    resolution_total: int = 0
    both_met: int = 0
    both_total: int = 0

    @staticmethod
    def share(met: int, total: int) -> float | None:
        """The fraction met, for display only; None when nothing was counted."""
        return met / total if total else None

    def as_dict(self) -> dict[str, int]:
        return {
            "first_response_met": self.first_response_met,
            "first_response_total": self.first_response_total,
            "resolution_met": self.resolution_met,
            "resolution_total": self.resolution_total,
            "both_met": self.both_met,
            "both_total": self.both_total,
        }


def _local_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start, end


def tickets_opened_per_day(
    session: Session, *, first: date, last: date, timezone: str
) -> list[tuple[date, int]]:
    """(local day, tickets opened) for every day from `first` to `last`.

    Counted by the database: each ticket's creation is placed among the days'
    ends (UTC instants), so no row comes back to be converted here.
    """
    zone = ZoneInfo(timezone)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if not days:
        return []
    start, end = _local_bounds(first, last, zone)
    created = col(Ticket.created_at)
    day = case(*((created < _local_bounds(d, d, zone)[1], n) for n, d in enumerate(days))).label(
        "day"
    )
    counts = dict(
        session.execute(
            sa_select(day, func.count()).where(created >= start, created < end).group_by(day)
        ).all()
    )
    return [(d, int(counts.get(n, 0))) for n, d in enumerate(days)]


def open_tickets_by_status(session: Session) -> dict[str, int]:
    """How many tickets are in each live status now."""
    rows = session.exec(
        select(Ticket.status, func.count())
        .where(col(Ticket.status).in_(ACTIVE_STATUSES))
        .group_by(col(Ticket.status))
    ).all()
    found = dict(rows)
    return {status: int(found.get(status, 0)) for status in ACTIVE_STATUSES}


def sla_attainment(
    session: Session, *, first: date, last: date, timezone: str, now: datetime
) -> Attainment:
    """SLA attainment of the tickets opened from `first` to `last` (local days).

    Counted by the database. A ticket waiting for the customer has its clock
    stopped: not late while it waits, so only an answer or a resolution makes
    its outcome known.
    """
    start, end = _local_bounds(first, last, ZoneInfo(timezone))
    running = col(Ticket.status) != "pending_customer"
    responded, response_due = col(Ticket.first_responded_at), col(Ticket.first_response_due_at)
    resolved, resolution_due = col(Ticket.resolved_at), col(Ticket.resolution_due_at)
    # Known: done, or past due while the clock runs; met: done by the due instant.
    answered = or_(responded.is_not(None), and_(running, response_due < now))
    answered_met = and_(responded.is_not(None), responded <= response_due)
    settled = or_(resolved.is_not(None), and_(running, resolution_due < now))
    settled_met = and_(resolved.is_not(None), resolved <= resolution_due)
    row = session.execute(
        sa_select(
            func.count().filter(answered_met),
            func.count().filter(answered),
            func.count().filter(settled_met),
            func.count().filter(settled),
            func.count().filter(answered_met, settled_met),
            func.count().filter(answered, settled),
        ).where(col(Ticket.created_at) >= start, col(Ticket.created_at) < end)
    ).one()
    return Attainment(*(int(n) for n in row))
