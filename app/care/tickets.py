"""Opening tickets and reading them (DESIGN §11).

A ticket opens with its first message: the customer's words (self-care),
what staff noted of a phone call or a store visit, or the system's figures.
Its SLA due instants are set then, from the target of its category and
priority (app/care/targets.py) in `TIMEZONE` and the SLA calendar (app/care/
sla.py, sla_calendar.py). A system ticket names its `source` (`dispute:12`):
the database keeps one per source, so a job run twice opens it once.

Every change is audited with the ticket's ref as its target, in the same
transaction. Readers: `get_ticket_by_ref` raises `TicketNotFound`, and with
`customer_id` also for another customer's ticket (so a subscriber cannot
learn that a ref exists); `list_tickets` pages.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from app.auth.models import StaffUser, SubscriberAccount
from app.care import sla
from app.care.attachments import Upload, check_uploads, store_attachments
from app.care.errors import TicketInvalid, TicketNotFound
from app.care.models import (
    BODY_MAX,
    CATEGORIES,
    CHANNELS,
    PRIORITIES,
    STATUSES,
    SUBJECT_MAX,
    VISIBILITIES,
    Ticket,
    TicketMessage,
)
from app.care.sla_calendar import work_calendar
from app.care.targets import target_terms
from app.core.audit import Actor, record_audit
from app.core.db import insert_unique
from app.core.errors import N_, Conflict, clean_text
from app.subscribers.models import Customer, Line

MAX_REF = 20
LIST_MAX = 200


class TicketSourceTaken(Conflict):
    """A ticket for this source exists already."""

    code = "ticket_source_taken"


def clean_body(value: str | None) -> str:
    """A message body: trimmed, line ends as `\\n`, 1 to 10,000 characters.

    :raises TicketInvalid: empty, too long, or with control characters other
        than tabs and line ends.
    """
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise TicketInvalid(N_("Write a message."), field="body")
    if len(text) > BODY_MAX:
        raise TicketInvalid(
            N_("A message is at most %(max)s characters."), field="body", max=BODY_MAX
        )
    if any((ord(ch) < 32 and ch not in "\t\n") or 127 <= ord(ch) < 160 for ch in text):
        raise TicketInvalid(N_("A message must not contain control characters."), field="body")
    return text


def author_of(actor: Actor) -> str:
    """The message author kind an actor writes as."""
    if actor.kind == "subscriber":
        return "customer"
    return "system" if actor.kind == "system" else "staff"


def audit_ticket(
    session: Session,
    ticket: Ticket,
    *,
    action: str,
    actor: Actor,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """One audit record of a ticket change (target: the ticket's ref)."""
    record_audit(
        session,
        actor=actor,
        action=action,
        now=now,
        target_type="ticket",
        target_id=ticket.ref,
        details=details,
    )


def add_message(
    session: Session,
    ticket: Ticket,
    *,
    body: str,
    visibility: str,
    actor: Actor,
    now: datetime,
    uploads: Sequence[Upload] = (),
    storage: Path | None = None,
) -> TicketMessage:
    """Add a checked message (and its checked files) to a ticket the caller holds.

    :raises TicketInvalid: a bad body or visibility. :raises AttachmentRefused.
    """
    text = clean_body(body)
    if visibility not in VISIBILITIES:
        raise TicketInvalid(
            N_("Unknown visibility %(value)s."), field="visibility", value=visibility
        )
    author = author_of(actor)
    if author == "customer" and visibility != "customer":
        raise TicketInvalid(N_("A customer's message is visible to them."), field="visibility")
    files = check_uploads(uploads)
    assert not files or storage is not None, "attachments need a storage folder"
    assert ticket.id is not None
    message = TicketMessage(
        ticket_id=ticket.id,
        author_kind=author,
        author_id=actor.id,
        author_label=actor.label[:254],
        body=text,
        visibility=visibility,
        created_at=now,
    )
    session.add(message)
    session.flush()
    if files and storage is not None:
        assert message.id is not None
        store_attachments(
            session,
            ticket_id=ticket.id,
            ticket_ref=ticket.ref,
            message_id=message.id,
            files=files,
            storage=storage,
            now=now,
        )
    ticket.updated_at = now
    session.add(ticket)
    return message


UNKNOWN = {
    "category": N_("Unknown category %(value)s."),
    "channel": N_("Unknown channel %(value)s."),
    "priority": N_("Unknown priority %(value)s."),
}


def _check_choice(value: str, choices: tuple[str, ...], field: str) -> None:
    if value not in choices:
        raise TicketInvalid(UNKNOWN[field], field=field, value=value)


def _customer_and_line(
    session: Session, *, customer_id: int | None, line_id: int | None, channel: str
) -> Customer | None:
    if customer_id is None:
        if channel != "system":
            raise TicketInvalid(N_("Choose the customer."), field="customer")
        if line_id is not None:
            raise TicketInvalid(N_("A line needs its customer."), field="line")
        return None
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise TicketInvalid(N_("No such customer."), field="customer")
    if line_id is not None:
        line = session.get(Line, line_id)
        if line is None or line.customer_id != customer_id:
            raise TicketInvalid(N_("The line is not this customer's."), field="line")
    return customer


def _locale_of(session: Session, customer: Customer | None, locale: str | None) -> str:
    if locale:
        return locale
    if customer is not None and customer.subscriber_account_id is not None:
        account = session.get(SubscriberAccount, customer.subscriber_account_id)
        if account is not None:
            return account.locale
    return "zh_Hans"


def open_ticket(
    session: Session,
    *,
    category: str,
    channel: str,
    subject: str,
    body: str,
    actor: Actor,
    now: datetime,
    timezone: str,
    priority: str = "normal",
    customer_id: int | None = None,
    line_id: int | None = None,
    source: str | None = None,
    locale: str | None = None,
    uploads: Sequence[Upload] = (),
    storage: Path | None = None,
) -> Ticket:
    """Open a ticket with its first message and its SLA due instants; audited.

    A customer's own ticket (`actor` a subscriber) and staff notes are
    customer-visible; the system's first message is internal.
    :raises TicketInvalid: an unknown category, channel or priority, a bad
        subject or body, no customer (only the system may open without one),
        or a line of someone else.
    :raises AttachmentRefused: a file refused (nothing is kept).
    :raises TicketSourceTaken: a ticket for `source` exists already.
    """
    _check_choice(category, CATEGORIES, "category")
    _check_choice(channel, CHANNELS, "channel")
    _check_choice(priority, PRIORITIES, "priority")
    title = clean_text(subject, field="subject", max_length=SUBJECT_MAX, required=True)
    customer = _customer_and_line(
        session, customer_id=customer_id, line_id=line_id, channel=channel
    )
    terms = target_terms(session, category=category, priority=priority)
    clock: dict[str, Any] = {"zone": ZoneInfo(timezone), "around_the_clock": terms.around_the_clock}
    if not terms.around_the_clock:
        clock["calendar"] = work_calendar(session)
    ticket = Ticket(
        ref=f"tmp-{secrets.token_hex(6)}",
        customer_id=customer_id,
        line_id=line_id,
        category=category,
        channel=channel,
        priority=priority,
        subject=title,
        source=source,
        sla_around_the_clock=terms.around_the_clock,
        first_response_due_at=sla.due_at(now, terms.first_response_minutes, **clock),
        resolution_due_at=sla.due_at(now, terms.resolution_minutes, **clock),
        locale=_locale_of(session, customer, locale),
        created_at=now,
        updated_at=now,
    )
    taken = TicketSourceTaken(N_("A ticket for %(source)s exists already."), source=source)
    try:
        insert_unique(session, ticket, taken)
    except TicketSourceTaken:
        if ticket in session:
            session.expunge(ticket)
        raise
    ticket.ref = f"T-{ticket.id:06d}"
    session.add(ticket)
    session.flush()
    visibility = "internal" if author_of(actor) == "system" else "customer"
    add_message(
        session,
        ticket,
        body=body,
        visibility=visibility,
        actor=actor,
        now=now,
        uploads=uploads,
        storage=storage,
    )
    details = {"category": category, "channel": channel, "priority": priority, "source": source}
    audit_ticket(session, ticket, action="ticket.open", actor=actor, now=now, details=details)
    return ticket


def customer_may_see(ticket: Ticket, customer_id: int) -> bool:
    """Whether a customer may see a ticket: their own, and not a system ticket.

    A system ticket about a customer's line (a failed provisioning event) is
    staff's business only.
    """
    return ticket.customer_id == customer_id and ticket.channel != "system"


def find_ticket_by_source(session: Session, source: str) -> Ticket | None:
    """The ticket a system source opened, or None."""
    return session.exec(select(Ticket).where(Ticket.source == source)).first()


def get_ticket_by_ref(session: Session, ref: str, *, customer_id: int | None = None) -> Ticket:
    """The ticket with this ref; with `customer_id`, only that customer's own.

    :raises TicketNotFound: no such ticket, or another customer's.
    """
    ref = (ref or "").strip().upper()[:MAX_REF]
    ticket = session.exec(select(Ticket).where(Ticket.ref == ref)).first()
    if ticket is None or (customer_id is not None and not customer_may_see(ticket, customer_id)):
        raise TicketNotFound(N_("No ticket %(ref)s."), ref=ref)
    return ticket


def messages_of(
    session: Session, *, ticket_id: int, customer_view: bool = False
) -> list[TicketMessage]:
    """A ticket's conversation, oldest first; the customer's view leaves internal notes out."""
    query = select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
    if customer_view:
        query = query.where(TicketMessage.visibility == "customer")
    return list(session.exec(query.order_by(col(TicketMessage.id))))


def ticket_refs_of_customer(session: Session, *, customer_id: int) -> list[str]:
    """The refs of every ticket about a customer, newest first (their audit trail's targets)."""
    query = select(Ticket.ref).where(Ticket.customer_id == customer_id)
    return list(session.exec(query.order_by(col(Ticket.id).desc())))


@dataclass(frozen=True)
class TicketRow:
    """A ticket in a list, with the names a list shows beside it."""

    ticket: Ticket
    customer_ref: str | None
    customer_name: str | None
    assignee_email: str | None


@dataclass(frozen=True)
class TicketFilter:
    """What a list of tickets is narrowed to; None leaves a filter out."""

    statuses: tuple[str, ...] | None = None
    category: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    breached: bool | None = None
    customer_id: int | None = None
    exclude_system: bool = False


def _where(query: Any, found: TicketFilter) -> Any:
    if found.statuses is not None:
        assert all(s in STATUSES for s in found.statuses), found.statuses
        query = query.where(col(Ticket.status).in_(found.statuses))
    if found.category is not None:
        query = query.where(Ticket.category == found.category)
    if found.unassigned:
        query = query.where(col(Ticket.assignee_id).is_(None))
    elif found.assignee_id is not None:
        query = query.where(Ticket.assignee_id == found.assignee_id)
    breached = or_(
        col(Ticket.first_response_breached_at).is_not(None),
        col(Ticket.resolution_breached_at).is_not(None),
    )
    if found.breached is True:
        query = query.where(breached)
    elif found.breached is False:
        query = query.where(~breached)
    if found.customer_id is not None:
        query = query.where(Ticket.customer_id == found.customer_id)
    if found.exclude_system:
        query = query.where(Ticket.channel != "system")
    return query


def list_tickets(
    session: Session,
    *,
    where: TicketFilter = TicketFilter(),
    order: str = "newest",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[TicketRow], int]:
    """Tickets narrowed by `where`, paged: (rows, total).

    `order` "due": soonest resolution due first (the queue); "newest": newest first.
    Customer and assignee come in the same query (no query per row).
    """
    assert order in ("due", "newest"), order
    limit = min(max(limit, 1), LIST_MAX)
    assignee = aliased(StaffUser)
    query = (
        select(Ticket, Customer.ref, Customer.name, assignee.email)
        .outerjoin(Customer, col(Customer.id) == col(Ticket.customer_id))
        .outerjoin(assignee, col(assignee.id) == col(Ticket.assignee_id))
    )
    query = _where(query, where)
    if order == "due":
        query = query.order_by(col(Ticket.resolution_due_at), col(Ticket.id))
    else:
        query = query.order_by(col(Ticket.id).desc())
    total = session.exec(_where(select(func.count()).select_from(Ticket), where)).one()
    rows = session.exec(query.offset(max(offset, 0)).limit(limit)).all()
    return [TicketRow(t, ref, name, email) for t, ref, name, email in rows], total
