"""Buying a plan in the store (DESIGN §10): purchase orders from hold to open line.

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
* **Paid from the prepaid balance.** Whatever tops the balance up — a card
  payment (Stripe), a voucher, cash at a store — completing the order
  debits `total_minor` (plan price + the number's golden surcharge) from the
  balance as plan revenue, idempotency key `order:<id>`. A balance that
  already covers the total pays directly.
* **Completion** (`complete_order`) locks the order row and is idempotent:
  debit, number assigned, SIM of the kind taken from stock, line opened
  `pending`, the `activate` event written for the host, an audit record and
  the `order_paid` notice — all in the caller's transaction, so a refusal
  (no SIM left, balance short) leaves nothing charged. The line's first
  period opens when the host confirms the activation (lifecycle).
* **Endings.** The buyer may cancel an order awaiting payment (the number
  is released). An order whose hold ran out is expired by
  `expire_orders` (the scheduler) or when it is next acted on. A card
  payment that arrives after expiry still completes the order when the
  number is free again; otherwise the money stays on the balance.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from app.care.notifications import notify_customer
from app.core.audit import Actor, count_recent, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_, DomainError, InvalidInput, clean_text
from app.core.money import format_plain
from app.ledger.balances import customer_balance
from app.ledger.movements import charge_customer
from app.payments.models import Payment
from app.payments.services import MoneyPolicy, record_offline_payment
from app.subscribers import lifecycle
from app.subscribers.errors import (
    HoldsThrottled,
    IdentityMissing,
    NoSimStock,
    OrderNotFound,
    OrderStateError,
    OrderUnpaid,
)
from app.subscribers.models import ORDER_STATUSES, Customer, PurchaseOrder
from app.subscribers.services import ensure_customer_for_account, open_line
from numbering import services as numbering
from numbering.errors import SimUnavailable
from numbering.models import SIM_KINDS, NumberBlock, PhoneNumber, Sim
from plans.models import Plan

log = logging.getLogger(__name__)

__all__ = [
    "HOLD_MINUTES",
    "STORE_HOLD_MINUTES",
    "OrderSummary",
    "cancel_order",
    "cart_holder",
    "choose_pay_at_store",
    "complete_order",
    "complete_order_for_payment",
    "expire_due",
    "expire_orders",
    "get_order",
    "get_order_by_ref",
    "hold_number",
    "list_orders",
    "new_cart_token",
    "order_holder",
    "place_order",
    "record_store_payment",
    "shortfall_minor",
    "sim_in_stock",
]

HOLD_MINUTES = numbering.HOLD_MINUTES
STORE_HOLD_MINUTES = 24 * 60
MAX_REF = 20


def new_cart_token() -> str:
    """A random token naming one buyer's cart (kept in their browser session)."""
    return secrets.token_urlsafe(16)


def cart_holder(token: str) -> str:
    return f"cart:{token}"


def order_holder(ref: str) -> str:
    return f"order:{ref}"


