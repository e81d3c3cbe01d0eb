"""Buying a plan in the store (DESIGN §10): plan → number → account → real name →
SIM kind → order → payment → activation.

The cart (the plan, the held number and the token that holds it) lives in
the browser's session until the order is placed; signing in or creating an
account inside the purchase keeps it (a normal sign-in starts a fresh
session). Orders are paid from the prepaid balance (app/onboarding): a
voucher or a card payment tops the balance up, and the order completes
when the balance covers its total — at once for a voucher or an existing
balance, on Stripe's signed webhook for a card, and by staff for cash paid
at a store. Each payment button calls one workflow of app/onboarding/purchase.py;
the card one runs its own units of work around the call to Stripe
(`own_units_of_work`). A buyer sees only their own orders: anyone else's is a 404.

GET pages never write: an order whose hold has run out is shown as expired
and is marked so by the next action on it or by the scheduler.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlmodel import col, select
from wtforms import RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from app.auth.models import SubscriberAccount
from app.charging.periods import period_for_display
from app.core import limits
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.core.pii import PiiCipher
from app.ledger.balances import customer_balance
from app.onboarding import orders, purchase
from app.payments.models import Payment
from app.payments.services import MoneyPolicy
from app.payments.stripe_gateway import StripeGateway
from app.payments.vouchers import VoucherPolicy
from app.subscribers import kyc
from app.subscribers.models import ID_TYPE_LABELS, ORDER_STATUS_LABELS, Customer, Line
from app.subscribers.models import PurchaseOrder as Order
from app.subscribers.services import ensure_customer_for_account, find_customer_for_account
from app.web import flash_refusal, format_money_for_view, localized
from app.web.auth import SignedIn, authenticate_form, sign_in, subscriber_required
from app.web.context import (
    client_ip,
    current_actor,
    database,
    db_session,
    own_units_of_work,
    settings,
)
from app.web.formatting import qr_svg
from app.web.forms import LoginForm, RegisterForm, StoreVoucherForm, attach_error, limit
from app.web.store import bp
from app.web.store.market_exit import sales_open
from app.web.store.money import stripe_locale
from app.web.store.views import plan_card, register_from_form
from numbering.models import Sim
from numbering.search import SEARCH_MODES, find_number, search_numbers
from numbering.tiers import list_tiers
from plans.models import Plan
from plans.services import published_plans

CART = "cart"
PER_PAGE = 20
SIM_KIND_CHOICES = [
    SelectChoice(value="esim", label=_l("eSIM (download to the phone)")),
    SelectChoice(value="physical", label=_l("SIM card")),
]


class HoldForm(FlaskForm):
    msisdn = StringField(validators=[DataRequired(), Length(max=16)])


class IdentityForm(FlaskForm):
    name = StringField(
        _l("Full name as on the ID"), validators=[DataRequired(), limit(limits.PERSON_NAME)]
    )
    id_type = SelectField(
        _l("ID type"),
        choices=[SelectChoice(value=code, label=_l(text)) for code, text in ID_TYPE_LABELS.items()],
        validators=[DataRequired()],
    )
    id_number = StringField(_l("ID number"), validators=[DataRequired(), limit(40)])


class PlaceOrderForm(FlaskForm):
    sim_kind = RadioField(
        _l("SIM"), choices=SIM_KIND_CHOICES, default="esim", validators=[DataRequired()]
    )


class OrderActionForm(FlaskForm):
    """A button that posts to an order (pay from balance, card, store, cancel)."""


# -- helpers --------------------------------------------------------------------------------


def _plan_by_code(code: str) -> Plan:
    for plan in published_plans(db_session()):
        if plan.code == code:
            return plan
    abort(404)


def _cart() -> dict[str, Any] | None:
    cart = session.get(CART)
    if not isinstance(cart, dict) or not {"plan_id", "token"} <= set(cart):
        return None
    return cart


def _cart_token() -> str:
    cart = _cart()
    if cart is not None:
        return str(cart["token"])
    return orders.new_cart_token()


def _held_until(cart: dict[str, Any] | None, now: datetime) -> datetime | None:
    """When the cart's number hold ends, if it still holds one."""
    if not cart or not cart.get("msisdn"):
        return None
    return orders.cart_hold_until(
        db_session(), msisdn=str(cart["msisdn"]), token=str(cart["token"]), now=now
    )


