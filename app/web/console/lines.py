"""Console actions on a line (DESIGN §10): suspend, resume, terminate, plan change,
transfer, port-out and SIM swap.

Each action posts to its own route under `lines.manage` with a reason that
goes to the audit log, and returns to the customer's page with the outcome
flashed; a refusal is flashed and nothing changes (`undo_refused`). Two
actions answer with a page of their own instead:

* Termination, transfer and port-out end the line for good, so the first
  post shows a confirmation page that repeats the reason — and, for a
  termination or a port-out, the refund ending the line now pays
  (`app.exit.termination.quote_line_end`); only the second post, with
  `confirm=yes`, acts. Termination and port-out pay that refund
  (`terminate_with_refund`, `port_out_with_refund`): the unused plan value,
  and the balance with the customer's last line, back to the card payments
  newest first and the rest for finance.
* A SIM swap shows the new SIM (and an eSIM's activation code, as text and
  QR code), never in the flash (the session cookie): the answer page is
  rendered directly, with `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.exit import termination
from app.subscribers import lifecycle
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.web import flash_refusal, format_money_for_view, label
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import NO_STORE, ReasonForm, back_to_customer_page, refused_form
from app.web.context import current_actor, db_session, settings
from app.web.formatting import qr_svg
from app.web.forms import limit
from numbering.models import Sim
from plans.models import Plan

LINE_ACTIONS = ("suspend", "resume", "terminate")


def _change(line: Line, action: str, reason: str) -> Line:
    assert line.id is not None
    common: dict[str, Any] = {
        "line_id": line.id,
        "reason": reason,
        "actor": current_actor(),
        "now": utcnow(),
    }
    if action == "suspend":
        return lifecycle.suspend_line(db_session(), **common)
    if action == "resume":
        return lifecycle.resume_line(db_session(), **common)
    ended = termination.terminate_with_refund(
        db_session(), quarantine_days=settings().number_quarantine_days, **common
    )
    _flash_refund(ended)
    return ended.line


def _flash_refund(ended: termination.LineEnded) -> None:
    if ended.replayed or not ended.refund_minor:
        return
    flash(
        _(
            "%(amount)s refunded: %(cards)s to card payments, %(by_hand)s for finance to pay "
            "by hand.",
            amount=format_money_for_view(ended.refund_minor, ended.currency),
            cards=format_money_for_view(ended.to_cards_minor, ended.currency),
            by_hand=format_money_for_view(ended.by_hand_minor, ended.currency),
        ),
        "success",
    )


def _confirm_page(line: Line, ref: str, action: str, form: Any) -> Any:
    """The page asking to confirm an ending, with the refund it pays for a termination
    or port-out; a line that has already ended goes back to the customer page."""
    assert line.id is not None
    quote = None
    if action in ("terminate", "port-out"):
        try:
            quote = termination.quote_line_end(db_session(), line_id=line.id, now=utcnow())
        except DomainError as exc:
            flash_refusal(exc)
            return back_to_customer_page(ref)
    return render_template(
        "console/line_confirm.html", line=line, ref=ref, action=action, form=form, quote=quote
    )


@bp.route("/lines/<msisdn>/<any(suspend, resume, terminate):action>", methods=["POST"])
@staff_required("lines.manage")
def line_action(msisdn: str, action: str) -> Any:
    line = subscribers.get_line_by_msisdn(db_session(), msisdn)
    customer = db_session().get(Customer, line.customer_id)
    assert customer is not None
    back = redirect(url_for("console.customer", ref=customer.ref, _anchor="lines"))
    form = EndLineForm()
    if not form.validate_on_submit():
        flash(_("Give a reason (at most 500 characters)."), "error")
        return back
    if action == "terminate" and form.confirm.data != "yes":
        return _confirm_page(line, customer.ref, action, form)
    try:
        line = _change(line, action, form.reason.data or "")
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(
            _(
                "Line %(msisdn)s is %(status)s.",
                msisdn=line.msisdn,
                status=label("line_status", line.status),
            ),
            "success",
        )
    return back


ENDINGS = {"transfer": "transfer", "port-out": "port_out"}


class ChangePlanForm(ReasonForm):
    plan_id = IntegerField(_l("New plan"), validators=[InputRequired()])


class EndLineForm(ReasonForm):
    confirm = StringField()


class SimSwapForm(ReasonForm):
    iccid = StringField(_l("New SIM's ICCID"), validators=[DataRequired(), limit(40)])
    lost = BooleanField(_l("The old SIM was lost or stolen (block it)"))


def _line_and_ref(msisdn: str) -> tuple[Line, str]:
    session = db_session()
    line = subscribers.get_line_by_msisdn(session, msisdn)
    customer = subscribers.get_customer(session, line.customer_id)
    return line, customer.ref


@bp.route("/lines/<msisdn>/change-plan", methods=["POST"])
@staff_required("lines.manage")
def line_change_plan(msisdn: str) -> Any:
    line, ref = _line_and_ref(msisdn)
    form = ChangePlanForm()
    if refused_form(form):
        return back_to_customer_page(ref)
    assert line.id is not None
    try:
        line = lifecycle.change_plan(
            db_session(),
            line_id=line.id,
            plan_id=form.plan_id.data or 0,
            reason=form.reason.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
        return back_to_customer_page(ref)
    if line.next_plan_id is None:
        flash(_("Line %(msisdn)s keeps its plan; no change is pending.", msisdn=msisdn), "success")
    else:
        plan = db_session().get(Plan, line.next_plan_id)
        flash(
            _(
                "Line %(msisdn)s changes to plan %(plan)s at its next renewal.",
                msisdn=msisdn,
                plan=plan.code if plan else "",
            ),
            "success",
        )
    return back_to_customer_page(ref)


@bp.route("/lines/<msisdn>/<any(transfer, 'port-out'):action>", methods=["POST"])
@staff_required("lines.manage")
def line_end(msisdn: str, action: str) -> Any:
    line, ref = _line_and_ref(msisdn)
    form = EndLineForm()
    if refused_form(form):
        return back_to_customer_page(ref)
    if form.confirm.data != "yes":
        return _confirm_page(line, ref, action, form)
    assert line.id is not None
    common: dict[str, Any] = {
        "line_id": line.id,
        "reason": form.reason.data or "",
        "actor": current_actor(),
        "now": utcnow(),
    }
    try:
        if action == "transfer":
            line = lifecycle.transfer_line(db_session(), **common)
        else:
            ended = termination.port_out_with_refund(db_session(), **common)
            _flash_refund(ended)
    except DomainError as exc:
        flash_refusal(exc)
        return back_to_customer_page(ref)
    if action == "transfer":
        flash(_("Line %(msisdn)s was transferred to the host.", msisdn=msisdn), "success")
    else:
        flash(_("Line %(msisdn)s was ported out.", msisdn=msisdn), "success")
    return back_to_customer_page(ref)


@bp.route("/lines/<msisdn>/swap-sim", methods=["POST"])
@staff_required("lines.manage")
def line_swap_sim(msisdn: str) -> Any:
    line, ref = _line_and_ref(msisdn)
    form = SimSwapForm()
    if refused_form(form):
        return back_to_customer_page(ref)
    assert line.id is not None
    old = db_session().get(Sim, line.sim_id) if line.sim_id is not None else None
    old_iccid = old.iccid if old is not None else None
    try:
        line = lifecycle.swap_sim(
            db_session(),
            line_id=line.id,
            iccid=form.iccid.data or "",
            reason=form.reason.data or "",
            lost=bool(form.lost.data),
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
        return back_to_customer_page(ref)
    sim = db_session().get(Sim, line.sim_id) if line.sim_id is not None else None
    assert sim is not None
    body = render_template(
        "console/sim_swapped.html",
        line=line,
        ref=ref,
        sim=sim,
        old_iccid=old_iccid,
        qr=qr_svg(sim.lpa) if sim.kind == "esim" and sim.lpa else None,
    )
    return body, 200, NO_STORE
