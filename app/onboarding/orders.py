"""Store purchase orders (DESIGN §10): the cart's hold, placing, reading and ending orders.

Rules:

* **The hold.** A buyer first holds a number for their cart (holder
  `cart:<token>`, 15 minutes, numbering's `reserve_number`). Placing the
  order hands the hold over to the order (holder `order:<ref>`) in the same
  transaction, so nobody can take the number in between, and the order's
  `hold_until` is the new hold's end. Choosing to pay at a store extends the
  hold to `STORE_HOLD_MINUTES` (a day), since the buyer has to walk there.
* **Real name first.** An order is placed only for a customer whose real
  name and ID are on record (app/subscribers/kyc.py), and only when a SIM of
  the chosen kind is in stock on the plan's host — so nobody pays for a line
  that cannot be given out.
* **Endings.** The buyer may cancel an order awaiting payment (the number
  is released). An order whose hold ran out is expired by
  `expire_orders` (the scheduler) or when it is next acted on
  (`expire_due`). Paying and completing an order is
  app/onboarding/purchase.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from app.charging.horizon import ensure_sales_open
from app.core.audit import Actor, count_recent, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_, InvalidInput
from app.ledger.balances import customer_balance
from app.subscribers.errors import (
    HoldsThrottled,
    IdentityMissing,
    NoSimStock,
    OrderNotFound,
    OrderStateError,
)
from app.subscribers.models import ORDER_STATUSES, Customer, PurchaseOrder
from app.subscribers.services import ensure_customer_for_account
from numbering.lifecycle import HOLD_MINUTES, release_number, reserve_number
from numbering.models import SIM_KINDS, NumberBlock, PhoneNumber, Sim
from numbering.search import find_number, get_number
from plans.models import Plan

__all__ = [
    "HOLD_MINUTES",
    "STORE_HOLD_MINUTES",
    "OrderSummary",
    "audit_order",
    "cancel_order",
    "cart_hold_until",
    "cart_holder",
    "choose_pay_at_store",
    "expire_due",
    "expire_orders",
    "get_order",
    "get_order_by_ref",
    "hold_number",
    "link_payment",
    "list_orders",
    "lock_open_order",
    "new_cart_token",
    "no_stock",
    "order_holder",
    "place_order",
    "refusal",
    "shortfall_minor",
    "shown_status",
    "sim_in_stock",
]

STORE_HOLD_MINUTES = 24 * 60
MAX_REF = 20


def new_cart_token() -> str:
    """A random token naming one buyer's cart (kept in their browser session)."""
    return secrets.token_urlsafe(16)


def cart_holder(token: str) -> str:
    """Who holds a number for a store cart: the name the number's hold is taken under."""
    return f"cart:{token}"


def order_holder(ref: str) -> str:
    """Who holds a number for a placed order: the name the number's hold is taken under."""
    return f"order:{ref}"


def cart_hold_until(session: Session, *, msisdn: str, token: str, now: datetime) -> datetime | None:
    """When the cart's hold on `msisdn` ends, or None if the cart no longer holds it."""
    number = find_number(session, msisdn)
    if (
        number is None
        or number.status != "reserved"
        or number.reserved_by != cart_holder(token)
        or number.reserved_until is None
        or number.reserved_until <= now
    ):
        return None
    return number.reserved_until


def shown_status(order: PurchaseOrder, *, now: datetime) -> str:
    """The order's status as of `now`: one whose hold ran out is expired, even before
    `expire_orders` or the next action on it marked it so (reads never write)."""
    if order.status == "awaiting_payment" and order.hold_until <= now:
        return "expired"
    return order.status


def _published_plan(session: Session, plan_id: int) -> Plan:
    """A plan on sale; nothing is on sale once a market exit is announced (SalesClosed)."""
    ensure_sales_open(session)
    plan = session.get(Plan, plan_id)
    if plan is None or plan.status != "published":
        raise InvalidInput(N_("This plan is not on sale."), field="plan_id")
    return plan


def _host_of(session: Session, number: PhoneNumber) -> int:
    block = session.get(NumberBlock, number.block_id)
    assert block is not None
    return block.host_id


HOLD_ACTION = "number.cart_hold"
HOLDS_PER_IP_PER_HOUR = 20