def _is_subscriber() -> bool:
    return bool(current_user.is_authenticated and current_user.kind == "subscriber")


def _sign_in_keeping_cart(person: SignedIn) -> None:
    cart = _cart()
    sign_in(person)
    if cart is not None:
        session[CART] = cart


def _own_order(ref: str) -> Order:
    if len(ref) > orders.MAX_REF:
        abort(404)
    try:
        return orders.get_order_by_ref(db_session(), ref, account_id=current_user.id)
    except DomainError:
        abort(404)


# -- choosing a plan and a number ----------------------------------------------------------


@bp.route("/buy/<code>", methods=["GET"])
@sales_open
def buy_number(code: str) -> Any:
    plan = _plan_by_code(code[:40])
    now = utcnow()
    pattern = (request.args.get("q") or "").strip()[:11]
    asked = request.args.get("mode", "")
    mode = asked if asked in SEARCH_MODES else "ends_with"
    page = request.args.get("page", default=1, type=int) or 1
    # Only the tiers a buyer pays extra for are offered as a filter.
    tiers = [t for t in list_tiers(db_session()) if t.enabled and t.surcharge_minor > 0]
    tier = request.args.get("tier") or ""
    tier = tier if any(t.code == tier for t in tiers) else ""
    error = None
    results = None
    try:
        results = search_numbers(
            db_session(),
            pattern=pattern,
            mode=mode,
            tier=tier or None,
            page=page,
            per_page=PER_PAGE,
            now=now,
        )
    except DomainError as exc:
        error = localized(exc)
    cart = _cart()
    held = None
    if cart is not None and cart.get("plan_id") == plan.id:
        until = _held_until(cart, now)
        if until is not None:
            held = {"msisdn": cart["msisdn"], "until": until}
    return render_template(
        "store/buy_number.html",
        plan=plan,
        card=plan_card(plan),
        results=results,
        error=error,
        pattern=pattern,
        mode=mode,
        tier=tier,
        tiers=tiers,
        held=held,
        form=HoldForm(),
    )


@bp.route("/buy/<code>/hold", methods=["POST"])
@sales_open
def buy_hold(code: str) -> Any:
    plan = _plan_by_code(code[:40])
    form = HoldForm()
    if not form.validate_on_submit():
        flash(_("Choose a number from the list."), "error")
        return redirect(url_for("store.buy_number", code=plan.code))
    token = _cart_token()
    cart = _cart()
    previous = str(cart["msisdn"]) if cart and cart.get("msisdn") else None
    assert plan.id is not None
    try:
        number = orders.hold_number(
            db_session(),
            plan_id=plan.id,
            msisdn=form.msisdn.data or "",
            holder=orders.cart_holder(token),
            previous=previous,
            now=utcnow(),
            actor=current_actor(),
            ip=client_ip(),
        )
    except DomainError as exc:
        flash_refusal(exc)
        return redirect(url_for("store.buy_number", code=plan.code))
    session[CART] = {"plan_id": plan.id, "msisdn": number.msisdn, "token": token}
    return redirect(url_for("store.buy_checkout"), code=303)


# -- account, real name, SIM ---------------------------------------------------------------


def _cart_view(now: datetime) -> dict[str, Any] | None:
    cart = _cart()
    if cart is None or not cart.get("msisdn"):
        return None
    plan = db_session().get(Plan, int(cart["plan_id"]))
    number = find_number(db_session(), str(cart["msisdn"]))
    if plan is None or number is None:
        return None
    return {
        "plan": plan,
        "msisdn": number.msisdn,
        "surcharge_minor": number.surcharge_minor,
        "total_minor": plan.price_minor + number.surcharge_minor,
        "until": _held_until(cart, now),
    }


