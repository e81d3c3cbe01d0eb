"""Console: store orders, and recording cash paid at a store for one (DESIGN §10).

`orders.view` lists orders (awaiting payment first when filtered so);
`payments.manage` records the buyer's payment against an order awaiting
payment, which credits the shortfall as an offline payment and completes
the order from the balance (app/subscribers/purchase.record_store_payment).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlmodel import col, select
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from app.core import limits
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.onboarding import orders, purchase
from app.payments.services import MoneyPolicy
from app.subscribers.models import ORDER_STATUS_LABELS, ORDER_STATUSES, Customer
from app.web import flash_refusal
from app.web.auth import staff_required
from app.web.console import bp
from app.web.context import current_actor, db_session, settings
from app.web.forms import limit
from plans.models import Plan

PER_PAGE = 50
MAX_PAGE = 100_000


class StorePaymentForm(FlaskForm):
    method = SelectField(
        _l("Method"),
        choices=[
            SelectChoice(value="cash", label=_l("cash")),
            SelectChoice(value="bank_transfer", label=_l("bank transfer")),
        ],
    )
    reference = StringField(
        _l("Receipt or bank reference"), validators=[DataRequired(), limit(limits.REFERENCE)]
    )


@bp.route("/orders")
@staff_required("orders.view")
def store_orders() -> Any:
    status = request.args.get("status") or None
    if status not in ORDER_STATUSES:
        status = None
    page = min(max(request.args.get("page", default=1, type=int) or 1, 1), MAX_PAGE)
    session = db_session()
    rows, total = orders.list_orders(
        session, status=status, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    customers = {
        c.id: c
        for c in session.exec(
            select(Customer).where(col(Customer.id).in_({o.customer_id for o in rows}))
        )
    }
    plans = {
        p.id: p
        for p in session.exec(select(Plan).where(col(Plan.id).in_({o.plan_id for o in rows})))
    }
    shortfalls = {
        o.id: orders.shortfall_minor(session, o) for o in rows if o.status == "awaiting_payment"
    }
    return render_template(
        "console/orders.html",
        rows=rows,
        customers=customers,
        plans=plans,
        shortfalls=shortfalls,
        total=total,
        page=page,
        per_page=PER_PAGE,
        status=status,
        statuses=ORDER_STATUSES,
        status_labels=ORDER_STATUS_LABELS,
        form=StorePaymentForm(formdata=None),
        now=utcnow(),
    )


@bp.route("/orders/<ref>/store-payment", methods=["POST"])
@staff_required("payments.manage")
def store_order_payment(ref: str) -> Any:
    session = db_session()
    order = orders.get_order_by_ref(session, ref)
    back = redirect(url_for("console.store_orders", status="awaiting_payment"), code=303)
    form = StorePaymentForm()
    if not form.validate_on_submit():
        flash(_("Give the method and the receipt or bank reference."), "error")
        return back
    assert order.id is not None
    try:
        purchase.record_store_payment(
            session,
            order_id=order.id,
            method=form.method.data or "",
            reference=form.reference.data or "",
            actor=current_actor(),
            now=utcnow(),
            policy=MoneyPolicy.from_settings(settings()),
        )
    except DomainError as exc:
        flash_refusal(exc)
        return back
    flash(_("Order %(ref)s is paid; the line was sent for activation.", ref=order.ref), "success")
    return back
