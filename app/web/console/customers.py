"""Console pages of customers (DESIGN §5, §10, §14): the search, the customer's page
with its ledger and lines, and the forms on it.

The money forms (adjustment, offline payment, staff refund, voucher) each
post to their own route under their own permission and redirect back when
the service accepts them. A refusal (the cap, the balance, a reused
reference, bad input) re-renders the page with the message beside the field
and nothing changed: `attach_error` undoes the request's unit of work. The
one refusal that keeps what was written is a wrong voucher PIN — its failed
attempt must be committed to count towards the lockout, which
`VoucherInvalid.keeps_transaction` tells `attach_error` and the request's
commit hook.

A manual adjustment carries a random token put in the form when the page is
shown; the ledger's idempotency key is `adjust:<token>`, so submitting the
same page twice posts once.

Real-name details are recorded with a reason; the audited ID reveal shows
the clear number once on a page of its own (never in the flash, the session
cookie), with `Cache-Control: no-store`. Everywhere else the ID number is
shown masked (`Customer.id_number_masked`). `customer_care` gives the
customer page what the line forms need: each line's current period, SIM and
the plans it may change to.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlmodel import col, select
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from app.charging.models import LinePeriod
from app.charging.periods import period_for_display
from app.core import limits
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.core.pii import PiiCipher
from app.ledger.balances import customer_balance, customer_history
from app.ledger.cap import prepaid_cap_minor
from app.payments import refunds as payment_refunds
from app.payments import vouchers
from app.payments.refunds import list_refunds
from app.payments.services import MoneyPolicy, adjust_balance, list_payments, record_offline_payment
from app.subscribers import kyc
from app.subscribers import services as subscribers
from app.subscribers.models import ID_TYPE_LABELS, ID_TYPES, Customer, Line
from app.web import flash_refusal, format_money_for_view
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import (
    NO_STORE,
    PER_PAGE,
    ReasonForm,
    back_to_customer_page,
    page_number,
    post_form,
    refused_form,
)
from app.web.context import client_ip, current_actor, db_session, settings
from app.web.formatting import data_text, minutes_text, number_text
from app.web.forms import (
    AdjustmentForm,
    CustomerSearchForm,
    LineActionForm,
    OfflinePaymentForm,
    StaffRefundForm,
    VoucherRedeemForm,
    limit,
    money_field,
)
from numbering.models import Sim
from plans.models import Plan
from plans.services import published_plans

# Amount columns are 32-bit integers; refuse larger amounts on the form instead
# of failing in the database.
MAX_AMOUNT_MINOR = 1_000_000_000


def _policy() -> MoneyPolicy:
    return MoneyPolicy.from_settings(settings())


@bp.route("/customers")
@staff_required("ledger.view")
def customers() -> Any:
    session = db_session()
    form = CustomerSearchForm(request.args)
    query = (form.q.data or "") if form.validate() else ""
    found = subscribers.search_customers(session, query=query, limit=PER_PAGE)
    rows = [
        (customer, customer_balance(session, customer_id=customer.id or 0)) for customer in found
    ]
    lines = subscribers.lines_of_customers(session, customer_ids=[c.id or 0 for c in found])
    return render_template("console/customers.html", form=form, rows=rows, query=query, lines=lines)


def _lines(customer_id: int) -> list[tuple[Line, Plan]]:
    rows = db_session().exec(
        select(Line, Plan)
        .join(Plan, col(Plan.id) == col(Line.plan_id))
        .where(Line.customer_id == customer_id)
        .order_by(col(Line.id))
    )
    return [(line, plan) for line, plan in rows]


def _render_customer(
    ref: str,
    *,
    status: int = 200,
    adjust: AdjustmentForm | None = None,
    payment: OfflinePaymentForm | None = None,
    refund: StaffRefundForm | None = None,
    voucher: VoucherRedeemForm | None = None,
) -> Any:
    session = db_session()
    customer = subscribers.get_customer_by_ref(session, ref)
    customer_id = customer.id or 0
    policy = _policy()
    page = page_number()
    history, total = customer_history(
        session, customer_id=customer_id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    balance = customer_balance(session, customer_id=customer_id)
    cap = prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=policy.cap_months,
        reference_monthly_minor=policy.reference_monthly_minor,
    )
    adjust = adjust or AdjustmentForm(prefix="adjust", formdata=None)
    refund = refund or StaffRefundForm(prefix="refund", formdata=None)
    for tokened in (adjust, refund):
        if not tokened.token.data:
            tokened.token.data = secrets.token_urlsafe(24)
    customer_payments, payment_total = list_payments(
        session, customer_id=customer_id, limit=PER_PAGE
    )
    customer_refunds, refund_total = list_refunds(session, customer_id=customer_id, limit=PER_PAGE)
    return render_template(
        "console/customer.html",
        customer=customer,
        balance=balance,
        cap=cap,
        headroom=max(cap - balance, 0),
        lines=_lines(customer_id),
        history=history,
        history_total=total,
        page=page,
        per_page=PER_PAGE,
        payments=customer_payments,
        payment_total=payment_total,
        refunds=customer_refunds,
        refund_total=refund_total,
        adjust_form=adjust,
        payment_form=payment or OfflinePaymentForm(prefix="payment", formdata=None),
        refund_form=refund or StaffRefundForm(prefix="refund", formdata=None),
        voucher_form=voucher or VoucherRedeemForm(prefix="voucher", formdata=None),
        line_form=LineActionForm(formdata=None),
        **customer_care(customer),
    ), status


@bp.route("/customers/<ref>")
@staff_required("ledger.view")
def customer(ref: str) -> Any:
    return _render_customer(ref)


def _customer_id(ref: str) -> tuple[int, str]:
    found = subscribers.get_customer_by_ref(db_session(), ref)
    assert found.id is not None
    return found.id, found.ref


def _back_to_customer(ref: str, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("console.customer", ref=ref))


@bp.route("/customers/<ref>/adjust", methods=["POST"])
@staff_required("payments.manage")
def customer_adjust(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = AdjustmentForm(prefix="adjust")

    def adjust() -> Any:
        amount = money_field(form.amount, allow_negative=True)
        if amount is None:
            return None
        adjust_balance(
            db_session(),
            customer_id=customer_id,
            amount_minor=amount,
            reason=form.reason.data or "",
            idempotency_key=f"adjust:{form.token.data}",
            actor=current_actor(),
            now=utcnow(),
            policy=_policy(),
        )
        return _back_to_customer(
            ref, _("Balance adjusted by %(amount)s.", amount=format_money_for_view(amount))
        )

    return post_form(
        form,
        act=adjust,
        refused=lambda: _render_customer(ref, status=422, adjust=form),
        fallback="amount",
        tokened=True,
    )


@bp.route("/customers/<ref>/payments", methods=["POST"])
@staff_required("payments.manage")
def customer_payment(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = OfflinePaymentForm(prefix="payment")

    def record() -> Any:
        amount = money_field(form.amount)
        if amount is None:
            return None
        payment = record_offline_payment(
            db_session(),
            customer_id=customer_id,
            amount_minor=amount,
            method=form.method.data or "",
            reference=form.reference.data or "",
            memo=form.memo.data or "",
            actor=current_actor(),
            now=utcnow(),
            policy=_policy(),
        )
        return _back_to_customer(
            ref,
            _(
                "Payment %(id)s of %(amount)s recorded.",
                id=payment.id,
                amount=format_money_for_view(payment.amount_minor, payment.currency),
            ),
        )

    return post_form(
        form,
        act=record,
        refused=lambda: _render_customer(ref, status=422, payment=form),
        fallback="amount",
    )


@bp.route("/customers/<ref>/refunds", methods=["POST"])
@staff_required("payments.manage")
def customer_refund(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = StaffRefundForm(prefix="refund")

    def request_refund() -> Any:
        amount = money_field(form.amount)
        if amount is None:
            return None
        payment_refunds.request_refund(
            db_session(),
            customer_id=customer_id,
            amount_minor=amount,
            reason="staff",
            note=form.note.data or "",
            actor=current_actor(),
            now=utcnow(),
            currency=_policy().currency,
            idempotency_key=f"staff:{form.token.data}",
        )
        return _back_to_customer(
            ref, _("Refund of %(amount)s queued.", amount=format_money_for_view(amount))
        )

    return post_form(
        form,
        act=request_refund,
        refused=lambda: _render_customer(ref, status=422, refund=form),
        fallback="amount",
        tokened=True,
    )


@bp.route("/customers/<ref>/vouchers", methods=["POST"])
@staff_required("vouchers.redeem")
def customer_voucher(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = VoucherRedeemForm(prefix="voucher")

    def redeem() -> Any:
        # A wrong PIN keeps its failed attempt (committed; it counts towards
        # the lockout); any other refusal is undone.
        entry = vouchers.redeem_voucher(
            db_session(),
            customer_id=customer_id,
            serial=form.serial.data or "",
            pin=form.pin.data or "",
            ip=client_ip(),
            actor=current_actor(),
            now=utcnow(),
            policy=vouchers.VoucherPolicy(),
            **_policy().cap_kwargs(),
        )
        return _back_to_customer(ref, _("Voucher redeemed (entry %(id)s).", id=entry.id))

    return post_form(
        form,
        act=redeem,
        refused=lambda: _render_customer(ref, status=422, voucher=form),
        fallback="pin",
        clear=("pin",),
    )


class IdentityForm(FlaskForm):
    name = StringField(_l("Real name"), validators=[DataRequired(), limit(limits.PERSON_NAME)])
    id_type = SelectField(
        _l("ID type"),
        choices=[SelectChoice(value=t, label=_l(ID_TYPE_LABELS[t])) for t in ID_TYPES],
    )
    id_number = StringField(_l("ID number"), validators=[DataRequired(), limit(40)])


def _cipher() -> PiiCipher:
    return PiiCipher(settings().pii_key)


def remaining_allowances(period: LinePeriod) -> dict[str, str]:
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
            "remaining": remaining_allowances(period) if period is not None else None,
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


@bp.route("/customers/<ref>/identity", methods=["POST"])
@staff_required("subscribers.manage")
def customer_identity(ref: str) -> Any:
    customer = subscribers.get_customer_by_ref(db_session(), ref)
    form = IdentityForm(prefix="identity")
    if refused_form(form):
        return back_to_customer_page(customer.ref, "identity")
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
    return back_to_customer_page(customer.ref, "identity")


@bp.route("/customers/<ref>/reveal-id", methods=["POST"])
@staff_required("pii.reveal")
def customer_reveal_id(ref: str) -> Any:
    customer = subscribers.get_customer_by_ref(db_session(), ref)
    form = ReasonForm()
    if refused_form(form):
        return back_to_customer_page(customer.ref, "identity")
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
        return back_to_customer_page(customer.ref, "identity")
    body = render_template(
        "console/id_revealed.html",
        customer=customer,
        value=value,
        id_type_label=ID_TYPE_LABELS.get(customer.id_type or ""),
    )
    return body, 200, NO_STORE