def _checkout_page(status: int = 200, **forms: Any) -> Any:
    now = utcnow()
    view = _cart_view(now)
    if view is None:
        flash(_("Choose a plan and a number first."), "error")
        return redirect(url_for("store.index"))
    customer = (
        find_customer_for_account(db_session(), account_id=current_user.id)
        if _is_subscriber()
        else None
    )
    stock = {
        kind: orders.sim_in_stock(db_session(), host_id=view["plan"].host_id, kind=kind)
        for kind in ("esim", "physical")
    }
    return render_template(
        "store/buy_checkout.html",
        cart=view,
        signed_in=_is_subscriber(),
        customer=customer,
        has_identity=bool(customer and customer.id_number_enc),
        register=forms.get("register") or RegisterForm(formdata=None, prefix="reg"),
        login=forms.get("login") or LoginForm(formdata=None, prefix="login"),
        identity=forms.get("identity") or IdentityForm(formdata=None),
        place=forms.get("place") or PlaceOrderForm(formdata=None),
        stock=stock,
        id_type_label=ID_TYPE_LABELS,
    ), status


@bp.route("/buy/checkout", methods=["GET"])
@sales_open
def buy_checkout() -> Any:
    return _checkout_page()


@bp.route("/buy/register", methods=["POST"])
@sales_open
def buy_register() -> Any:
    form = RegisterForm(prefix="reg")
    if not form.validate_on_submit():
        return _checkout_page(422, register=form)
    try:
        account = register_from_form(form)
    except DomainError as exc:
        attach_error(form, exc)
        return _checkout_page(exc.http_status, register=form)
    _sign_in_keeping_cart(SignedIn.from_subscriber(account))
    flash(_("Welcome! Your account is ready."), "success")
    return redirect(url_for("store.buy_checkout"), code=303)


@bp.route("/buy/login", methods=["POST"])
@sales_open
def buy_login() -> Any:
    form = LoginForm(prefix="login")
    if not form.validate_on_submit():
        return _checkout_page(422, login=form)
    person, status = authenticate_form(form, kind="subscriber")
    if not isinstance(person, SubscriberAccount):
        return _checkout_page(status, login=form)
    _sign_in_keeping_cart(SignedIn.from_subscriber(person))
    return redirect(url_for("store.buy_checkout"), code=303)


@bp.route("/buy/identity", methods=["POST"])
@sales_open
@subscriber_required
def buy_identity() -> Any:
    form = IdentityForm()
    if not form.validate_on_submit():
        return _checkout_page(422, identity=form)
    now = utcnow()
    try:
        customer = ensure_customer_for_account(
            db_session(), account_id=current_user.id, email=current_user.email, now=now
        )
        kyc.register_identity(
            db_session(),
            customer=customer,
            name=form.name.data or "",
            id_type=form.id_type.data or "",
            id_number=form.id_number.data or "",
            cipher=PiiCipher(settings().pii_key),
            actor=current_actor(),
            now=now,
        )
    except DomainError as exc:
        attach_error(form, exc)
        return _checkout_page(exc.http_status, identity=form)
    return redirect(url_for("store.buy_checkout"), code=303)


