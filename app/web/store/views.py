"""Storefront and self-care for subscribers (zh_Hans first, en too)."""

from __future__ import annotations

from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from app.auth.models import SubscriberAccount
from app.auth.services import register_subscriber
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.web import LANG_COOKIE, LOCALES
from app.web.auth import (
    SignedIn,
    login_page,
    safe_next,
    sign_in,
    sign_out,
    subscriber_required,
)
from app.web.context import db_session
from app.web.formatting import allowance_data_text, number_text
from app.web.forms import RegisterForm, attach_error
from app.web.store import bp
from app.web.store.money import money_view, own_customer
from plans.addons import list_addons
from plans.models import Plan
from plans.pricing import DAYS_PER_MONTH, monthly_fee_minor
from plans.services import published_plans


def plan_card(plan: Plan) -> dict[str, Any]:
    """What a plan's card in the store says, in the page's language.

    The allowances in people's units (GB, minutes, SMS), the validity, and
    for a plan that is not sold by the month what it comes to per 30 days.
    """
    return {
        "plan": plan,
        "data": _("%(amount)s data", amount=allowance_data_text(plan.data_mb))
        if plan.data_mb
        else _("No data included"),
        "voice": ngettext(
            "%(n)s minute of calls",
            "%(n)s minutes of calls",
            plan.voice_min,
            n=number_text(plan.voice_min),
        )
        if plan.voice_min
        else _("No minutes included"),
        "sms": ngettext("%(n)s SMS", "%(n)s SMS", plan.sms, n=number_text(plan.sms))
        if plan.sms
        else _("No SMS included"),
        "validity": ngettext("Valid for %(num)s day", "Valid for %(num)s days", plan.validity_days),
        "per_month_minor": None
        if plan.validity_days == DAYS_PER_MONTH
        else monthly_fee_minor(plan),
    }


@bp.route("/")
def index() -> Any:
    session = db_session()
    plans = sorted(published_plans(session), key=lambda plan: (plan.price_minor, plan.code))
    addons = [
        {"addon": addon, "data": allowance_data_text(addon.data_mb)}
        for addon in sorted(
            list_addons(session, status="published"), key=lambda a: (a.price_minor, a.code)
        )
    ]
    return render_template(
        "store/index.html", cards=[plan_card(plan) for plan in plans], addons=addons
    )


@bp.route("/language/<code>")
def language(code: str) -> Any:
    target = safe_next(request.args.get("next"), url_for("store.index"))
    response = make_response(redirect(target))
    if code in LOCALES:
        response.set_cookie(
            LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True
        )
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    return login_page(kind="subscriber", template="store/login.html", home_endpoint="store.account")


def register_from_form(form: RegisterForm) -> SubscriberAccount:
    """A new store account from a validated registration form, in the page's language.

    :raises DomainError: refused (the e-mail is taken, the password too weak).
    """
    return register_subscriber(
        db_session(),
        email=form.email.data or "",
        password=form.password.data or "",
        display_name=form.display_name.data or "",
        locale=request.cookies.get(LANG_COOKIE, "zh_Hans"),
        now=utcnow(),
    )


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    form = RegisterForm()
    status = 200
    if form.validate_on_submit():
        try:
            account = register_from_form(form)
        except DomainError as exc:
            attach_error(form, exc)
            status = exc.http_status
        else:
            sign_in(SignedIn.from_subscriber(account))
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(url_for("store.account"))
    elif request.method == "POST":
        status = 422
    return render_template("store/register.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    sign_out()
    return redirect(url_for("store.index"))


@bp.route("/account")
@subscriber_required
def account() -> Any:
    from app.web.store.selfcare import line_cards

    customer = own_customer()
    return render_template(
        "store/account.html", money=money_view(customer), lines=line_cards(customer)
    )
