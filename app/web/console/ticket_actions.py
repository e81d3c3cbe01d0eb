"""Console actions on tickets (`tickets.manage`): reply or note, status change,
assignment (one ticket, or many from the queue), regulator escalation; and the
SLA targets table (read with `tickets.view`, edited by admins), with the SLA
calendar below it (app/web/console/sla_days.py).

Each action posts to its own route, calls one service and goes back to the
ticket's page with a message; a refusal is flashed and undoes the request's
unit of work (`flash_refusal`). A reply whose form is refused (empty, too
long) shows the ticket's page again with the message beside the field and
the text kept.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.care import conversation, targets, workflow
from app.care.models import CATEGORIES, PRIORITIES
from app.care.tickets import get_ticket_by_ref
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.web import flash_refusal, label
from app.web.auth import safe_next, staff_required
from app.web.console import bp
from app.web.console.common import refused_form
from app.web.console.sla_days import calendar_context
from app.web.console.tickets import ticket_context
from app.web.context import accepts_upload, current_actor, db_session, settings
from app.web.forms import ActionForm, attach_error
from app.web.tickets import (
    UPLOAD_LIMIT,
    EscalationForm,
    ReplyForm,
    SlaTargetForm,
    storage,
    uploads_from_request,
)


def _ticket_id(ref: str) -> tuple[int, str]:
    found = get_ticket_by_ref(db_session(), ref)
    assert found.id is not None
    return found.id, found.ref


def _back(ref: str, anchor: str = "") -> Any:
    return redirect(url_for("console.ticket", ref=ref, _anchor=anchor or None))


@bp.route("/tickets/<ref>/reply", methods=["POST"])
@staff_required("tickets.manage")
@accepts_upload(UPLOAD_LIMIT)
def ticket_reply(ref: str) -> Any:
    ticket_id, ref = _ticket_id(ref)
    form = ReplyForm()
    if form.validate_on_submit():
        try:
            conversation.staff_reply(
                db_session(),
                ticket_id=ticket_id,
                body=form.body.data or "",
                visibility=form.visibility.data or "",
                actor=current_actor(),
                now=utcnow(),
                uploads=uploads_from_request(),
                storage=storage(),
            )
        except DomainError as exc:
            attach_error(form, exc)
        else:
            sent = form.visibility.data == "customer"
            flash(_("Answer sent.") if sent else _("Note added."), "success")
            return _back(ref, "conversation")
    context = ticket_context(ref)
    context["reply_form"] = form
    return render_template("console/ticket.html", **context), 422


@bp.route("/tickets/<ref>/status", methods=["POST"])
@staff_required("tickets.manage")
def ticket_status(ref: str) -> Any:
    ticket_id, ref = _ticket_id(ref)
    if refused_form(ActionForm()):
        return _back(ref)
    target = request.form.get("status", "")
    try:
        workflow.change_status(
            db_session(),
            ticket_id=ticket_id,
            status=target,
            actor=current_actor(),
            now=utcnow(),
            timezone=settings().timezone,
            reason=request.form.get("reason", "")[:500],
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(
            _("Ticket %(ref)s is now %(status)s.", ref=ref, status=label("ticket_status", target)),
            "success",
        )
    return _back(ref)


def _assignee(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


@bp.route("/tickets/<ref>/assign", methods=["POST"])
@staff_required("tickets.manage")
def ticket_assign(ref: str) -> Any:
    ticket_id, ref = _ticket_id(ref)
    if refused_form(ActionForm()):
        return _back(ref)
    try:
        workflow.assign_tickets(
            db_session(),
            ticket_ids=[ticket_id],
            assignee_id=_assignee(request.form.get("assignee", "")),
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(_("Assignment saved."), "success")
    return _back(ref)


@bp.route("/tickets/assign", methods=["POST"])
@staff_required("tickets.manage")
def tickets_assign() -> Any:
    back = safe_next(request.form.get("next"), url_for("console.tickets"))
    if refused_form(ActionForm()):
        return redirect(back)
    ids = [int(v) for v in request.form.getlist("ticket") if v.isdigit() and len(v) < 10]
    try:
        changed = workflow.assign_tickets(
            db_session(),
            ticket_ids=ids,
            assignee_id=_assignee(request.form.get("assignee", "")),
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(_("%(count)s tickets assigned.", count=changed), "success")
    return redirect(back)


@bp.route("/tickets/<ref>/escalate", methods=["POST"])
@staff_required("tickets.manage")
def ticket_escalate(ref: str) -> Any:
    ticket_id, ref = _ticket_id(ref)
    form = EscalationForm()
    if refused_form(form):
        return _back(ref, "regulator")
    try:
        workflow.escalate_to_regulator(
            db_session(),
            ticket_id=ticket_id,
            reference=form.reference.data or "",
            escalated_on=form.date.data,
            actor=current_actor(),
            now=utcnow(),
            timezone=settings().timezone,
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(_("Regulator escalation recorded."), "success")
    return _back(ref, "regulator")


@bp.route("/sla-targets")
@staff_required("tickets.view")
def sla_targets() -> Any:
    return render_template(
        "console/sla_targets.html",
        targets=targets.list_sla_targets(db_session()),
        action_form=ActionForm(),
        **calendar_context(),
    )


@bp.route("/sla-targets/<category>/<priority>", methods=["POST"])
@staff_required("sla_targets.manage")
def sla_target_update(category: str, priority: str) -> Any:
    form = SlaTargetForm()
    if category not in CATEGORIES or priority not in PRIORITIES:
        flash(_("There is nothing at this address."), "error")
    elif not refused_form(form):
        try:
            targets.update_sla_target(
                db_session(),
                category=category,
                priority=priority,
                first_response_minutes=form.first_response_minutes.data or 0,
                resolution_minutes=form.resolution_minutes.data or 0,
                around_the_clock=form.around_the_clock.data == "1",
                actor=current_actor(),
                now=utcnow(),
            )
        except DomainError as exc:
            flash_refusal(exc)
        else:
            flash(
                _(
                    "Target for %(category)s, %(priority)s saved.",
                    category=label("ticket_category", category),
                    priority=label("ticket_priority", priority),
                ),
                "success",
            )
    return redirect(url_for("console.sla_targets", _anchor=f"{category}-{priority}"))
