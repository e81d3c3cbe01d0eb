"""Self-care money pages (DESIGN §5, §10): balance and top-up, the way back from
Stripe Checkout, and receipts.

A store login gets its customer — who holds the money — on its first top-up
(`ensure_customer_for_account`); until then its balance is zero and its cap
the reference one. A subscriber sees only their own payments: anyone else's
is a 404, the same as one that does not exist.

Card top-ups: `start_card_top_up` commits our payment row and then calls
Stripe outside any transaction; a posted card form's request session only
reads (`own_units_of_work_when`), so it holds no lock meanwhile. The money is
booked by Stripe's signed webhook, never by the return page, which only
reports what has arrived.

Vouchers: a wrong PIN's failed attempt is committed so it counts towards the
lockout (`VoucherInvalid.keeps_transaction`, honoured by `attach_error`);
every other refusal is undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlmodel import Session

from app.core.clock import utcnow
from app.core.errors import N_, DomainError
from app.ledger.balances import customer_balance, customer_history
from app.ledger.cap import prepaid_cap_minor
from app.payments import checkout
from app.payments.errors import StripeNotConfigured
from app.payments.models import Payment
from app.payments.services import MoneyPolicy, get_payment_of, list_payments
from app.payments.stripe_gateway import StripeGateway
from app.payments.vouchers import VoucherPolicy, redeem_voucher
from app.subscribers.models import Customer
from app.subscribers.services import ensure_customer_for_account, find_customer_for_account
from app.web import MAX_ROW_ID, format_money_for_view, label
from app.web.auth import subscriber_required
from app.web.context import (
    client_ip,
    current_actor,
    database,
    db_session,
    own_units_of_work_when,
    settings,
)
from app.web.forms import CardTopUpForm, StoreVoucherForm, attach_error, money_field
from app.web.store import bp

# Amount columns are 32-bit integers; larger amounts are refused on the form.
MAX_AMOUNT_MINOR = 1_000_000_000
# Receipts shown on one page; vouchers are looked for among the newest ledger rows.
RECEIPTS_LIMIT = 200
HISTORY_LIMIT = 1000
VOUCHER_KIND = "credit.voucher_float"


@dataclass(frozen=True)
class MoneyView:
    balance_minor: int
    cap_minor: int
    headroom_minor: int


@dataclass(frozen=True)
class ReceiptRow:
    at: datetime
    method: str
    amount_minor: int
    reference: str
    payment_id: int | None


def _policy() -> MoneyPolicy:
    return MoneyPolicy.from_settings(settings())


def own_customer() -> Customer | None:
    """The signed-in subscriber's customer, if they have one yet."""
    return find_customer_for_account(db_session(), account_id=current_user.id)


def money_view(customer: Customer | None) -> MoneyView:
    policy = _policy()
    if customer is None or customer.id is None:
        cap = policy.cap_months * policy.reference_monthly_minor
        return MoneyView(balance_minor=0, cap_minor=cap, headroom_minor=cap)
    session = db_session()
    balance = customer_balance(session, customer_id=customer.id)
    cap = prepaid_cap_minor(
        session,
        customer_id=customer.id,
        settings_months=policy.cap_months,
        reference_monthly_minor=policy.reference_monthly_minor,
    )
    return MoneyView(balance_minor=balance, cap_minor=cap, headroom_minor=max(cap - balance, 0))


def _own_customer_id() -> int:
    """The signed-in subscriber's customer id, creating the customer on first need."""
    customer = ensure_customer_for_account(
        db_session(), account_id=current_user.id, email=current_user.email, now=utcnow()
    )
    assert customer.id is not None
    return customer.id


def stripe_locale() -> str:
    """The language of Stripe Checkout's page for this request (`zh` or `en`)."""
    return "zh" if str(get_locale() or "").startswith("zh") else "en"


def redeem_from_form(session: Session, form: StoreVoucherForm, *, customer_id: int) -> None:
    """Redeem the voucher the form names into the customer's balance.

    :raises DomainError: refused; a wrong PIN's attempt is kept (see the module's doc).
    """
    redeem_voucher(
        session,
        customer_id=customer_id,
        serial=form.serial.data or "",
        pin=form.pin.data or "",
        ip=client_ip(),
        actor=current_actor(),
        now=utcnow(),
        policy=VoucherPolicy(),
        **_policy().cap_kwargs(),
    )


def _pay_by_card(form: CardTopUpForm, gateway: StripeGateway | None) -> Any:
    """A redirect to Stripe Checkout, or the status to render the form with."""
    if not form.validate_on_submit():
        return 422
    if gateway is None:
        exc = StripeNotConfigured(N_("Card payments (Stripe) are not configured."))
        attach_error(form, exc)
        return exc.http_status
    amount = money_field(form.amount)
    if amount is None:
        return 422
    try:
        payment = checkout.start_card_top_up(
            database(),
            gateway,
            account_id=current_user.id,
            email=current_user.email,
            amount_minor=amount,
            actor=current_actor(),
            now=utcnow(),
            policy=_policy(),
            urls=lambda pid: (
                url_for("store.topup_return", payment=pid, _external=True),
                url_for("store.topup", _external=True),
            ),
            description=_("Top-up"),
            locale=stripe_locale(),
        )
    except DomainError as exc:
        attach_error(form, exc)
        return exc.http_status
    target = payment.checkout_url or url_for("store.topup_return", payment=payment.id)
    return redirect(target, code=303)