def _published_plan(session: Session, plan_id: int) -> Plan:
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
    """
    plan = _published_plan(session, plan_id)
    number = numbering.get_number(session, msisdn)
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
        numbering.release_number(session, msisdn=previous, holder=holder, now=now)
    held = numbering.reserve_number(session, msisdn=number.msisdn, holder=holder, now=now)
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


def _no_stock(kind: str) -> NoSimStock:
    if kind == "esim":
        return NoSimStock(
            N_("Sorry, no eSIM is available for this plan right now. Nothing was charged."),
            field="sim_kind",
        )
    return NoSimStock(
        N_("Sorry, no SIM card is available for this plan right now. Nothing was charged."),
        field="sim_kind",
    )


def _take_sim(session: Session, *, host_id: int, kind: str, now: datetime) -> Sim:
    """Take one in-stock SIM of `kind` for a line (oldest first).

    Candidates are locked with SKIP LOCKED (PostgreSQL), so concurrent
    buyers take different SIMs instead of waiting for each other; the
    conditional UPDATE in numbering decides any race that remains.
    :raises NoSimStock: none left.
    """
    for _attempt in range(3):
        candidates = session.exec(
            select(Sim.iccid)
            .where(Sim.host_id == host_id, Sim.kind == kind, Sim.status == "in_stock")
            .order_by(col(Sim.id))
            .limit(5)
            .with_for_update(skip_locked=True)
        ).all()
        if not candidates:
            break
        for iccid in candidates:
            try:
                return numbering.take_sim_from_stock(
                    session, iccid=iccid, host_id=host_id, status="assigned", now=now
                )
            except SimUnavailable:
                continue
    raise _no_stock(kind)


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
    :raises IdentityMissing: the customer has no real-name details on record.
    :raises NoSimStock: no SIM of the kind in stock on the plan's host.
    :raises NumberUnavailable: the hold ran out and someone else took the number.
    """
    if sim_kind not in SIM_KINDS:
        raise InvalidInput(N_("Choose a SIM card or an eSIM."), field="sim_kind")
    plan = _published_plan(session, plan_id)
    customer = ensure_customer_for_account(session, account_id=account_id, email=email, now=now)
    _identity_required(customer)
    if not sim_in_stock(session, host_id=plan.host_id, kind=sim_kind):
        raise _no_stock(sim_kind)
    number = numbering.get_number(session, msisdn)
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
    numbering.release_number(session, msisdn=number.msisdn, holder=cart_holder(cart_token), now=now)
    held = numbering.reserve_number(
        session, msisdn=number.msisdn, holder=order_holder(order.ref), now=now
    )
    assert held.reserved_until is not None
    order.surcharge_minor = held.surcharge_minor
    order.total_minor = order.price_minor + held.surcharge_minor
    order.hold_until = held.reserved_until
    session.add(order)
    session.flush()
    _audit(
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


def _lock_open(session: Session, order_id: int) -> PurchaseOrder:
    """The order, locked. :raises OrderStateError: it was cancelled."""
    order = _lock(session, order_id)
    if order.status == "cancelled":
        raise _refuse(order)
    return order


def _refuse(order: PurchaseOrder) -> OrderStateError:
    if order.status == "paid":
        return OrderStateError(N_("Order %(ref)s is already paid."), field="status", ref=order.ref)
    if order.status == "cancelled":
        return OrderStateError(N_("Order %(ref)s was cancelled."), field="status", ref=order.ref)
    return OrderStateError(
        N_("Order %(ref)s has expired: the number was held for it only for a while."),
        field="status",
        ref=order.ref,
    )


def _audit(
    session: Session,
    order: PurchaseOrder,
    *,
    actor: Actor,
    action: str,
    now: datetime,
    details: dict[str, Any],
) -> None:
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
    numbering.release_number(session, msisdn=order.msisdn, holder=order_holder(order.ref), now=now)
    session.flush()
    action = "order.expire" if status == "expired" else "order.cancel"
    _audit(session, order, actor=actor, action=action, now=now, details={"msisdn": order.msisdn})


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
        raise _refuse(order)
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
        raise _refuse(order)
    held = numbering.reserve_number(
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
    _audit(
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


def complete_order(
    session: Session,
    *,
    order_id: int,
    actor: Actor,
    now: datetime,
    method: str | None = None,
) -> PurchaseOrder:
    """Pay the order from the prepaid balance and open its line (see the module docstring).

    Locks the order. Idempotent: a paid order is returned as it is. An
    expired order is completed only if its number can be held again.
    :raises OrderStateError: the order was cancelled.
    :raises OrderUnpaid: the balance does not cover the total; names the shortfall.
    :raises NumberUnavailable: the hold ran out and the number was taken.
    :raises NoSimStock: no SIM of the order's kind is left; nothing is charged.
    """
    order = _lock_open(session, order_id)
    if order.status == "paid":
        return order
    assert order.id is not None
    plan = session.get(Plan, order.plan_id)
    customer = session.get(Customer, order.customer_id)
    assert plan is not None and customer is not None and customer.id is not None
    balance = customer_balance(session, customer_id=customer.id)
    if balance < order.total_minor:
        raise OrderUnpaid(
            N_(
                "Your balance of %(balance)s does not cover the order total of %(total)s;"
                " %(shortfall)s more is needed."
            ),
            field="payment",
            balance=format_plain(balance),
            total=format_plain(order.total_minor),
            shortfall=format_plain(order.total_minor - balance),
        )
    holder = order_holder(order.ref)
    # Holding again extends our own live hold or retakes a lapsed one that
    # nobody else took; then the hold becomes the assignment.
    numbering.reserve_number(session, msisdn=order.msisdn, holder=holder, now=now)
    numbering.assign_number(session, msisdn=order.msisdn, holder=holder, now=now)
    sim = _take_sim(session, host_id=plan.host_id, kind=order.sim_kind, now=now)
    entry = None
    if order.total_minor > 0:
        entry = charge_customer(
            session,
            customer_id=customer.id,
            amount_minor=order.total_minor,
            revenue_kind="revenue_plans",
            idempotency_key=f"order:{order.id}",
            actor=actor,
            now=now,
            currency=order.currency,
            memo=f"order {order.ref}: {plan.code} {order.msisdn}",
            external_ref=order.ref,
        )
    line = open_line(
        session,
        customer_id=customer.id,
        msisdn=order.msisdn,
        plan_id=plan.id or order.plan_id,
        sim_id=sim.id,
        status="pending",
        now=now,
    )
    assert line.id is not None
    was = order.status
    order.status = "paid"
    order.line_id = line.id
    order.entry_id = entry.id if entry is not None else None
    order.paid_at = now
    order.payment_method = method or order.payment_method or "balance"
    session.add(order)
    session.flush()
    lifecycle.request_activation(session, line_id=line.id, actor=actor, now=now)
    _audit(
        session,
        order,
        actor=actor,
        action="order.complete",
        now=now,
        details={
            "customer": customer.ref,
            "msisdn": order.msisdn,
            "iccid": sim.iccid,
            "line_id": line.id,
            "entry_id": order.entry_id,
            "total_minor": order.total_minor,
            "method": order.payment_method,
            "from": was,
        },
    )
    notify_customer(
        session,
        customer,
        kind="order_paid",
        now=now,
        data={
            "order_ref": order.ref,
            "msisdn": order.msisdn,
            "plan": plan.code,
            "amount_minor": order.total_minor,
            "currency": order.currency,
        },
        dedupe_key=f"order_paid:{order.id}",
        locale=_locale(session, order.account_id),
    )
    return order


def _locale(session: Session, account_id: int) -> str:
    from app.auth.models import SubscriberAccount

    account = session.get(SubscriberAccount, account_id)
    return account.locale if account is not None and account.locale else "zh_Hans"


def complete_order_for_payment(
    session: Session, *, payment_id: int, now: datetime
) -> PurchaseOrder | None:
    """After a card payment succeeded: complete the order it was made for, if any.

    Runs in a savepoint: when the order cannot be completed (the number was
    taken after the hold ran out, no SIM left) the money stays on the
    buyer's balance, the payment stays booked, and the refusal is logged.
    Idempotent.
    """
    order = session.exec(
        select(PurchaseOrder).where(PurchaseOrder.payment_id == payment_id)
    ).first()
    payment = session.get(Payment, payment_id)
    if order is None or payment is None or payment.status != "succeeded":
        return None
    if order.status == "paid":
        return order
    assert order.id is not None
    try:
        with session.begin_nested():
            return complete_order(
                session,
                order_id=order.id,
                actor=Actor.system(f"payment {payment_id}"),
                now=now,
                method="stripe",
            )
    except DomainError as exc:
        log.warning("order %s not completed after payment %s: %s", order.ref, payment_id, exc)
        return None


def record_store_payment(
    session: Session,
    *,
    order_id: int,
    method: str,
    reference: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
) -> PurchaseOrder:
    """Staff record the money a buyer paid at a store for an order, which completes it.

    The shortfall (the total less what the balance already holds) is
    recorded as an offline payment (idempotent per method and reference)
    and credited, then the order is completed from the balance. Locks the
    order. Idempotent: a paid order is returned as it is.
    :raises OrderStateError: the order was cancelled, or expired and its number was taken.
    :raises InvalidInput, PaymentConflict, CapExceeded: from the payment.
    """
    reference = clean_text(reference, field="reference", max_length=200, required=True)
    order = _lock_open(session, order_id)
    if order.status == "paid":
        return order
    assert order.id is not None
    shortfall = shortfall_minor(session, order)
    if shortfall > 0:
        payment = record_offline_payment(
            session,
            customer_id=order.customer_id,
            amount_minor=shortfall,
            method=method,
            reference=reference,
            actor=actor,
            now=now,
            policy=policy,
            memo=f"order {order.ref}",
            # The money is for this order: it must not renew a suspended line first.
            renew_suspended=False,
        )
        order.payment_id = payment.id
        session.add(order)
        session.flush()
    return complete_order(session, order_id=order.id, actor=actor, now=now, method="store")


def order_expiry_of(order: PurchaseOrder, now: datetime) -> timedelta:
    """How long the order's hold still lasts (zero when it has run out)."""
    return max(order.hold_until - now, timedelta(0))
