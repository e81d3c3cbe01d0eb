"""JSON API of customer service (DESIGN §11, §14): tickets, replies, status,
assignment, regulator escalation, attachments, SLA targets and ticket figures.

`tickets.view` reads (the queue's filters, a ticket with its whole
conversation, internal notes included, and attachment downloads);
`tickets.manage` opens tickets for phone, store and e-mail contacts, answers,
changes status, assigns and records regulator escalations;
`sla_targets.manage` (admins) edits the SLA table (the SLA calendar is in
app/web/api/sla_days.py). Bodies are JSON, but for a reply or note with
attachments: `POST /tickets/<ref>/messages/upload` takes multipart/form-data
(`body`, `visibility` and one or more `attachments` files) and keeps the files
by the rules of the console and self-care (app/care/attachments.py: type by
content, 5 MiB each, 5 a message; a refused file keeps nothing). Attachments
are downloaded as attachments of the type their content showed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from marshmallow import RAISE
from sqlmodel import select

from app.auth.models import StaffUser
from app.care import attachments as files
from app.care import conversation, figures, targets, workflow
from app.care.errors import TicketNotFound
from app.care.models import ACTIVE_STATUSES, ATTACHMENT_TYPES, Ticket
from app.care.tickets import (
    TicketFilter,
    TicketRow,
    get_ticket_by_ref,
    list_tickets,
    messages_of,
    open_ticket,
)
from app.core.clock import utcnow
from app.core.errors import N_, NotFound
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.web.api import bp
from app.web.api.common import MAX_REF, customer_by_ref, page_args, page_out
from app.web.api.security import requires
from app.web.api.tickets_schemas import (
    MAX_SPAN_DAYS,
    AssignIn,
    AssignOut,
    EscalationIn,
    FiguresOut,
    FiguresQuery,
    MessageIn,
    MessageOut,
    MessageUploadIn,
    SlaTargetIn,
    SlaTargetList,
    SlaTargetOut,
    StatusIn,
    TicketDetail,
    TicketIn,
    TicketOut,
    TicketPage,
    TicketQuery,
)
from app.web.context import accepts_upload, current_actor, db_session, settings
from app.web.tickets import UPLOAD_LIMIT, attachment_response, storage, uploads_from_request

TICKET_404 = {404: "No such ticket"}
ATTACHMENT_DOC: dict[int | str, Any] = {
    200: {
        "description": "The file, as an attachment of the type its content showed",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in ATTACHMENT_TYPES
        },
    },
    404: "No such ticket or attachment",
}
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


class StaffNotFound(NotFound):
    code = "staff_not_found"


def _ticket(ref: str) -> Ticket:
    if len(ref) > MAX_REF:
        raise TicketNotFound(N_("No ticket %(ref)s."), ref=ref[:MAX_REF])
    return get_ticket_by_ref(db_session(), ref)


def _ticket_out(
    ticket: Ticket,
    *,
    customer_ref: str | None = None,
    assignee: str | None = None,
    msisdn: str | None = None,
) -> dict[str, Any]:
    data = {name: getattr(ticket, name) for name in TicketOut().fields if hasattr(ticket, name)}
    return {**data, "customer_ref": customer_ref, "assignee": assignee, "msisdn": msisdn}


def _one_ticket_out(ticket: Ticket) -> dict[str, Any]:
    session = db_session()
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    staff = session.get(StaffUser, ticket.assignee_id) if ticket.assignee_id else None
    line = session.get(Line, ticket.line_id) if ticket.line_id else None
    return _ticket_out(
        ticket,
        customer_ref=customer.ref if customer else None,
        assignee=staff.email if staff else None,
        msisdn=line.msisdn if line else None,
    )


def _row_out(row: TicketRow) -> dict[str, Any]:
    return _ticket_out(row.ticket, customer_ref=row.customer_ref, assignee=row.assignee_email)


def _staff_id(email: str) -> int:
    staff = db_session().exec(select(StaffUser).where(StaffUser.email == email.lower())).first()
    if staff is None or staff.id is None:
        raise StaffNotFound(N_("No staff user %(email)s."), email=email)
    return staff.id


def _filter(query: dict[str, Any]) -> TicketFilter:
    status = query.get("status") or "active"
    statuses = None if status == "all" else ACTIVE_STATUSES if status == "active" else (status,)
    assignee = query.get("assignee")
    customer = customer_by_ref(query["customer"]) if query.get("customer") else None
    return TicketFilter(
        statuses=statuses,
        category=query.get("category"),
        unassigned=assignee == "none",
        assignee_id=_staff_id(assignee) if assignee and assignee != "none" else None,
        breached=query.get("breached"),
        customer_id=customer.id if customer else None,
    )


@bp.get("/tickets")
@requires("tickets.view")
@bp.input(TicketQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(TicketPage)
@bp.doc(responses={404: "No such customer or staff user"})
def ticket_list(query: dict[str, Any]) -> Any:
    """Tickets, the soonest resolution due first; live ones unless `status` says otherwise."""
    rows, total = list_tickets(db_session(), where=_filter(query), order="due", **page_args(query))
    return page_out([_row_out(row) for row in rows], total, query)


@bp.post("/tickets")
@requires("tickets.manage")
@bp.input(TicketIn, arg_name="data")
@bp.output(TicketOut, status_code=201)
@bp.doc(responses={404: "No such customer or line"})
def ticket_open(data: dict[str, Any]) -> Any:
    """Open a ticket for a phone, store or e-mail contact, with its SLA due times."""
    session = db_session()
    target = data["customer"].strip()
    customer = subscribers.get_customer_by_msisdn_or_ref(session, target)
    line = (
        None if target.upper().startswith("C-") else subscribers.get_line_by_msisdn(session, target)
    )
    ticket = open_ticket(
        session,
        category=data["category"],
        channel=data["channel"],
        priority=data["priority"],
        subject=data["subject"],
        body=data["body"],
        actor=current_actor(),
        now=utcnow(),
        timezone=settings().timezone,
        customer_id=customer.id,
        line_id=line.id if line else None,
    )
    return _one_ticket_out(ticket)


@bp.get("/tickets/<ref>")
@requires("tickets.view")
@bp.output(TicketDetail)
@bp.doc(responses=TICKET_404)
def ticket_get(ref: str) -> Any:
    """A ticket with its whole conversation (internal notes included) and attachments."""
    ticket = _ticket(ref)
    assert ticket.id is not None
    session = db_session()
    attached = files.attachments_of(session, ticket_id=ticket.id)
    messages = [
        {**m.model_dump(), "attachments": [a.model_dump() for a in attached.get(m.id or 0, [])]}
        for m in messages_of(session, ticket_id=ticket.id)
    ]
    return {**_one_ticket_out(ticket), "messages": messages}


@bp.post("/tickets/<ref>/messages")
@requires("tickets.manage")
@bp.input(MessageIn, arg_name="data")
@bp.output(MessageOut, status_code=201)
@bp.doc(responses={**TICKET_404, 409: "The ticket is closed"})
def ticket_message(ref: str, data: dict[str, Any]) -> Any:
    """Answer the customer (they are notified) or add an internal note."""
    ticket = _ticket(ref)
    assert ticket.id is not None
    message = conversation.staff_reply(
        db_session(),
        ticket_id=ticket.id,
        body=data["body"],
        visibility=data["visibility"],
        actor=current_actor(),
        now=utcnow(),
    )
    return {**message.model_dump(), "attachments": []}


@bp.post("/tickets/<ref>/messages/upload")
@accepts_upload(UPLOAD_LIMIT)
@requires("tickets.manage")
@bp.input(MessageUploadIn, location="form_and_files", arg_name="data")
@bp.output(MessageOut, status_code=201)
@bp.doc(
    responses={
        **TICKET_404,
        409: "The ticket is closed",
        413: "The request is larger than five files at their limit",
        422: "A bad field, or a file refused (the message says why); nothing is kept",
    }
)
def ticket_message_upload(ref: str, data: dict[str, Any]) -> Any:
    """Answer the customer or add an internal note, with attachments (multipart/form-data)."""
    ticket = _ticket(ref)
    assert ticket.id is not None
    session = db_session()
    message = conversation.staff_reply(
        session,
        ticket_id=ticket.id,
        body=data["body"],
        visibility=data["visibility"],
        actor=current_actor(),
        now=utcnow(),
        uploads=uploads_from_request(),
        storage=storage(),
    )
    attached = files.attachments_of(session, ticket_id=ticket.id).get(message.id or 0, [])
    return {**message.model_dump(), "attachments": [a.model_dump() for a in attached]}


@bp.post("/tickets/<ref>/status")
@requires("tickets.manage")
@bp.input(StatusIn, arg_name="data")
@bp.output(TicketOut)
@bp.doc(responses={**TICKET_404, 409: "The change is not allowed from the ticket's status"})
def ticket_status(ref: str, data: dict[str, Any]) -> Any:
    """Change the status along the allowed changes (README, Customer service)."""
    ticket = _ticket(ref)
    assert ticket.id is not None
    changed = workflow.change_status(
        db_session(),
        ticket_id=ticket.id,
        status=data["status"],
        actor=current_actor(),
        now=utcnow(),
        timezone=settings().timezone,
        reason=data["reason"],
    )
    return _one_ticket_out(changed)


@bp.post("/ticket-assignments")
@requires("tickets.manage")
@bp.input(AssignIn, arg_name="data")
@bp.output(AssignOut)
@bp.doc(responses={404: "No such ticket or staff user"})
def ticket_assign(data: dict[str, Any]) -> Any:
    """Give tickets to one admin or care user (null: nobody); how many changed hands."""
    ids = [_ticket(ref).id or 0 for ref in data["tickets"]]
    assignee = data["assignee"]
    changed = workflow.assign_tickets(
        db_session(),
        ticket_ids=ids,
        assignee_id=_staff_id(assignee) if assignee is not None else None,
        actor=current_actor(),
        now=utcnow(),
    )
    return {"changed": changed}


@bp.post("/tickets/<ref>/escalation")
@requires("tickets.manage")
@bp.input(EscalationIn, arg_name="data")
@bp.output(TicketOut)
@bp.doc(responses=TICKET_404)
def ticket_escalation(ref: str, data: dict[str, Any]) -> Any:
    """Record the regulator's reference and date; an open ticket becomes escalated."""
    ticket = _ticket(ref)
    assert ticket.id is not None
    changed = workflow.escalate_to_regulator(
        db_session(),
        ticket_id=ticket.id,
        reference=data["reference"],
        escalated_on=data["date"],
        actor=current_actor(),
        now=utcnow(),
        timezone=settings().timezone,
    )
    return _one_ticket_out(changed)