def _redeem(form: StoreVoucherForm) -> Any:
    """A redirect after a redeemed voucher, or the status to render the form with."""
    if not form.validate_on_submit():
        return 422
    customer_id = _own_customer_id()
    session = db_session()
    try:
        redeem_from_form(session, form, customer_id=customer_id)
    except DomainError as exc:
        # A wrong PIN keeps its failed attempt (committed, it counts towards
        # the lockout); any other refusal is undone.
        attach_error(form, exc)
        return exc.http_status
    balance = customer_balance(session, customer_id=customer_id)
    flash(
        _(
            "Voucher redeemed. Your balance is now %(balance)s.",
            balance=format_money_for_view(balance),
        ),
        "success",
    )
    return redirect(url_for("store.topup"), code=303)


def _posts_card_form() -> bool:
    """Whether this request posts the card form (the voucher form has a serial or PIN)."""
    return request.method == "POST" and "serial" not in request.form and "pin" not in request.form


@bp.route("/account/topup", methods=["GET", "POST"])
@own_units_of_work_when(_posts_card_form)
@subscriber_required
def topup() -> Any:
    gateway = StripeGateway.from_settings(settings())
    card = CardTopUpForm(formdata=None)
    voucher = StoreVoucherForm(formdata=None)
    status = 200
    if request.method == "POST":
        # Two forms post here; the voucher form is the one with a serial or PIN.
        if not _posts_card_form():
            voucher = StoreVoucherForm()
            outcome = _redeem(voucher)
            voucher.pin.data = ""
        else:
            card = CardTopUpForm()
            outcome = _pay_by_card(card, gateway)
        if not isinstance(outcome, int):
            return outcome
        status = outcome
    return render_template(
        "store/topup.html",
        money=money_view(own_customer()),
        card=card,
        voucher=voucher,
        card_enabled=gateway is not None,
    ), status


def _own_payment(payment_id: int) -> Payment:
    """One of the signed-in subscriber's payments; any other is a 404."""
    customer = own_customer()
    if customer is None or customer.id is None:
        abort(404)
    return get_payment_of(db_session(), payment_id=payment_id, customer_id=customer.id)


@bp.route("/account/topup/return")
@subscriber_required
def topup_return() -> Any:
    payment_id = request.args.get("payment", type=int)
    if payment_id is None or not 1 <= payment_id <= MAX_ROW_ID:
        abort(404)
    payment = _own_payment(payment_id)
    return render_template(
        "store/topup_return.html",
        payment=payment,
        money=money_view(own_customer()),
        refunded_minor=_cap_refund_minor(payment),
    )


def _cap_refund_minor(payment: Payment) -> int:
    """The part of a succeeded payment that went back because of the cap."""
    if payment.status != "succeeded":
        return 0
    return max(payment.amount_minor - payment.credited_minor, 0)


def _voucher_rows(session: Session, customer_id: int) -> list[ReceiptRow]:
    """The customer's voucher credits among their newest ledger rows, newest first."""
    history, _total = customer_history(session, customer_id=customer_id, limit=HISTORY_LIMIT)
    return [
        ReceiptRow(
            at=row.at,
            method=_("voucher"),
            amount_minor=row.amount_minor,
            reference=row.external_ref or "",
            payment_id=None,
        )
        for row in history
        if row.kind == VOUCHER_KIND and row.amount_minor > 0
    ]


@bp.route("/account/receipts")
@subscriber_required
def receipts() -> Any:
    customer = own_customer()
    rows: list[ReceiptRow] = []
    if customer is not None and customer.id is not None:
        session = db_session()
        paid, _total = list_payments(
            session, customer_id=customer.id, status="succeeded", limit=RECEIPTS_LIMIT
        )
        rows.extend(
            ReceiptRow(
                at=p.completed_at or p.created_at,
                method=label("payment_method", p.method),
                amount_minor=p.amount_minor,
                reference=p.reference or p.stripe_payment_intent_id or "",
                payment_id=p.id,
            )
            for p in paid
        )
        rows.extend(_voucher_rows(session, customer.id))
    rows.sort(key=lambda r: r.at, reverse=True)
    return render_template("store/receipts.html", rows=rows[:RECEIPTS_LIMIT], customer=customer)


@bp.route("/account/receipts/<int:payment_id>")
@subscriber_required
def receipt(payment_id: int) -> Any:
    payment = _own_payment(payment_id)
    if payment.status != "succeeded":
        abort(404)
    customer = own_customer()
    return render_template(
        "store/receipt.html",
        payment=payment,
        customer=customer,
        refunded_minor=_cap_refund_minor(payment),
        hotline=settings().service_hotline,
        brand=settings().brand_name,
    )