@bp.route("/buy/place", methods=["POST"])
@sales_open
@subscriber_required
def buy_place() -> Any:
    form = PlaceOrderForm()
    cart = _cart()
    if cart is None or not cart.get("msisdn"):
        flash(_("Choose a plan and a number first."), "error")
        return redirect(url_for("store.index"))
    if not form.validate_on_submit():
        return _checkout_page(422, place=form)
    try:
        order = orders.place_order(
            db_session(),
            account_id=current_user.id,
            email=current_user.email,
            plan_id=int(cart["plan_id"]),
            msisdn=str(cart["msisdn"]),
            cart_token=str(cart["token"]),
            sim_kind=form.sim_kind.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        attach_error(form, exc)
        return _checkout_page(exc.http_status, place=form)
    session.pop(CART, None)
    return redirect(url_for("store.order_page", ref=order.ref), code=303)


# -- orders --------------------------------------------------------------------------------


@bp.route("/orders")
@subscriber_required
def my_orders() -> Any:
    rows, _total = orders.list_orders(db_session(), account_id=current_user.id, limit=100)
    plans = (
        {
            p.id: p
            for p in db_session().exec(
                select(Plan).where(col(Plan.id).in_({o.plan_id for o in rows}))
            )
        }
        if rows
        else {}
    )
    now = utcnow()
    return render_template(
        "store/orders.html",
        rows=[(o, plans.get(o.plan_id), orders.shown_status(o, now=now)) for o in rows],
        status_labels=ORDER_STATUS_LABELS,
    )


def _order_context(order: Order) -> dict[str, Any]:
    now = utcnow()
    sess = db_session()
    plan = sess.get(Plan, order.plan_id)
    customer = sess.get(Customer, order.customer_id)
    line = sess.get(Line, order.line_id) if order.line_id else None
    sim = sess.get(Sim, line.sim_id) if line is not None and line.sim_id else None
    period = (
        period_for_display(sess, line_id=line.id, at=now)
        if line is not None and line.id is not None and line.status == "active"
        else None
    )
    balance = customer_balance(sess, customer_id=order.customer_id)
    payment = sess.get(Payment, order.payment_id) if order.payment_id else None
    status = orders.shown_status(order, now=now)
    card_pending = payment is not None and payment.status in ("created", "pending")
    return {
        "order": order,
        "status": status,
        "status_label": ORDER_STATUS_LABELS.get(status, status),
        "plan": plan,
        "customer": customer,
        "line": line,
        "sim": sim,
        "period": period,
        "balance_minor": balance,
        "shortfall_minor": max(order.total_minor - balance, 0),
        "payment": payment,
        "card_enabled": StripeGateway.from_settings(settings()) is not None,
        "qr": qr_svg(sim.lpa) if sim is not None and sim.kind == "esim" and sim.lpa else None,
        # Refresh while waiting for the host, or for Stripe's word on a card payment.
        "refresh": (status == "paid" and (line is None or line.status == "pending"))
        or (status == "awaiting_payment" and card_pending),
    }


@bp.route("/orders/<ref>")
@subscriber_required
def order_page(ref: str) -> Any:
    return _render_order(_own_order(ref))


@bp.route("/orders/<ref>/status.json")
@subscriber_required
def order_status(ref: str) -> Any:
    order = _own_order(ref)
    context = _order_context(order)
    line = context["line"]
    return {
        "ref": order.ref,
        "status": context["status"],
        "line_status": line.status if line is not None else None,
        "msisdn": order.msisdn,
        "hold_until": order.hold_until.isoformat(),
        "total_minor": order.total_minor,
        "shortfall_minor": context["shortfall_minor"],
        "currency": order.currency,
    }


def _render_order(order: Order, voucher: StoreVoucherForm | None = None, status: int = 200) -> Any:
    if voucher is not None:
        voucher.pin.data = ""
    return render_template(
        "store/order.html",
        voucher=voucher if voucher is not None else StoreVoucherForm(formdata=None),
        action=OrderActionForm(),
        **_order_context(order),
    ), status


def _posted_order(ref: str) -> Order:
    """The buyer's own order an action button posted to (400 without a valid CSRF token)."""
    order = _own_order(ref)
    if not OrderActionForm().validate_on_submit():
        abort(400)
    return order


def _back(order: Order) -> Any:
    return redirect(url_for("store.order_page", ref=order.ref), code=303)


def _refused(order: Order, exc: DomainError) -> Any:
    flash_refusal(exc)
    return _back(order)


def _paid(order: Order) -> Any:
    flash(
        _("Thank you! Your order is paid. We are asking the network to activate your line."),
        "success",
    )
    return _back(order)


@bp.route("/orders/<ref>/pay-balance", methods=["POST"])
@subscriber_required
def order_pay_balance(ref: str) -> Any:
    order = _posted_order(ref)
    assert order.id is not None
    try:
        purchase.pay_from_balance(
            db_session(), order_id=order.id, actor=current_actor(), now=utcnow()
        )
    except DomainError as exc:
        return _refused(order, exc)
    return _paid(order)


@bp.route("/orders/<ref>/voucher", methods=["POST"])
@subscriber_required
def order_voucher(ref: str) -> Any:
    order = _own_order(ref)
    form = StoreVoucherForm()
    if not form.validate_on_submit():
        return _render_order(order, form, 422)
    assert order.id is not None
    try:
        outcome = purchase.pay_by_voucher(
            db_session(),
            order_id=order.id,
            serial=form.serial.data or "",
            pin=form.pin.data or "",
            ip=client_ip(),
            actor=current_actor(),
            now=utcnow(),
            policy=MoneyPolicy.from_settings(settings()),
            voucher_policy=VoucherPolicy(),
        )
    except DomainError as exc:
        if isinstance(exc, purchase.COMPLETION_REFUSALS):
            return _refused(order, exc)
        # A wrong PIN keeps its failed attempt; any other refusal is undone.
        attach_error(form, exc)
        return _render_order(order, form, exc.http_status)
    if not outcome.paid:
        # The voucher's value stays on the balance; the order waits for the rest.
        flash(
            _(
                "Voucher redeemed. Your balance is now %(balance)s;"
                " %(shortfall)s more is needed for this order.",
                balance=format_money_for_view(outcome.balance_minor),
                shortfall=format_money_for_view(outcome.shortfall_minor),
            ),
            "error",
        )
        return _back(order)
    return _paid(order)


@bp.route("/orders/<ref>/card", methods=["POST"])
@own_units_of_work
@subscriber_required
def order_card(ref: str) -> Any:
    order = _posted_order(ref)
    assert order.id is not None
    config = settings()
    try:
        checkout = purchase.pay_by_card(
            database(),
            StripeGateway.from_settings(config),
            order_id=order.id,
            actor=current_actor(),
            now=utcnow(),
            policy=MoneyPolicy.from_settings(config),
            return_url=url_for("store.order_page", ref=order.ref, _external=True),
            description=_("Order %(ref)s", ref=order.ref),
            locale=stripe_locale(),
        )
    except DomainError as exc:
        return _refused(order, exc)
    if checkout.paid:
        return _paid(order)
    return redirect(checkout.checkout_url or url_for("store.order_page", ref=order.ref), code=303)


@bp.route("/orders/<ref>/pay-at-store", methods=["POST"])
@subscriber_required
def order_pay_at_store(ref: str) -> Any:
    order = _posted_order(ref)
    assert order.id is not None
    try:
        order = orders.choose_pay_at_store(
            db_session(), order_id=order.id, actor=current_actor(), now=utcnow()
        )
    except DomainError as exc:
        return _refused(order, exc)
    flash(
        _(
            "Please pay %(amount)s at one of our stores and quote order %(ref)s."
            " The number is held for you until then.",
            amount=format_money_for_view(order.total_minor, order.currency),
            ref=order.ref,
        ),
        "success",
    )
    return _back(order)


@bp.route("/orders/<ref>/cancel", methods=["POST"])
@subscriber_required
def order_cancel(ref: str) -> Any:
    order = _posted_order(ref)
    assert order.id is not None
    try:
        orders.cancel_order(db_session(), order_id=order.id, actor=current_actor(), now=utcnow())
    except DomainError as exc:
        return _refused(order, exc)
    flash(_("Order %(ref)s was cancelled and the number released.", ref=order.ref), "success")
    return _back(order)