@bp.get("/tickets/<ref>/attachments/<int:attachment_id>")
@requires("tickets.view")
@bp.doc(responses=ATTACHMENT_DOC)
def ticket_attachment(ref: str, attachment_id: int) -> Any:
    """An attachment's bytes, never as a page."""
    ticket = _ticket(ref)
    assert ticket.id is not None
    row = files.get_attachment(db_session(), ticket_id=ticket.id, attachment_id=attachment_id)
    return attachment_response(ticket, row)


def _target_out(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SlaTargetOut().fields}


@bp.get("/sla-targets")
@requires("tickets.view")
@bp.output(SlaTargetList)
def sla_target_list() -> Any:
    """Every category × priority: minutes to first response and to resolution, and the clock."""
    return {"items": [_target_out(row) for row in targets.list_sla_targets(db_session())]}


@bp.put("/sla-targets/<category>/<priority>")
@requires("sla_targets.manage")
@bp.input(SlaTargetIn, arg_name="data")
@bp.output(SlaTargetOut)
@bp.doc(responses={404: "No such category or priority"})
def sla_target_put(category: str, priority: str, data: dict[str, Any]) -> Any:
    """Set one target; tickets already open keep their due times."""
    from app.care.models import CATEGORIES, PRIORITIES

    if category not in CATEGORIES or priority not in PRIORITIES:
        raise NotFound(N_("There is nothing at this address."))
    row = targets.update_sla_target(
        db_session(),
        category=category,
        priority=priority,
        actor=current_actor(),
        now=utcnow(),
        **data,
    )
    return _target_out(row)


@bp.get("/ticket-figures")
@requires("tickets.view")
@bp.input(FiguresQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(FiguresOut)
def ticket_figures(query: dict[str, Any]) -> Any:
    """Tickets opened per local day, live tickets by status, and SLA attainment of the period."""
    first = min(max(query["first"], EARLIEST), LATEST)
    last = min(max(query["last"], EARLIEST), LATEST, first + timedelta(days=MAX_SPAN_DAYS - 1))
    session = db_session()
    zone = settings().timezone
    days = figures.tickets_opened_per_day(session, first=first, last=last, timezone=zone)
    attainment = figures.sla_attainment(
        session, first=first, last=last, timezone=zone, now=utcnow()
    )
    return {
        "opened_per_day": [{"day": day, "opened": count} for day, count in days],
        "open_by_status": figures.open_tickets_by_status(session),
        "sla_attainment": {
            **attainment.as_dict(),
            "share": attainment.share(attainment.both_met, attainment.both_total),
        },
    }
