"""Flagging SLA breaches and telling the supervisors (DESIGN §11).

A ticket that is open or escalated (a ticket waiting for the customer has
its clock stopped) breaches its first response when its due instant passes
with no first response, and its resolution when that due instant passes
unresolved. The job flags each breach once, with the instant it found it,
audits it, and queues an `sla_breach` e-mail to every active admin (the
supervisors), once per ticket, breach and supervisor. A response or
resolution that comes late is flagged by the service that records it
(app/care/workflow.py `note_late`); the supervisors need no e-mail about a
matter already answered.

The tickets are taken `FOR UPDATE SKIP LOCKED`, in id order, at most
`BATCH` per breach kind a run; the partial indexes of migration 0010 hold
only the live, unflagged tickets, so the job reads no history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.auth.models import StaffUser
from app.care.models import CATEGORY_LABELS, PRIORITY_LABELS, Ticket
from app.care.tickets import audit_ticket
from app.core.audit import Actor
from app.notifications.services import notify

BATCH = 500
SUPERVISOR_ROLE = "admin"
JOB_ACTOR = Actor.system("sla")
CLOCK_RUNNING = ("open", "escalated")


@dataclass(frozen=True)
class BreachReport:
    first_response: int = 0
    resolution: int = 0
    notices: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "first_response": self.first_response,
            "resolution": self.resolution,
            "notices": self.notices,
        }


def supervisors(session: Session) -> list[StaffUser]:
    """The staff told of breaches: active admins, by id."""
    query = (
        select(StaffUser)
        .where(StaffUser.role == SUPERVISOR_ROLE, col(StaffUser.is_active).is_(True))
        .order_by(col(StaffUser.id))
    )
    return list(session.exec(query))


def _due(kind: str, now: datetime) -> Any:
    running = col(Ticket.status).in_(CLOCK_RUNNING)
    if kind == "first_response":
        query = select(Ticket).where(
            running,
            col(Ticket.first_responded_at).is_(None),
            col(Ticket.first_response_breached_at).is_(None),
            col(Ticket.first_response_due_at) <= now,
        )
    else:
        query = select(Ticket).where(
            running,
            col(Ticket.resolution_breached_at).is_(None),
            col(Ticket.resolution_due_at) <= now,
        )
    return (
        query.order_by(col(Ticket.id))
        .limit(BATCH)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


def _tell(
    session: Session, ticket: Ticket, kind: str, staff: list[StaffUser], now: datetime
) -> int:
    due = ticket.first_response_due_at if kind == "first_response" else ticket.resolution_due_at
    data = {
        "ref": ticket.ref,
        "subject": ticket.subject,
        "breach": kind,
        "category_label": CATEGORY_LABELS[ticket.category],
        "priority_label": PRIORITY_LABELS[ticket.priority],
        "due_at": due.isoformat(),
    }
    sent = 0
    for person in staff:
        sent += notify(
            session,
            kind="sla_breach",
            recipient=person.email,
            now=now,
            data=data,
            dedupe_key=f"sla_breach:{ticket.id}:{kind}:{person.id}",
        )
    return sent


def flag_breaches(session: Session, *, now: datetime) -> BreachReport:
    """Flag every breach due by `now` once, audit it and notify the supervisors.

    Idempotent: a flagged breach is never flagged or announced again.
    """
    staff = supervisors(session)
    counts = {"first_response": 0, "resolution": 0}
    notices = 0
    for kind in counts:
        for ticket in session.exec(_due(kind, now)).all():
            if kind == "first_response":
                ticket.first_response_breached_at = now
            else:
                ticket.resolution_breached_at = now
            ticket.updated_at = now
            session.add(ticket)
            session.flush()
            details = {"breach": kind}
            audit_ticket(
                session, ticket, action="ticket.breach", actor=JOB_ACTOR, now=now, details=details
            )
            notices += _tell(session, ticket, kind, staff, now)
            counts[kind] += 1
    return BreachReport(counts["first_response"], counts["resolution"], notices)
