"""Self-care for subscribers (DESIGN §10): lines with usage bars, add-ons, plan
change at the next renewal, auto-renew, and the forgotten-password flow.

A subscriber sees and acts only on their own lines: anyone else's line is a
404, the same as one that does not exist. Each add-on form carries its own
random token, so a double submit of one form charges once (the ledger key
is `addon:<line id>:<token>`, app/charging/addons.py).

Password reset: the request form answers the same whatever the e-mail (no
account enumeration); the link carries a token whose SHA-256 alone is
stored (app/auth/services.py). Nothing here logs a token or a password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlmodel import col, select
from wtforms import EmailField, HiddenField, IntegerField, PasswordField, SelectField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length

from app.auth import resets
from app.auth.passwords import MAX_LENGTH, MIN_LENGTH
from app.charging.addons import addons_for_sale, buy_addon, period_addons
from app.charging.line_renewal import renew_now
from app.charging.models import LinePeriod, PeriodAddOn
from app.charging.periods import period_at, period_for_display
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.ledger.errors import InsufficientBalance
from app.subscribers import lifecycle
from app.subscribers.models import Customer, Line
from app.subscribers.services import set_auto_renew
from app.web import format_money_for_view, label
from app.web.auth import sign_out, subscriber_required
from app.web.context import client_ip, current_actor, db_session
from app.web.formatting import data_text as _data_text
from app.web.formatting import minutes_text as _minutes_text
from app.web.formatting import number_text as _number
from app.web.forms import attach_error
from app.web.store import bp
from app.web.store.money import money_view, own_customer
from plans.models import AddOn, Plan

TOKEN_BYTES = 16
# The reset page's address holds the token: no cache may keep it.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# -- forms --------------------------------------------------------------------------------


class BuyAddOnForm(FlaskForm):
    addon_id = IntegerField(validators=[InputRequired()])
    # A random token put in the page with the form; the ledger key is built from it.
    token = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class PlanChangeForm(FlaskForm):
    plan_id = SelectField(_l("Plan from the next renewal"), coerce=int)


class AutoRenewForm(FlaskForm):
    on = HiddenField(validators=[DataRequired()])


class RenewNowForm(FlaskForm):
    # The period end the subscriber saw: a double submit renews once (renew_now).
    period_end = HiddenField(validators=[DataRequired(), Length(max=40)])


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH, max=MAX_LENGTH)]
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


# -- what the pages show ------------------------------------------------------------------


@dataclass(frozen=True)
class Meter:
    """One allowance of the current period: used / total, remaining, as words and a bar."""

    kind: str  # data | voice | sms
    title: str
    used: int
    total: int
    used_text: str
    total_text: str
    left_text: str

    @property
    def percent(self) -> int:
        return 0 if self.total <= 0 else min(100, self.used * 100 // self.total)


@dataclass(frozen=True)
class LineCard:
    line: Line
    plan: Plan | None
    next_plan: Plan | None
    period: LinePeriod | None
    current: bool  # the period contains now (else it is the latest one)
    meters: list[Meter]
    status_label: str

    @property
    def msisdn(self) -> str:
        return self.line.msisdn


def _meters(period: LinePeriod) -> list[Meter]:
    meters = []
    if period.data_kb:
        meters.append(
            Meter(
                "data",
                _("Data"),
                period.data_kb_used,
                period.data_kb,
                _data_text(period.data_kb_used),
                _data_text(period.data_kb),
                _data_text(period.data_kb_left),
            )
        )
    if period.voice_s:
        meters.append(
            Meter(
                "voice",
                _("Calls"),
                period.voice_s_used,
                period.voice_s,
                _minutes_text(period.voice_s_used),
                _minutes_text(period.voice_s),
                _minutes_text(period.voice_s_left),
            )
        )
    if period.sms:
        meters.append(
            Meter(
                "sms",
                _("SMS"),
                period.sms_used,
                period.sms,
                _number(period.sms_used),
                _number(period.sms),
                _number(period.sms_left),
            )
        )
    return meters


def line_card(line: Line, now: datetime) -> LineCard:
    session = db_session()
    assert line.id is not None
    period = period_for_display(session, line_id=line.id, at=now)
    current = period is not None and period.start <= now < period.end
    return LineCard(
        line=line,
        plan=session.get(Plan, line.plan_id),
        next_plan=session.get(Plan, line.next_plan_id) if line.next_plan_id else None,
        period=period,
        current=current,
        meters=_meters(period) if period is not None else [],
        status_label=label("line_status", line.status),
    )


def line_cards(customer: Customer | None) -> list[LineCard]:
    """The customer's lines for the account page, newest first."""
    if customer is None or customer.id is None:
        return []
    now = utcnow()
    lines = db_session().exec(
        select(Line).where(Line.customer_id == customer.id).order_by(col(Line.id).desc())
    )
    return [line_card(line, now) for line in lines]


