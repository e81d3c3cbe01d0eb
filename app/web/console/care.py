"""Console care actions (issue 5, DESIGN §10, §11): plan change, transfer, port-out,
SIM swap, real-name details, the audited ID reveal, and a host's provisioning secret.

Each action posts to its own route under its own permission with a reason
that goes to the audit log, and returns to the customer's page with the
outcome flashed; a refusal is flashed and nothing changes (`undo_refused`).
Two actions answer with a page of their own instead:

* Transfer and port-out end the line for good, so the first post shows a
  confirmation page that repeats the reason; only the second post, with
  `confirm=yes`, acts.
* A SIM swap shows the new SIM (and an eSIM's activation code, as text and
  QR code), and an ID reveal shows the clear number once. Neither value is
  put in the flash (the session cookie): the answer page is rendered
  directly, with `Cache-Control: no-store`.

Everywhere else the ID number is shown masked (`Customer.id_number_masked`).
`customer_care` gives the customer page (app/web/console/money.py) what
these forms need: each line's current period, SIM and the plans it may
change to.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from app.charging.models import LinePeriod
from app.charging.periods import period_for_display
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.core.pii import PiiCipher
from app.subscribers import kyc, lifecycle
from app.subscribers import services as subscribers
from app.subscribers.models import ID_TYPE_LABELS, ID_TYPES, Customer, Line
from app.web import flash_refusal
from app.web.auth import staff_required
from app.web.console import bp
from app.web.context import client_ip, current_actor, db_session, settings
from app.web.formatting import data_text, minutes_text, number_text, qr_svg
from numbering.models import Sim
from plans.models import Plan
from plans.services import published_plans
from wholesale import services as wholesale
from wholesale.models import HostCarrier

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
ENDINGS = {"transfer": "transfer", "port-out": "port_out"}


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class ChangePlanForm(ReasonForm):
    plan_id = IntegerField(_l("New plan"), validators=[InputRequired()])


class EndLineForm(ReasonForm):
    confirm = StringField()


class SimSwapForm(ReasonForm):
    iccid = StringField(_l("New SIM's ICCID"), validators=[DataRequired(), Length(max=40)])
    lost = BooleanField(_l("The old SIM was lost or stolen (block it)"))


class IdentityForm(FlaskForm):
    name = StringField(_l("Real name"), validators=[DataRequired(), Length(max=200)])
    id_type = SelectField(
        _l("ID type"),
        choices=[SelectChoice(value=t, label=_l(ID_TYPE_LABELS[t])) for t in ID_TYPES],
    )
    id_number = StringField(_l("ID number"), validators=[DataRequired(), Length(max=40)])


class SecretForm(FlaskForm):
    secret = PasswordField(_l("New secret (16 to 200 characters)"), validators=[Length(max=200)])
    clear = BooleanField()


def _cipher() -> PiiCipher:
    return PiiCipher(settings().pii_key)


def _first_error(form: FlaskForm) -> str:
    for errors in form.errors.values():
        if errors:
            return str(errors[0])
    return _("The form expired or was sent from elsewhere. Reload the page and try again.")


def _refused_form(form: FlaskForm) -> bool:
    """Whether the posted form is refused (its first error is flashed)."""
    if form.validate_on_submit():
        return False
    flash(_first_error(form), "error")
    return True


def _line_and_ref(msisdn: str) -> tuple[Line, str]:
    session = db_session()
    line = subscribers.get_line_by_msisdn(session, msisdn)
    customer = subscribers.get_customer(session, line.customer_id)
    return line, customer.ref


def _back(ref: str, anchor: str = "lines") -> Any:
    return redirect(url_for("console.customer", ref=ref, _anchor=anchor))


# -- the customer page's panel ----------------------------------------------------------


def _remaining(period: LinePeriod) -> dict[str, str]:
    """A period's allowances left and in all, worded like the store's meters."""
    return {
        "data_left": data_text(period.data_kb_left),
        "data": data_text(period.data_kb),
        "voice_left": minutes_text(period.voice_s_left),
        "voice": minutes_text(period.voice_s),
        "sms_left": number_text(period.sms_left),
        "sms": number_text(period.sms),
    }


def customer_care(customer: Customer) -> dict[str, Any]:
    """What the customer page shows about lines and identity beyond the money."""
    session = db_session()
    assert customer.id is not None
    lines = subscribers.lines_of_customers(session, customer_ids=[customer.id])[customer.id]
    now = utcnow()
    on_sale = published_plans(session)
    details: dict[int, dict[str, Any]] = {}
    for line in lines:
        assert line.id is not None
        plan = session.get(Plan, line.plan_id)
        assert plan is not None
        sim = session.get(Sim, line.sim_id) if line.sim_id is not None else None
        host_id = sim.host_id if sim is not None else plan.host_id
        period: LinePeriod | None = period_for_display(session, line_id=line.id, at=now)
        details[line.id] = {
            "period": period,
            "remaining": _remaining(period) if period is not None else None,
            "sim": sim,
            "next_plan": session.get(Plan, line.next_plan_id) if line.next_plan_id else None,
            # The line's own plan first: choosing it cancels a pending change.
            "plans": [plan, *(p for p in on_sale if p.host_id == host_id and p.id != plan.id)],
        }
    identity = IdentityForm(prefix="identity", formdata=None)
    identity.name.data = customer.name
    identity.id_type.data = customer.id_type or ID_TYPES[0]
    return {
        "care": details,
        "identity_form": identity,
        "id_type_label": ID_TYPE_LABELS.get(customer.id_type or ""),
    }


# -- plan change ------------------------------------------------------------------------


@bp.route("/lines/<msisdn>/change-plan", methods=["POST"])
@staff_required("lines.manage")
def line_change_plan(msisdn: str) -> Any:
    line, ref = _line_and_ref(msisdn)
    form = ChangePlanForm()
    if _refused_form(form):
        return _back(ref)
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
        return _back(ref)
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
    return _back(ref)


# -- transfer and port-out (confirmed) --------------------------------------------------


@bp.route("/lines/<msisdn>/<any(transfer, 'port-out'):action>", methods=["POST"])
@staff_required("lines.manage")
def line_end(msisdn: str, action: str) -> Any:
    line, ref = _line_and_ref(msisdn)
    form = EndLineForm()
    if _refused_form(form):
        return _back(ref)
    if form.confirm.data != "yes":
        return render_template(
            "console/line_confirm.html", line=line, ref=ref, action=action, form=form
        )
    assert line.id is not None
    change = lifecycle.transfer_line if action == "transfer" else lifecycle.port_out_line
    try:
        line = change(
            db_session(),
            line_id=line.id,
            reason=form.reason.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
        return _back(ref)
    if action == "transfer":
        flash(_("Line %(msisdn)s was transferred to the host.", msisdn=msisdn), "success")
    else:
        flash(_("Line %(msisdn)s was ported out.", msisdn=msisdn), "success")
    return _back(ref)


# -- SIM swap ---------------------------------------------------------------------------


@bp.route("/lines/<msisdn>/swap-sim", methods=["POST"])
@staff_required("lines.manage")
def line_swap_sim(msisdn: str) -> Any:
    line, ref = _line_and_ref(msisdn)
    form = SimSwapForm()
    if _refused_form(form):
        return _back(ref)
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
        return _back(ref)
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


# -- real-name details ------------------------------------------------------------------


@bp.route("/customers/<ref>/identity", methods=["POST"])
@staff_required("subscribers.manage")
def customer_identity(ref: str) -> Any:
    customer = subscribers.get_customer_by_ref(db_session(), ref)
    form = IdentityForm(prefix="identity")
    if _refused_form(form):
        return _back(customer.ref, "identity")
    try:
        kyc.register_identity(
            db_session(),
            customer=customer,
            name=form.name.data or "",
            id_type=form.id_type.data or "",
            id_number=form.id_number.data or "",
            cipher=_cipher(),
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(
            _(
                "Real-name details of %(ref)s saved (ID %(masked)s).",
                ref=customer.ref,
                masked=customer.id_number_masked,
            ),
            "success",
        )
    return _back(customer.ref, "identity")


@bp.route("/customers/<ref>/reveal-id", methods=["POST"])
@staff_required("pii.reveal")
def customer_reveal_id(ref: str) -> Any:
    customer = subscribers.get_customer_by_ref(db_session(), ref)
    form = ReasonForm()
    if _refused_form(form):
        return _back(customer.ref, "identity")
    try:
        value = kyc.reveal_id_number(
            db_session(),
            customer=customer,
            cipher=_cipher(),
            actor=current_actor(),
            reason=form.reason.data or "",
            now=utcnow(),
            ip=client_ip(),
        )
    except DomainError as exc:
        flash_refusal(exc)
        return _back(customer.ref, "identity")
    body = render_template(
        "console/id_revealed.html",
        customer=customer,
        value=value,
        id_type_label=ID_TYPE_LABELS.get(customer.id_type or ""),
    )
    return body, 200, NO_STORE


# -- a host's provisioning secret -------------------------------------------------------


@bp.app_template_global()
def secret_hint(host: HostCarrier) -> str | None:
    """The last four characters of a host's provisioning secret, or None when unset."""
    secret = host.provisioning_secret
    return f"…{secret[-4:]}" if secret else None


@bp.route("/hosts/<code>/provisioning-secret", methods=["POST"])
@staff_required("wholesale.manage")
def host_secret(code: str) -> Any:
    host = wholesale.get_host_by_code(db_session(), code)
    back = redirect(url_for("console.host_detail", code=host.code, _anchor="secret"))
    form = SecretForm()
    if _refused_form(form):
        return back
    value = None if form.clear.data else (form.secret.data or "")
    if value is not None and not value.strip():
        flash(_("Enter the new secret, or clear it."), "error")
        return back
    assert host.id is not None
    try:
        host = wholesale.set_provisioning_secret(
            db_session(), host_id=host.id, secret=value, actor=current_actor(), now=utcnow()
        )
    except DomainError as exc:
        flash_refusal(exc)
        return back
    if host.provisioning_secret:
        flash(
            _(
                "The provisioning secret of %(code)s is set (ending %(hint)s).",
                code=host.code,
                hint=host.provisioning_secret[-4:],
            ),
            "success",
        )
    else:
        flash(_("The provisioning secret of %(code)s is cleared.", code=host.code), "success")
    return back
