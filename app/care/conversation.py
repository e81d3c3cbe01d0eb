"""Replies on a ticket: staff answers and notes, the customer's replies (DESIGN §11).

* A staff reply is customer-visible or an internal note. The first
  customer-visible staff reply is the ticket's first response (on a system
  ticket, which has nobody to answer, any first staff message is). A
  customer-visible reply is announced to the customer in the ticket's
  locale (`ticket_reply`, through the notification outbox, once per
  message): by e-mail, or — for a customer without an e-mail — by SMS to
  the ticket's line (or their first live line), which the notification
  sender records in its log, as no host adapter sends SMS.
* A customer reply on a ticket waiting for them reopens it and restarts
  its clock; on a ticket resolved within `REOPEN_DAYS` it reopens it
  (counted); on a closed ticket, or one resolved longer ago, it is refused.
* Nobody writes on a closed ticket.

Each reply locks the ticket and is audited; attachments follow
app/care/attachments.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from app.care.attachments import Upload
from app.care.errors import TicketState
from app.care.models import Ticket, TicketMessage
from app.care.tickets import add_message, audit_ticket
from app.care.workflow import lock_ticket, note_late, reopen, resume_clock
from app.core.audit import Actor
from app.core.errors import N_
from app.notifications.services import notify
from app.subscribers.models import FINAL_LINE_STATUSES, Customer, Line

EXCERPT_MAX = 1000


def _refuse_closed(ticket: Ticket) -> None:
    if ticket.status == "closed":
        raise TicketState(
            N_("Ticket %(ref)s is closed; open a new ticket instead."), ref=ticket.ref
        )


def _sms_number(session: Session, ticket: Ticket) -> str | None:
    if ticket.line_id is not None:
        line = session.get(Line, ticket.line_id)
        if line is not None and line.status not in FINAL_LINE_STATUSES:
            return line.msisdn
    return session.exec(
        select(Line.msisdn)
        .where(
            Line.customer_id == ticket.customer_id,
            col(Line.status).not_in(FINAL_LINE_STATUSES),
        )
        .order_by(col(Line.id))
    ).first()


def notify_reply(
    session: Session, ticket: Ticket, message: TicketMessage, *, now: datetime
) -> bool:
    """Queue the customer's notice of a staff reply; False when they cannot be reached.

    Idempotent per message (`ticket_reply:<message id>`).
    """
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    if customer is None:
        return False
    body = message.body
    data = {
        "ref": ticket.ref,
        "subject": ticket.subject,
        "excerpt": body if len(body) <= EXCERPT_MAX else body[: EXCERPT_MAX - 1] + "…",
    }
    channel, recipient = "email", customer.email
    if not recipient:
        channel, recipient = "sms", _sms_number(session, ticket)
    if not recipient:
        return False
    return notify(
        session,
        kind="ticket_reply",
        recipient=recipient,
        now=now,
        data=data,
        customer_id=customer.id,
        account_id=customer.subscriber_account_id,
        locale=ticket.locale,
        channel=channel,
        dedupe_key=f"ticket_reply:{message.id}",
    )


def staff_reply(
    session: Session,
    *,
    ticket_id: int,
    body: str,
    visibility: str,
    actor: Actor,
    now: datetime,
    uploads: Sequence[Upload] = (),
    storage: Path | None = None,
) -> TicketMessage:
    """Add a staff answer (customer-visible) or note (internal); locks the ticket; audited.

    :raises TicketState: the ticket is closed. :raises TicketInvalid: a bad
        body or visibility. :raises AttachmentRefused: a file refused.
    """
    ticket = lock_ticket(session, ticket_id)
    _refuse_closed(ticket)
    message = add_message(
        session,
        ticket,
        body=body,
        visibility=visibility,
        actor=actor,
        now=now,
        uploads=uploads,
        storage=storage,
    )
    answers = visibility == "customer" or ticket.channel == "system"
    late = False
    if answers and ticket.first_responded_at is None:
        ticket.first_responded_at = now
        late = note_late(ticket, now=now, what="first_response")
    notified = False
    if visibility == "customer":
        notified = notify_reply(session, ticket, message, now=now)
    session.add(ticket)
    session.flush()
    details = {
        "message_id": message.id,
        "visibility": visibility,
        "first_response": ticket.first_responded_at == now,
        "late": late,
        "notified": notified,
        "attachments": len(uploads),
    }
    audit_ticket(session, ticket, action="ticket.reply", actor=actor, now=now, details=details)
    return message


def customer_reply(
    session: Session,
    *,
    ticket_id: int,
    customer_id: int,
    body: str,
    actor: Actor,
    now: datetime,
    timezone: str,
    uploads: Sequence[Upload] = (),
    storage: Path | None = None,
) -> TicketMessage:
    """Add the customer's reply to their own ticket, reopening it where it waited.

    Locks the ticket; audited. :raises TicketNotFound: not this customer's.
    :raises TicketState: closed, or resolved more than `REOPEN_DAYS` ago.
    :raises TicketInvalid: a bad body. :raises AttachmentRefused.
    """
    ticket = lock_ticket(session, ticket_id, customer_id=customer_id)
    _refuse_closed(ticket)
    before = ticket.status
    if ticket.status == "pending_customer":
        resume_clock(session, ticket, now=now, timezone=timezone)
        ticket.status = "open"
    elif ticket.status == "resolved":
        reopen(ticket, now=now)
    message = add_message(
        session,
        ticket,
        body=body,
        visibility="customer",
        actor=actor,
        now=now,
        uploads=uploads,
        storage=storage,
    )
    session.add(ticket)
    session.flush()
    details = {
        "message_id": message.id,
        "from": before,
        "to": ticket.status,
        "attachments": len(uploads),
    }
    audit_ticket(session, ticket, action="ticket.reply", actor=actor, now=now, details=details)
    return message