def _own_line(line_id: int) -> Line:
    """One of the signed-in subscriber's lines; any other is a 404."""
    customer = own_customer()
    line = db_session().get(Line, line_id)
    if customer is None or line is None or line.customer_id != customer.id:
        abort(404)
    return line


def _plan_choices(line: Line) -> list[tuple[int, str]]:
    """Published plans of the line's host; the current plan first (keeps it / cancels a change)."""
    session = db_session()
    current = session.get(Plan, line.plan_id)
    assert current is not None and current.id is not None
    locale = str(get_locale())
    choices = [(current.id, _("%(plan)s (current plan)", plan=current.name(locale)))]
    published = session.exec(
        select(Plan)
        .where(Plan.status == "published", Plan.host_id == current.host_id)
        .order_by(col(Plan.code))
    )
    for plan in published:
        if plan.id != current.id:
            assert plan.id is not None
            price = format_money_for_view(plan.price_minor, plan.currency)
            choices.append((plan.id, f"{plan.name(locale)} · {price}"))
    return choices


def _plan_form(line: Line, formdata: Any = None) -> PlanChangeForm:
    form = PlanChangeForm(formdata=formdata)
    form.plan_id.choices = _plan_choices(line)
    if formdata is None:
        form.plan_id.data = line.next_plan_id or line.plan_id
    return form


def _render_line(line: Line, *, plan_form: PlanChangeForm | None = None, status: int = 200) -> Any:
    card = line_card(line, utcnow())
    bought: list[tuple[PeriodAddOn, AddOn | None]] = []
    if card.period is not None and card.period.id is not None:
        session = db_session()
        bought = [
            (row, session.get(AddOn, row.addon_id))
            for row in period_addons(session, period_id=card.period.id)
        ]
    return render_template(
        "store/line.html",
        card=card,
        bought=bought,
        plan_form=plan_form or _plan_form(line),
        auto_renew_form=AutoRenewForm(formdata=None),
        renew_form=RenewNowForm(
            formdata=None,
            period_end=line.period_end.isoformat() if line.period_end else "",
        ),
        money=money_view(own_customer()),
    ), status


# -- lines --------------------------------------------------------------------------------


@bp.route("/account/lines/<int:line_id>")
@subscriber_required
def line_detail(line_id: int) -> Any:
    return _render_line(_own_line(line_id))