def hold_number(
    session: Session,
    *,
    plan_id: int,
    msisdn: str,
    holder: str,
    previous: str | None,
    now: datetime,
    actor: Actor | None = None,
    ip: str = "",
) -> PhoneNumber:
    """Hold `msisdn` for a buyer's cart for 15 minutes; the cart's previous number is let go.

    The number must be on the plan's host. Idempotent for the same holder
    (the hold is extended). Anyone may hold numbers before signing in, so
    each new hold is audited with the buyer's address and one address may
    take at most `HOLDS_PER_IP_PER_HOUR` in an hour: a script cannot take
    a block's numbers off the shelf.
    :raises InvalidInput: the plan is not on sale, or the number is on another host.
    :raises HoldsThrottled: too many holds from this address within the hour.
    :raises NumberNotFound, NumberUnavailable: from numbering.
    :raises SalesClosed: a market exit is announced.
    """
    plan = _published_plan(session, plan_id)
    number = get_number(session, msisdn)
    if _host_of(session, number) != plan.host_id:
        raise InvalidInput(
            N_("Number %(msisdn)s is not on this plan's network."),
            field="msisdn",
            msisdn=number.msisdn,
        )
    extending = number.status == "reserved" and number.reserved_by == holder
    ip = (ip or "")[:64]
    if not extending and ip:
        since = now - timedelta(hours=1)
        if count_recent(session, action=HOLD_ACTION, ip=ip, since=since) >= HOLDS_PER_IP_PER_HOUR:
            raise HoldsThrottled(
                N_("Too many numbers were held from your address. Please try again later.")
            )
    if previous and previous != number.msisdn:
        release_number(session, msisdn=previous, holder=holder, now=now)
    held = reserve_number(session, msisdn=number.msisdn, holder=holder, now=now)
    if not extending:
        record_audit(
            session,
            actor=actor or Actor.system("store"),
            action=HOLD_ACTION,
            now=now,
            target_type="number",
            target_id=held.msisdn,
            details={"plan": plan.code},
            ip=ip or None,
        )
    return held


def sim_in_stock(session: Session, *, host_id: int, kind: str) -> int:
    """How many SIMs of `kind` the host has in stock."""
    return session.exec(
        select(func.count())
        .select_from(Sim)
        .where(Sim.host_id == host_id, Sim.kind == kind, Sim.status == "in_stock")
    ).one()


def no_stock(kind: str) -> NoSimStock:
    """The refusal for an order of `kind` when no such SIM is in stock."""
    if kind == "esim":
        return NoSimStock(
            N_("Sorry, no eSIM is available for this plan right now. Nothing was charged."),
            field="sim_kind",
        )
    return NoSimStock(
        N_("Sorry, no SIM card is available for this plan right now. Nothing was charged."),
        field="sim_kind",
    )


def _identity_required(customer: Customer) -> None:
    if not customer.id_number_enc:
        raise IdentityMissing(
            N_("Give your real name and ID before placing the order."), field="id_number"
        )


def place_order(
    session: Session,
    *,
    account_id: int,
    email: str,
    plan_id: int,
    msisdn: str,
    cart_token: str,
    sim_kind: str,
    actor: Actor,
    now: datetime,
) -> PurchaseOrder:
    """Turn a buyer's cart (a plan and a held number) into an order awaiting payment.

    The cart's hold moves to the order (see the module docstring); the
    total is the plan price plus the number's surcharge as held.
    :raises InvalidInput: unknown SIM kind, plan not on sale, number on another host.
    :raises IdentityMissing, NoSimStock: no real-name details; no SIM of the kind in stock.
    :raises SalesClosed: a market exit is announced.
    :raises NumberUnavailable: the hold ran out and someone else took the number.
    """
    if sim_kind not in SIM_KINDS:
        raise InvalidInput(N_("Choose a SIM card or an eSIM."), field="sim_kind")
    plan = _published_plan(session, plan_id)
    customer = ensure_customer_for_account(session, account_id=account_id, email=email, now=now)
    _identity_required(customer)
    if not sim_in_stock(session, host_id=plan.host_id, kind=sim_kind):
        raise no_stock(sim_kind)
    number = get_number(session, msisdn)
    if _host_of(session, number) != plan.host_id:
        raise InvalidInput(
            N_("Number %(msisdn)s is not on this plan's network."),
            field="msisdn",
            msisdn=number.msisdn,
        )
    assert customer.id is not None and plan.id is not None
    order = PurchaseOrder(
        ref=f"tmp-{secrets.token_hex(6)}",
        account_id=account_id,
        customer_id=customer.id,
        plan_id=plan.id,
        msisdn=number.msisdn,
        sim_kind=sim_kind,
        status="awaiting_payment",
        price_minor=plan.price_minor,
        surcharge_minor=0,
        total_minor=plan.price_minor,
        currency=plan.currency,
        hold_until=now,
        created_at=now,
    )
    session.add(order)
    session.flush()
    assert order.id is not None
    order.ref = f"O-{order.id:06d}"
    # Hand the hold over: the cart's hold is released and the order's taken in
    # one transaction, under the number's row lock.
    release_number(session, msisdn=number.msisdn, holder=cart_holder(cart_token), now=now)
    held = reserve_number(session, msisdn=number.msisdn, holder=order_holder(order.ref), now=now)
    assert held.reserved_until is not None
    order.surcharge_minor = held.surcharge_minor
    order.total_minor = order.price_minor + held.surcharge_minor
    order.hold_until = held.reserved_until
    session.add(order)
    session.flush()
    audit_order(
        session,
        order,
        actor=actor,
        action="order.place",
        now=now,
        details={
            "customer": customer.ref,
            "plan": plan.code,
            "msisdn": order.msisdn,
            "sim_kind": sim_kind,
            "total_minor": order.total_minor,
        },
    )
    return order


