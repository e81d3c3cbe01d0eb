"""Self-care tickets (DESIGN §10, §11): My tickets, opening one, its conversation,
replying and rating.

A subscriber sees only their own tickets, and of each only what is visible
to them: internal notes, system tickets and other customers' tickets do not
exist for them (a 404, the same as a ref that does not exist). A ticket is
opened in the page's language, which the answer's notice then uses. A
store login without a customer yet gets one on its first ticket (as on its
first top-up).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from app.care import attachments as files
from app.care import conversation, workflow
from app.care.errors import AttachmentNotFound
from app.care.models import TicketMessage
from app.care.tickets import TicketFilter, get_ticket_by_ref, list_tickets, messages_of, open_ticket
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.subscribers.models import FINAL_LINE_STATUSES, Customer
from app.subscribers.services import ensure_customer_for_account, lines_of_customers
from app.web.auth import subscriber_required
from app.web.context import accepts_upload, current_actor, db_session, settings
from app.web.forms import attach_error
from app.web.store import bp
from app.web.store.money import own_customer
from app.web.tickets import (
    CustomerReplyForm,
    CustomerTicketForm,
    RatingForm,
    attachment_response,
    storage,
    uploads_from_request,
)

PER_PAGE = 20
UPLOAD_LIMIT = 5 * 1024 * 1024


def _locale() -> str:
    return "zh_Hans" if str(get_locale() or "").startswith("zh") else "en"


def _own_ticket(ref: str) -> Any:
    customer = own_customer()
    if customer is None or customer.id is None:
        abort(404)
    return get_ticket_by_ref(db_session(), ref, customer_id=customer.id), customer


@bp.route("/account/tickets")
@subscriber_required
def my_tickets() -> Any:
    customer = own_customer()
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), 100_000)
    rows: list[Any] = []
    total = 0
    if customer is not None and customer.id is not None:
        rows, total = list_tickets(
            db_session(),
            where=TicketFilter(customer_id=customer.id, exclude_system=True),
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
        )
    return render_template(
        "store/tickets.html", rows=rows, total=total, page=page, per_page=PER_PAGE
    )


def _line_choices(customer: Customer | None) -> list[SelectChoice]:
    choices = [SelectChoice(value=0, label=_("No particular line"))]
    if customer is not None and customer.id is not None:
        lines = lines_of_customers(db_session(), customer_ids=[customer.id])[customer.id]
        choices += [
            SelectChoice(value=line.id or 0, label=line.msisdn)
            for line in lines
            if line.status not in FINAL_LINE_STATUSES
        ]
    return choices


@bp.route("/account/tickets/new", methods=["GET", "POST"])
@subscriber_required
@accepts_upload(UPLOAD_LIMIT)
def ticket_open() -> Any:
    form = CustomerTicketForm()
    form.line_id.choices = _line_choices(own_customer())
    status = 422 if request.method == "POST" else 200
    if form.validate_on_submit():
        session = db_session()
        try:
            customer = ensure_customer_for_account(
                session, account_id=current_user.id, email=current_user.email, now=utcnow()
            )
            ticket = open_ticket(
                session,
                category=form.category.data or "",
                channel="self_care",
                subject=form.subject.data or "",
                body=form.body.data or "",
                actor=current_actor(),
                now=utcnow(),
                timezone=settings().timezone,
                customer_id=customer.id,
                line_id=form.line_id.data or None,
                locale=_locale(),
                uploads=uploads_from_request(),
                storage=storage(),
            )
        except DomainError as exc:
            attach_error(form, exc)
            status = exc.http_status
        else:
            flash(
                _("Ticket %(ref)s received. We will answer here and by e-mail.", ref=ticket.ref),
                "success",
            )
            return redirect(url_for("store.my_ticket", ref=ticket.ref))
    return render_template("store/ticket_new.html", form=form), status


def _render_ticket(ref: str, *, reply: CustomerReplyForm | None = None, status: int = 200) -> Any:
    ticket, _customer = _own_ticket(ref)
    session = db_session()
    messages = messages_of(session, ticket_id=ticket.id, customer_view=True)
    visible = {m.id for m in messages}
    attachments = {
        message_id: rows
        for message_id, rows in files.attachments_of(session, ticket_id=ticket.id).items()
        if message_id in visible
    }
    can_rate = ticket.status in ("resolved", "closed") and ticket.satisfaction is None
    return render_template(
        "store/ticket.html",
        ticket=ticket,
        messages=messages,
        attachments=attachments,
        reply_form=reply or CustomerReplyForm(formdata=None),
        rating_form=RatingForm(formdata=None) if can_rate else None,
    ), status


@bp.route("/account/tickets/<ref>")
@subscriber_required
def my_ticket(ref: str) -> Any:
    return _render_ticket(ref)


@bp.route("/account/tickets/<ref>/reply", methods=["POST"])
@subscriber_required
@accepts_upload(UPLOAD_LIMIT)
def my_ticket_reply(ref: str) -> Any:
    ticket, customer = _own_ticket(ref)
    form = CustomerReplyForm()
    if form.validate_on_submit():
        try:
            conversation.customer_reply(
                db_session(),
                ticket_id=ticket.id,
                customer_id=customer.id,
                body=form.body.data or "",
                actor=current_actor(),
                now=utcnow(),
                timezone=settings().timezone,
                uploads=uploads_from_request(),
                storage=storage(),
            )
        except DomainError as exc:
            attach_error(form, exc)
        else:
            flash(_("Your reply was sent."), "success")
            return redirect(url_for("store.my_ticket", ref=ticket.ref, _anchor="conversation"))
    return _render_ticket(ticket.ref, reply=form, status=422)


@bp.route("/account/tickets/<ref>/rate", methods=["POST"])
@subscriber_required
def my_ticket_rate(ref: str) -> Any:
    ticket, customer = _own_ticket(ref)
    form = RatingForm()
    if not form.validate_on_submit():
        flash(_("Choose a score from 1 to 5."), "error")
    else:
        try:
            workflow.rate_ticket(
                db_session(),
                ticket_id=ticket.id,
                customer_id=customer.id,
                score=form.score.data or 0,
                actor=current_actor(),
                now=utcnow(),
            )
        except DomainError as exc:
            from app.web import flash_refusal

            flash_refusal(exc)
        else:
            flash(_("Thank you for your rating."), "success")
    return redirect(url_for("store.my_ticket", ref=ticket.ref))


@bp.route("/account/tickets/<ref>/attachments/<int:attachment_id>")
@subscriber_required
def my_ticket_attachment(ref: str, attachment_id: int) -> Any:
    ticket, _customer = _own_ticket(ref)
    session = db_session()
    row = files.get_attachment(session, ticket_id=ticket.id, attachment_id=attachment_id)
    message = session.get(TicketMessage, row.message_id)
    if message is None or message.visibility != "customer":
        raise AttachmentNotFound("No attachment %(id)s on this ticket.", id=attachment_id)
    return attachment_response(ticket, row)