@bp.route("/account/lines/<int:line_id>/plan", methods=["POST"])
@subscriber_required
def line_plan(line_id: int) -> Any:
    line = _own_line(line_id)
    form = _plan_form(line, formdata=request.form)
    if not form.validate_on_submit():
        return _render_line(line, plan_form=form, status=422)
    assert line.id is not None
    try:
        changed = lifecycle.change_plan(
            db_session(),
            line_id=line.id,
            plan_id=form.plan_id.data,
            reason="self-care",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        attach_error(form, exc)
        return _render_line(line, plan_form=form, status=exc.http_status)
    if changed.next_plan_id is None:
        flash(_("You keep your current plan."), "success")
    else:
        flash(_("Your plan changes at the next renewal."), "success")
    return redirect(url_for("store.line_detail", line_id=line_id), code=303)


@bp.route("/account/lines/<int:line_id>/auto-renew", methods=["POST"])
@subscriber_required
def line_auto_renew(line_id: int) -> Any:
    line = _own_line(line_id)
    form = AutoRenewForm()
    if not form.validate_on_submit() or form.on.data not in ("1", "0"):
        flash(_("The form expired or was sent from elsewhere. Reload the page and try again."))
        return _render_line(line, status=422)
    assert line.id is not None
    try:
        set_auto_renew(
            db_session(),
            line_id=line.id,
            on=form.on.data == "1",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        attach_error(form, exc)
        flash(" ".join(form.form_errors), "error")
        return _render_line(line, status=exc.http_status)
    if form.on.data == "1":
        flash(_("Auto-renew is on."), "success")
    else:
        flash(_("Auto-renew is off. Your plan will not renew by itself."), "success")
    return redirect(url_for("store.line_detail", line_id=line_id), code=303)


@bp.route("/account/lines/<int:line_id>/renew", methods=["POST"])
@subscriber_required
def line_renew(line_id: int) -> Any:
    """Pay the next period now from the balance (with auto-renew off, or to lift an
    unpaid renewal's suspension); the period end the page showed guards a double submit."""
    line = _own_line(line_id)
    form = RenewNowForm()
    expected: datetime | None = None
    if form.validate_on_submit():
        try:
            expected = datetime.fromisoformat(form.period_end.data)
        except ValueError:
            expected = None
    if expected is None or expected.tzinfo is None:
        flash(_("The form expired or was sent from elsewhere. Reload the page and try again."))
        return _render_line(line, status=422)
    assert line.id is not None
    try:
        renew_now(
            db_session(),
            line_id=line.id,
            actor=current_actor(),
            now=utcnow(),
            expected_period_end=expected,
        )
    except InsufficientBalance as exc:
        attach_error(form, exc)
        flash(_("Your balance does not cover the renewal. Top up first."), "error")
        return _render_line(line, status=exc.http_status)
    except DomainError as exc:
        attach_error(form, exc)
        flash(" ".join(form.form_errors), "error")
        return _render_line(line, status=exc.http_status)
    flash(_("Your plan is renewed for another period."), "success")
    return redirect(url_for("store.line_detail", line_id=line_id), code=303)


# -- add-ons ------------------------------------------------------------------------------


def _addon_forms(addons: list[AddOn]) -> dict[int, BuyAddOnForm]:
    forms = {}
    for addon in addons:
        assert addon.id is not None
        form = BuyAddOnForm(formdata=None)
        form.addon_id.data = addon.id
        form.token.data = secrets.token_urlsafe(TOKEN_BYTES)
        forms[addon.id] = form
    return forms


@bp.route("/account/lines/<int:line_id>/addons", methods=["GET", "POST"])
@subscriber_required
def line_addons(line_id: int) -> Any:
    line = _own_line(line_id)
    session = db_session()
    addons = addons_for_sale(session)
    forms = _addon_forms(addons)
    errors: list[str] = []
    offer_topup = False
    status = 200
    if request.method == "POST":
        posted = BuyAddOnForm()
        if not posted.validate_on_submit() or posted.addon_id.data is None:
            errors.append(
                _("The form expired or was sent from elsewhere. Reload the page and try again.")
            )
            status = 422
        else:
            assert line.id is not None
            try:
                bought = buy_addon(
                    session,
                    line_id=line.id,
                    addon_id=posted.addon_id.data,
                    key=posted.token.data or "",
                    actor=current_actor(),
                    now=utcnow(),
                )
            except DomainError as exc:
                attach_error(posted, exc)
                errors.extend(posted.form_errors)
                errors.extend(e for f in (posted.addon_id, posted.token) for e in f.errors)
                offer_topup = isinstance(exc, InsufficientBalance)
                status = exc.http_status
            else:
                flash(
                    _(
                        "%(data)s added to line %(msisdn)s for %(price)s.",
                        data=_data_text(bought.data_kb),
                        msisdn=line.msisdn,
                        price=format_money_for_view(bought.price_minor),
                    ),
                    "success",
                )
                return redirect(url_for("store.line_detail", line_id=line_id), code=303)
    assert line.id is not None
    period = period_at(session, line_id=line.id, at=utcnow())
    return render_template(
        "store/addons.html",
        line=line,
        period=period,
        addons=addons,
        forms=forms,
        errors=errors,
        offer_topup=offer_topup,
        money=money_view(own_customer()),
        data_text=_data_text,
    ), status


# -- forgotten password -------------------------------------------------------------------


def _reset_url(token: str) -> str:
    return url_for("store.password_reset", token=token, _external=True)


@bp.route("/password/forgot", methods=["GET", "POST"])
def password_forgot() -> Any:
    form = ForgotPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            resets.request_password_reset(
                db_session(),
                email=form.email.data or "",
                ip=client_ip(),
                reset_url=_reset_url,
                now=utcnow(),
            )
        except DomainError as exc:
            attach_error(form, exc)
            status = exc.http_status
        else:
            return render_template("store/password_reset_sent.html")
    elif request.method == "POST":
        status = 422
    return render_template("store/password_reset_request.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def password_reset(token: str) -> Any:
    session = db_session()
    if resets.find_reset_token(session, token=token, now=utcnow()) is None:
        return render_template("store/password_reset_invalid.html"), 404, NO_STORE
    form = ResetPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            resets.reset_password(
                session, token=token, password=form.password.data or "", now=utcnow()
            )
        except DomainError as exc:
            attach_error(form, exc)
            status = exc.http_status
        else:
            if current_user.is_authenticated:
                sign_out()
            flash(_("Your password was changed. Sign in with the new one."), "success")
            return redirect(url_for("store.login"), code=303)
    elif request.method == "POST":
        status = 422
    return render_template("store/password_reset.html", form=form, token=token), status, NO_STORE