# -- reading ------------------------------------------------------------------------------


def get_order(session: Session, order_id: int) -> PurchaseOrder:
    """The purchase order `order_id`. :raises OrderNotFound."""
    order = session.get(PurchaseOrder, order_id)
    if order is None:
        raise OrderNotFound(N_("No order %(ref)s."), ref=order_id)
    return order


def get_order_by_ref(session: Session, ref: str, *, account_id: int | None = None) -> PurchaseOrder:
    """The order with this ref; with `account_id`, only if it is that login's own.

    :raises OrderNotFound: no such order (or someone else's — the same answer).
    """
    ref = (ref or "").strip().upper()[:MAX_REF]
    order = session.exec(select(PurchaseOrder).where(PurchaseOrder.ref == ref)).first()
    if order is None or (account_id is not None and order.account_id != account_id):
        raise OrderNotFound(N_("No order %(ref)s."), ref=ref)
    return order


def list_orders(
    session: Session,
    *,
    account_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[PurchaseOrder], int]:
    """Orders, newest first, optionally of one login or one status; returns (orders, total)."""
    if status is not None and status not in ORDER_STATUSES:
        raise InvalidInput(N_("Unknown order status %(status)r."), field="status", status=status)
    conditions: list[Any] = []
    if account_id is not None:
        conditions.append(PurchaseOrder.account_id == account_id)
    if status is not None:
        conditions.append(PurchaseOrder.status == status)
    total = session.exec(select(func.count()).select_from(PurchaseOrder).where(*conditions)).one()
    rows = session.exec(
        select(PurchaseOrder)
        .where(*conditions)
        .order_by(col(PurchaseOrder.id).desc())
        .offset(max(offset, 0))
        .limit(min(max(limit, 1), 200))
    )
    return list(rows), total


def shortfall_minor(session: Session, order: PurchaseOrder) -> int:
    """What the buyer still has to add to the balance for this order (0 when covered)."""
    balance = customer_balance(session, customer_id=order.customer_id)
    return max(order.total_minor - balance, 0)


@dataclass(frozen=True)
class OrderSummary:
    """An order with what it takes to show it."""

    order: PurchaseOrder
    plan: Plan
    customer: Customer


# -- changes ------------------------------------------------------------------------------


def _lock(session: Session, order_id: int) -> PurchaseOrder:
    order = lock_by_id(session, PurchaseOrder, order_id)
    if order is None:
        raise OrderNotFound(N_("No order %(ref)s."), ref=order_id)
    return order


def lock_open_order(session: Session, order_id: int) -> PurchaseOrder:
    """The order, locked. :raises OrderStateError: it was cancelled."""
    order = _lock(session, order_id)
    if order.status == "cancelled":
        raise refusal(order)
    return order


