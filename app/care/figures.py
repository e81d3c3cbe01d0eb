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
    """(local day, tickets opened) for every day from `first` to `last`."""
    zone = ZoneInfo(timezone)
    start, end = _local_bounds(first, last, zone)
    counts: dict[date, int] = {}
    opened = select(Ticket.created_at).where(
        col(Ticket.created_at) >= start, col(Ticket.created_at) < end
    )
    for created_at in session.exec(opened):
        day = created_at.astimezone(zone).date()
        counts[day] = counts.get(day, 0) + 1
    days = (last - first).days + 1
    return [
        (first + timedelta(days=n), counts.get(first + timedelta(days=n), 0)) for n in range(days)
    ]


def open_tickets_by_status(session: Session) -> dict[str, int]:
    """How many tickets are in each live status now."""
    rows = session.exec(
        select(Ticket.status, func.count())
        .where(col(Ticket.status).in_(ACTIVE_STATUSES))
        .group_by(col(Ticket.status))
    ).all()
    found = dict(rows)
    return {status: int(found.get(status, 0)) for status in ACTIVE_STATUSES}


def _outcome(done: datetime | None, due: datetime, now: datetime) -> bool | None:
    """Met (True), missed (False) or not known yet (None)."""
    if done is not None:
        return done <= due
    return False if now > due else None


def sla_attainment(
    session: Session, *, first: date, last: date, timezone: str, now: datetime
) -> Attainment:
    """SLA attainment of the tickets opened from `first` to `last` (local days)."""
    start, end = _local_bounds(first, last, ZoneInfo(timezone))
    query = sa_select(
        col(Ticket.first_responded_at),
        col(Ticket.first_response_due_at),
        col(Ticket.resolved_at),
        col(Ticket.resolution_due_at),
        col(Ticket.status),
    ).where(col(Ticket.created_at) >= start, col(Ticket.created_at) < end)
    counts = dict.fromkeys(("fm", "ft", "rm", "rt", "bm", "bt"), 0)
    for responded, response_due, resolved, resolution_due, status in session.execute(query):
        # A ticket waiting for the customer has its clock stopped: not late while it waits.
        paused = status == "pending_customer"
        answered = _outcome(responded, response_due, now if not paused else response_due)
        settled = _outcome(resolved, resolution_due, now if not paused else resolution_due)
        if answered is not None:
            counts["ft"] += 1
            counts["fm"] += answered
        if settled is not None:
            counts["rt"] += 1
            counts["rm"] += settled
        if answered is not None and settled is not None:
            counts["bt"] += 1
            counts["bm"] += answered and settled
    return Attainment(
        counts["fm"], counts["ft"], counts["rm"], counts["rt"], counts["bm"], counts["bt"]
    )
