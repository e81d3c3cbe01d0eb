"""Console pages of customer service (DESIGN §11): the ticket queue, a ticket's page,
a new ticket for a phone or store contact, and attachment downloads.

The queue is filtered by status (the live ones unless told), category,
assignee and breach, soonest resolution due first, paged; each row shows
both SLA clocks as text computed here. Care (`tickets.manage`) picks rows
and gives them to one agent in one POST. A ticket's page shows the whole
conversation — internal notes marked — with its attachments, the audit of
the ticket, and, for care, the reply, status, assignment and regulator
forms (app/web/console/ticket_actions.py). Auditors read it all and change
nothing.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.care import attachments as files
from app.care.models import ACTIVE_STATUSES, CATEGORIES, STATUSES, TICKET_STATUS_LABELS
from app.care.tickets import TicketFilter, get_ticket_by_ref, list_tickets, messages_of, open_ticket
from app.care.workflow import TRANSITIONS, assignable_staff
from app.core.audit import list_audit_of_targets
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import PER_PAGE, page_number
from app.web.context import accepts_upload, current_actor, db_session, settings
from app.web.forms import attach_error
from app.web.tickets import (
    UPLOAD_LIMIT,
    EscalationForm,
    ReplyForm,
    StaffTicketForm,
    attachment_response,
    clocks,
    storage,
    uploads_from_request,
)

BREACH_FILTERS = {"yes": True, "no": False}


def queue_filter() -> tuple[TicketFilter, dict[str, str]]:
    """The queue's filter from the query string, and the arguments as read (for links)."""
    args = {
        name: request.args.get(name, "") for name in ("status", "category", "assignee", "breach")
    }
    status = args["status"]
    statuses: tuple[str, ...] | None = ACTIVE_STATUSES
    if status == "all":
        statuses = None
    elif status in STATUSES:
        statuses = (status,)
    else:
        args["status"] = ""
    category = args["category"] if args["category"] in CATEGORIES else None
    assignee = args["assignee"]
    assignee_id = None
    if assignee == "me":
        assignee_id = current_user.id
    elif assignee.isdigit() and len(assignee) < 10:
        assignee_id = int(assignee)
    found = TicketFilter(
        statuses=statuses,
        category=category,
        assignee_id=assignee_id,
        unassigned=assignee == "none",
        breached=BREACH_FILTERS.get(args["breach"]),
    )
    return found, {k: v for k, v in args.items() if v}


@bp.route("/tickets")
@staff_required("tickets.view")
def tickets() -> Any:
    session = db_session()
    found, args = queue_filter()
    page = page_number()
    rows, total = list_tickets(
        session, where=found, order="due", limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    now = utcnow()
    return render_template(
        "console/tickets.html",
        rows=rows,
        clocks={row.ticket.id: clocks(row.ticket, now) for row in rows},
        total=total,
        page=page,
        per_page=PER_PAGE,
        args=args,
        statuses=STATUSES,
        status_labels=TICKET_STATUS_LABELS,
        categories=CATEGORIES,
        staff=assignable_staff(session),
    )


def _customer_and_line(target: str) -> tuple[Customer, Line | None]:
    session = db_session()
    target = target.strip().replace(" ", "")
    customer = subscribers.get_customer_by_msisdn_or_ref(session, target)
    line = None
    if not target.upper().startswith("C-"):
        line = subscribers.get_line_by_msisdn(session, target)
    return customer, line


@bp.route("/tickets/new", methods=["GET", "POST"])
@staff_required("tickets.manage")
@accepts_upload(UPLOAD_LIMIT)
def ticket_new() -> Any:
    form = StaffTicketForm()
    status = 422 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            customer, line = _customer_and_line(form.customer.data or "")
            ticket = open_ticket(
                db_session(),
                category=form.category.data or "",
                channel=form.channel.data or "",
                priority=form.priority.data or "",
                subject=form.subject.data or "",
                body=form.body.data or "",
                actor=current_actor(),
                now=utcnow(),
                timezone=settings().timezone,
                customer_id=customer.id,
                line_id=line.id if line else None,
                uploads=uploads_from_request(),
                storage=storage(),
            )
        except DomainError as exc:
            if exc.code in ("customer_not_found", "line_not_found"):
                exc.field = "customer"
            attach_error(form, exc)
            status = exc.http_status
        else:
            flash(_("Ticket %(ref)s opened.", ref=ticket.ref), "success")
            return redirect(url_for("console.ticket", ref=ticket.ref))
    return render_template("console/ticket_new.html", form=form), status


def ticket_context(ref: str) -> dict[str, Any]:
    """Everything a ticket's page shows."""
    session = db_session()
    ticket = get_ticket_by_ref(session, ref)
    assert ticket.id is not None
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    line = session.get(Line, ticket.line_id) if ticket.line_id else None
    page = page_number()
    audit, audit_total = list_audit_of_targets(
        session,
        targets=[("ticket", [ticket.ref])],
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    assignee = next((s for s in assignable_staff(session) if s.id == ticket.assignee_id), None)
    escalation = EscalationForm(formdata=None)
    escalation.reference.data = ticket.regulator_ref
    escalation.date.data = ticket.regulator_escalated_on
    return {
        "ticket": ticket,
        "customer": customer,
        "line": line,
        "messages": messages_of(session, ticket_id=ticket.id),
        "attachments": files.attachments_of(session, ticket_id=ticket.id),
        "clocks": clocks(ticket, utcnow()),
        "next_statuses": sorted(TRANSITIONS[ticket.status], key=STATUSES.index),
        "staff": assignable_staff(session),
        "assignee": assignee,
        "audit": audit,
        "audit_total": audit_total,
        "page": page,
        "per_page": PER_PAGE,
        "reply_form": ReplyForm(formdata=None),
        "escalation_form": escalation,
    }


@bp.route("/tickets/<ref>")
@staff_required("tickets.view")
def ticket(ref: str) -> Any:
    return render_template("console/ticket.html", **ticket_context(ref))


@bp.route("/tickets/<ref>/attachments/<int:attachment_id>")
@staff_required("tickets.view")
def ticket_attachment(ref: str, attachment_id: int) -> Any:
    session = db_session()
    found = get_ticket_by_ref(session, ref)
    assert found.id is not None
    row = files.get_attachment(session, ticket_id=found.id, attachment_id=attachment_id)
    return attachment_response(found, row)