def refusal(order: PurchaseOrder) -> OrderStateError:
    """Why an order that is not awaiting payment refuses an action (paid, cancelled, expired)."""
    if order.status == "paid":
        return OrderStateError(N_("Order %(ref)s is already paid."), field="status", ref=order.ref)
    if order.status == "cancelled":
        return OrderStateError(N_("Order %(ref)s was cancelled."), field="status", ref=order.ref)
    return OrderStateError(
        N_("Order %(ref)s has expired: the number was held for it only for a while."),
        field="status",
        ref=order.ref,
    )


def audit_order(
    session: Session,
    order: PurchaseOrder,
    *,
    actor: Actor,
    action: str,
    now: datetime,
    details: dict[str, Any],
) -> None:
    """Add the audit record of a change to `order` (target `purchase_order`, its ref)."""
    record_audit(
        session,
        actor=actor,
        action=action,
        now=now,
        target_type="purchase_order",
        target_id=order.ref,
        details=details,
    )


def _end(
    session: Session, order: PurchaseOrder, *, status: str, actor: Actor, now: datetime
) -> None:
    """Expire or cancel a locked order awaiting payment: its number is released."""
    order.status = status
    session.add(order)
    release_number(session, msisdn=order.msisdn, holder=order_holder(order.ref), now=now)
    session.flush()
    action = "order.expire" if status == "expired" else "order.cancel"
    audit_order(
        session, order, actor=actor, action=action, now=now, details={"msisdn": order.msisdn}
    )


def _expire_locked(session: Session, order: PurchaseOrder, now: datetime) -> None:
    _end(session, order, status="expired", actor=Actor.system("order expiry"), now=now)


def expire_due(session: Session, *, order_id: int, now: datetime) -> PurchaseOrder:
    """Expire the order if it awaits payment and its hold has run out. Locks the order."""
    order = _lock(session, order_id)
    if order.status == "awaiting_payment" and order.hold_until <= now:
        _expire_locked(session, order, now)
    return order


def expire_orders(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Expire orders awaiting payment whose number hold ran out; returns how many.

    Takes work with SKIP LOCKED, so an order being paid right now is left to
    its payer. Idempotent.
    """
    orders = session.exec(
        select(PurchaseOrder)
        .where(PurchaseOrder.status == "awaiting_payment", col(PurchaseOrder.hold_until) <= now)
        .order_by(col(PurchaseOrder.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for order in orders:
        _expire_locked(session, order, now)
    return len(orders)


def cancel_order(session: Session, *, order_id: int, actor: Actor, now: datetime) -> PurchaseOrder:
    """The buyer gives up an order awaiting payment; its number is released.

    Locks the order. Idempotent: a cancelled order is returned as it is.
    :raises OrderStateError: the order is paid or expired.
    """
    order = _lock(session, order_id)
    if order.status == "cancelled":
        return order
    if order.status != "awaiting_payment":
        raise refusal(order)
    _end(session, order, status="cancelled", actor=actor, now=now)
    return order


def choose_pay_at_store(
    session: Session, *, order_id: int, actor: Actor, now: datetime
) -> PurchaseOrder:
    """The buyer will pay at a store: the number is held for a day from now.

    Locks the order. Idempotent (the hold is extended again).
    :raises OrderStateError: the order is not awaiting payment (or just expired).
    """
    order = expire_due(session, order_id=order_id, now=now)
    if order.status != "awaiting_payment":
        raise refusal(order)
    held = reserve_number(
        session,
        msisdn=order.msisdn,
        holder=order_holder(order.ref),
        now=now,
        minutes=STORE_HOLD_MINUTES,
    )
    assert held.reserved_until is not None
    order.payment_method = "store"
    order.hold_until = held.reserved_until
    session.add(order)
    session.flush()
    audit_order(
        session,
        order,
        actor=actor,
        action="order.pay_at_store",
        now=now,
        details={"hold_until": order.hold_until.isoformat()},
    )
    return order


def link_payment(
    session: Session, *, order_id: int, payment_id: int, method: str, now: datetime
) -> PurchaseOrder:
    """Remember the payment that is topping the balance up for this order. Locks the order."""
    order = _lock(session, order_id)
    if order.status == "awaiting_payment":
        order.payment_id = payment_id
        order.payment_method = method
        session.add(order)
        session.flush()
    return order


def order_expiry_of(order: PurchaseOrder, now: datetime) -> timedelta:
    """How long the order's hold still lasts (zero when it has run out)."""
    return max(order.hold_until - now, timedelta(0))
