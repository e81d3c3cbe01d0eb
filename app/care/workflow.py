"""A ticket's status, assignee, regulator escalation and satisfaction (DESIGN §11).

Allowed status changes (anything else is refused, `TicketState`):

| from | to |
|---|---|
| open | pending_customer, escalated, resolved |
| pending_customer | open, escalated, resolved |
| escalated | open, resolved |
| resolved | closed; open again within `REOPEN_DAYS` of the resolution (a reopening, counted) |
| closed | — (final) |

Entering `pending_customer` stops the SLA clock (`paused_at`); leaving it —
by staff or by the customer's reply — moves each due instant still to be met
by the SLA time of the pause (app/care/sla.py, in the working time of the
SLA calendar, app/care/sla_calendar.py) and adds that time to
`paused_seconds`. A first response or resolution that comes after its due
instant is flagged as breached there and then, once, if the breach job has
not flagged it already. Every change locks the ticket and is audited.

A regulator escalation records the regulator's reference and the date the
matter went to it (not in the future); a ticket still open or waiting for
the customer becomes `escalated`. Satisfaction (1–5) is given once, by the
ticket's own customer, after resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from app.auth.models import StaffUser
from app.auth.permissions import PERMISSIONS
from app.care import sla
from app.care.errors import SatisfactionRefused, TicketInvalid, TicketNotFound, TicketState
from app.care.models import REOPEN_DAYS, STATUSES, Ticket
from app.care.sla_calendar import work_calendar
from app.care.tickets import audit_ticket, customer_may_see
from app.core.audit import Actor
from app.core.db import lock_by_id
from app.core.errors import N_, clean_text

TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"pending_customer", "escalated", "resolved"}),
    "pending_customer": frozenset({"open", "escalated", "resolved"}),
    "escalated": frozenset({"open", "resolved"}),
    "resolved": frozenset({"closed", "open"}),
    "closed": frozenset(),
}
MAX_BULK = 200
REGULATOR_REF_MAX = 60


def lock_ticket(session: Session, ticket_id: int, *, customer_id: int | None = None) -> Ticket:
    """The ticket locked FOR UPDATE; with `customer_id`, only that customer's own.

    :raises TicketNotFound: no such ticket, or another customer's.
    """
    ticket = lock_by_id(session, Ticket, ticket_id)
    if ticket is None or (customer_id is not None and not customer_may_see(ticket, customer_id)):
        raise TicketNotFound(N_("No ticket %(ref)s."), ref=str(ticket_id))
    return ticket


def _zone(timezone: str) -> ZoneInfo:
    return ZoneInfo(timezone)


def resume_clock(session: Session, ticket: Ticket, *, now: datetime, timezone: str) -> timedelta:
    """End a pause: move the due instants still to be met; the SLA time the pause took.

    Working time is read from the SLA calendar (one query; none around the clock).
    """
    assert ticket.paused_at is not None, ticket.ref
    clock: dict[str, Any] = {
        "zone": _zone(timezone),
        "around_the_clock": ticket.sla_around_the_clock,
    }
    if not ticket.sla_around_the_clock:
        clock["calendar"] = work_calendar(session)
    held = sla.working_time_between(ticket.paused_at, now, **clock)
    if ticket.first_responded_at is None:
        ticket.first_response_due_at = sla.add_sla_time(ticket.first_response_due_at, held, **clock)
    if ticket.resolved_at is None:
        ticket.resolution_due_at = sla.add_sla_time(ticket.resolution_due_at, held, **clock)
    ticket.paused_at = None
    ticket.paused_seconds += int(held.total_seconds())
    return held


def note_late(ticket: Ticket, *, now: datetime, what: str) -> bool:
    """Flag a first response or resolution given after its due instant, once."""
    if what == "first_response":
        if ticket.first_response_breached_at is None and now > ticket.first_response_due_at:
            ticket.first_response_breached_at = now
            return True
    elif ticket.resolution_breached_at is None and now > ticket.resolution_due_at:
        ticket.resolution_breached_at = now
        return True
    return False


def reopen(ticket: Ticket, *, now: datetime) -> None:
    """Reopen a resolved ticket, counted. :raises TicketState: past the window."""
    assert ticket.status == "resolved" and ticket.resolved_at is not None, ticket.ref
    if now - ticket.resolved_at > timedelta(days=REOPEN_DAYS):
        raise TicketState(
            N_("Ticket %(ref)s was resolved more than %(days)s days ago; open a new ticket."),
            ref=ticket.ref,
            days=REOPEN_DAYS,
        )
    ticket.status = "open"
    ticket.resolved_at = None
    ticket.reopen_count += 1


def _apply(session: Session, ticket: Ticket, target: str, *, now: datetime, timezone: str) -> None:
    if ticket.status == "pending_customer":
        resume_clock(session, ticket, now=now, timezone=timezone)
    if target == "open" and ticket.status == "resolved":
        reopen(ticket, now=now)
        return
    if target == "pending_customer":
        ticket.paused_at = now
    elif target == "resolved":
        ticket.resolved_at = now
        note_late(ticket, now=now, what="resolution")
    elif target == "closed":
        ticket.closed_at = now
    ticket.status = target


def change_status(
    session: Session,
    *,
    ticket_id: int,
    status: str,
    actor: Actor,
    now: datetime,
    timezone: str,
    reason: str = "",
) -> Ticket:
    """Move a ticket to `status` along the allowed changes; locks it; audited.

    :raises TicketNotFound. :raises TicketInvalid: an unknown status or a bad reason.
    :raises TicketState: a change the table above does not allow, or a
        reopening past its window.
    """
    if status not in STATUSES:
        raise TicketInvalid(N_("Unknown status %(value)s."), field="status", value=status)
    note = clean_text(reason, field="reason", max_length=500)
    ticket = lock_ticket(session, ticket_id)
    before = ticket.status
    if status not in TRANSITIONS[before]:
        raise TicketState(
            N_("Ticket %(ref)s cannot go from %(before)s to %(after)s."),
            ref=ticket.ref,
            before=before,
            after=status,
        )
    _apply(session, ticket, status, now=now, timezone=timezone)
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    details = {"from": before, "to": status, "reason": note}
    audit_ticket(session, ticket, action="ticket.status", actor=actor, now=now, details=details)
    return ticket


def assignable_staff(session: Session) -> list[StaffUser]:
    """Active staff whose role may work tickets, by e-mail."""
    roles = sorted(PERMISSIONS["tickets.manage"])
    query = (
        select(StaffUser)
        .where(col(StaffUser.is_active).is_(True), col(StaffUser.role).in_(roles))
        .order_by(col(StaffUser.email))
    )
    return list(session.exec(query))


def _check_assignee(session: Session, assignee_id: int | None) -> StaffUser | None:
    if assignee_id is None:
        return None
    staff = session.get(StaffUser, assignee_id)
    if staff is None or not staff.is_active or staff.role not in PERMISSIONS["tickets.manage"]:
        raise TicketInvalid(
            N_("Tickets can be assigned to active care staff only."), field="assignee"
        )
    return staff


def assign_tickets(
    session: Session,
    *,
    ticket_ids: Sequence[int],
    assignee_id: int | None,
    actor: Actor,
    now: datetime,
) -> int:
    """Give tickets to one staff member (None: nobody); how many changed hands.

    Locks the tickets in id order; each change audited. Idempotent.
    :raises TicketInvalid: no tickets, more than 200, or an assignee who
        cannot work tickets. :raises TicketNotFound: an id of no ticket.
    """
    ids = sorted(set(ticket_ids))
    if not ids:
        raise TicketInvalid(N_("Choose at least one ticket."), field="tickets")
    if len(ids) > MAX_BULK:
        raise TicketInvalid(N_("At most %(max)s tickets at once."), field="tickets", max=MAX_BULK)
    staff = _check_assignee(session, assignee_id)
    tickets = list(
        session.exec(
            select(Ticket)
            .where(col(Ticket.id).in_(ids))
            .order_by(col(Ticket.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if len(tickets) != len(ids):
        missing = sorted(set(ids) - {t.id for t in tickets})
        raise TicketNotFound(N_("No ticket %(ref)s."), ref=str(missing[0]))
    changed = 0
    for ticket in tickets:
        if ticket.assignee_id == assignee_id:
            continue
        details = {"from": ticket.assignee_id, "to": assignee_id, "to_email": staff and staff.email}
        ticket.assignee_id = assignee_id
        ticket.updated_at = now
        session.add(ticket)
        session.flush()
        audit_ticket(session, ticket, action="ticket.assign", actor=actor, now=now, details=details)
        changed += 1
    return changed


def escalate_to_regulator(
    session: Session,
    *,
    ticket_id: int,
    reference: str,
    escalated_on: date,
    actor: Actor,
    now: datetime,
    timezone: str,
) -> Ticket:
    """Record that the matter went to the regulator, with its reference and date.

    A ticket open or waiting for the customer becomes `escalated`; a
    resolved or closed one keeps its status. Recording again corrects the
    record (audited with both). Locks the ticket.
    :raises TicketInvalid: no reference, too long, or a date in the future.
    """
    ref = clean_text(reference, field="reference", max_length=REGULATOR_REF_MAX, required=True)
    today = now.astimezone(_zone(timezone)).date()
    if escalated_on > today:
        raise TicketInvalid(N_("The escalation date cannot be in the future."), field="date")
    ticket = lock_ticket(session, ticket_id)
    before = {"reference": ticket.regulator_ref, "date": ticket.regulator_escalated_on}
    ticket.regulator_ref = ref
    ticket.regulator_escalated_on = escalated_on
    status_before = ticket.status
    if ticket.status in ("open", "pending_customer"):
        _apply(session, ticket, "escalated", now=now, timezone=timezone)
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    details = {
        "reference": ref,
        "date": escalated_on.isoformat(),
        "before": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in before.items()},
        "from": status_before,
        "to": ticket.status,
    }
    audit_ticket(session, ticket, action="ticket.escalate", actor=actor, now=now, details=details)
    return ticket


def rate_ticket(
    session: Session,
    *,
    ticket_id: int,
    customer_id: int,
    score: int,
    actor: Actor,
    now: datetime,
) -> Ticket:
    """The customer's satisfaction with a resolved ticket, 1 to 5, once; locks it; audited.

    :raises TicketNotFound: not this customer's ticket. :raises TicketInvalid:
        a score outside 1–5. :raises SatisfactionRefused: not resolved yet, or rated already.
    """
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise TicketInvalid(N_("Give a score from 1 to 5."), field="score")
    ticket = lock_ticket(session, ticket_id, customer_id=customer_id)
    if ticket.status not in ("resolved", "closed"):
        raise SatisfactionRefused(
            N_("Ticket %(ref)s can be rated once it is resolved."), ref=ticket.ref
        )
    if ticket.satisfaction is not None:
        raise SatisfactionRefused(N_("Ticket %(ref)s was rated already."), ref=ticket.ref)
    ticket.satisfaction = score
    ticket.satisfaction_at = now
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    audit_ticket(
        session, ticket, action="ticket.rate", actor=actor, now=now, details={"score": score}
    )
    return ticket
