"""JSON API of store orders (DESIGN §10, §14): the console's "Store orders" page.

`orders.view` lists and reads orders; `payments.manage` records the money a
buyer paid at a store for an order (the shortfall is credited as an offline
payment, idempotent per method and reference) or completes an order whose
customer's balance already covers it. Both complete the order: the total is
debited from the balance and the line opens pending activation. A paid order
answers 200 with the order unchanged.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE
from sqlmodel import col, select

from app.core.clock import utcnow
from app.onboarding import orders, purchase
from app.payments.services import MoneyPolicy
from app.subscribers.models import Customer, Line, PurchaseOrder
from app.subscribers.services import get_customer_by_ref
from app.web.api import bp
from app.web.api.common import page_args, page_out
from app.web.api.orders_schemas import OrderOut, OrderPage, OrderQuery, StorePaymentIn
from app.web.api.security import requires
from app.web.context import current_actor, db_session, settings
from plans.models import Plan

_DOC = {404: "No order with this ref"}
_CHANGE_DOC = {
    404: "No order with this ref",
    409: "The order was cancelled or expired and its number taken, the balance does not "
    "cover it, no SIM of its kind is in stock, or a market exit is announced (sales_closed)",
}


def _outs(rows: list[PurchaseOrder]) -> list[dict[str, Any]]:
    session = db_session()
    customers = {
        c.id: c.ref
        for c in session.exec(
            select(Customer).where(col(Customer.id).in_({o.customer_id for o in rows}))
        )
    }
    plans = {
        p.id: p.code
        for p in session.exec(select(Plan).where(col(Plan.id).in_({o.plan_id for o in rows})))
    }
    out = []
    for order in rows:
        line = session.get(Line, order.line_id) if order.line_id else None
        out.append(
            {
                **order.model_dump(),
                "customer_ref": customers.get(order.customer_id, ""),
                "plan": plans.get(order.plan_id, ""),
                "line_status": line.status if line is not None else None,
                "shortfall_minor": orders.shortfall_minor(session, order)
                if order.status == "awaiting_payment"
                else 0,
            }
        )
    return out


def _order(ref: str) -> PurchaseOrder:
    return orders.get_order_by_ref(db_session(), ref)


@bp.get("/orders")
@requires("orders.view")
@bp.input(OrderQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(OrderPage)
@bp.doc(responses={404: "No customer with this ref"})
def order_list(query: dict[str, Any]) -> Any:
    """Store orders, newest first; filter by status or customer."""
    session = db_session()
    account_id = None
    if query.get("customer"):
        customer = get_customer_by_ref(session, query["customer"])
        if customer.subscriber_account_id is None:
            return page_out([], 0, query)
        account_id = customer.subscriber_account_id
    rows, total = orders.list_orders(
        session, account_id=account_id, status=query.get("status"), **page_args(query)
    )
    return page_out(_outs(rows), total, query)


@bp.get("/orders/<ref>")
@requires("orders.view")
@bp.output(OrderOut)
@bp.doc(responses=_DOC)
def order_get(ref: str) -> Any:
    """One store order."""
    return _outs([_order(ref)])[0]


@bp.post("/orders/<ref>/store-payment")
@requires("payments.manage")
@bp.input(StorePaymentIn, arg_name="data")
@bp.output(OrderOut)
@bp.doc(responses=_CHANGE_DOC)
def order_store_payment(ref: str, data: dict[str, Any]) -> Any:
    """Record the money paid at a store for an order, which completes it."""
    order = _order(ref)
    assert order.id is not None
    order = purchase.record_store_payment(
        db_session(),
        order_id=order.id,
        method=data["method"],
        reference=data["reference"],
        actor=current_actor(),
        now=utcnow(),
        policy=MoneyPolicy.from_settings(settings()),
    )
    return _outs([order])[0]


@bp.post("/orders/<ref>/complete")
@requires("payments.manage")
@bp.output(OrderOut)
@bp.doc(responses=_CHANGE_DOC)
def order_complete(ref: str) -> Any:
    """Complete an order from the customer's balance (it must cover the total)."""
    order = _order(ref)
    assert order.id is not None
    order = purchase.complete_order(
        db_session(), order_id=order.id, actor=current_actor(), now=utcnow(), method="balance"
    )
    return _outs([order])[0]
