"""Paying for a store order and completing it (DESIGN §10).

Rules:

* **Paid from the prepaid balance.** Whatever tops the balance up — a card
  payment (Stripe), a voucher, cash at a store — completing the order
  debits `total_minor` (plan price + the number's golden surcharge) from the
  balance as plan revenue, idempotency key `order:<id>`. A balance that
  already covers the total pays directly.
* **One workflow per way of paying.** `pay_from_balance`, `pay_by_voucher`
  and `pay_by_card` each expire the order first when its hold ran out
  (that expiry is kept even though the payment is refused), then pay. A
  voucher's value stays on the balance when it does not cover the order.
  A card payment is for the shortfall; Stripe is called outside any
  transaction (`pay_by_card` runs its own units of work), and the money is
  booked by Stripe's signed webhook, whose `PaymentSucceeded` event
  completes the order (app/onboarding/handlers.py).
* **Completion** (`complete_order`) locks the order row and is idempotent:
  debit, number assigned, SIM of the kind taken from stock, line opened
  `pending`, the `activate` event written for the host, an audit record and
  the `order_paid` notice — all in the caller's transaction, so a refusal
  (no SIM left, balance short) leaves nothing charged. The line's first
  period opens when the host confirms the activation (lifecycle).
* **No new line after a market exit is announced.** Completing an order
  opens a line, so it is refused (`SalesClosed`) once an exit is announced,
  even for an order placed before; paying refuses before taking any money.
* **Late money.** A card payment that arrives after expiry still completes
  the order when the number is free again; otherwise the money stays on
  the balance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.charging.errors import SalesClosed
from app.charging.horizon import ensure_sales_open
from app.core import limits
from app.core.audit import Actor
from app.core.db import Database
from app.core.errors import N_, DomainError, clean_text
from app.core.money import format_plain
from app.ledger.activity import plan_tag
from app.ledger.balances import customer_balance
from app.ledger.movements import charge_customer
from app.onboarding.orders import (
    audit_order,
    expire_due,
    link_payment,
    lock_open_order,
    no_stock,
    order_holder,
    shortfall_minor,
)
from app.payments.errors import StripeNotConfigured
from app.payments.models import Payment
from app.payments.services import MoneyPolicy, record_offline_payment
from app.payments.stripe_gateway import StripeGateway
from app.payments.stripe_payments import begin_checkout
from app.payments.vouchers import VoucherPolicy, redeem_voucher
from app.subscribers import lifecycle
from app.subscribers.errors import (
    NoSimStock,
    OrderNotPayable,
    OrderStateError,
    OrderUnpaid,
)
from app.subscribers.models import Customer, PurchaseOrder
from app.subscribers.notices import notify_customer
from app.subscribers.services import open_line
from numbering.errors import NumberUnavailable, SimUnavailable
from numbering.lifecycle import assign_number, reserve_number
from numbering.models import Sim
from numbering.sims import take_sim_from_stock
from plans.models import Plan

log = logging.getLogger(__name__)

__all__ = [
    "COMPLETION_REFUSALS",
    "CardCheckout",
    "VoucherPayment",
    "complete_order",
    "complete_order_for_payment",
    "pay_by_card",
    "pay_by_voucher",
    "pay_from_balance",
    "payable_order",
    "record_store_payment",
]

# What completing an order may refuse with (paying refusals that concern the
# order, not the means of payment).
COMPLETION_REFUSALS: tuple[type[DomainError], ...] = (
    SalesClosed,
    OrderStateError,
    OrderUnpaid,
    NumberUnavailable,
    NoSimStock,
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
                return take_sim_from_stock(
                    session, iccid=iccid, host_id=host_id, status="assigned", now=now
                )
            except SimUnavailable:
                continue
    raise no_stock(kind)


def _check_balance_covers(session: Session, order: PurchaseOrder, *, customer_id: int) -> None:
    """:raises OrderUnpaid: the balance is short of the order total (names the shortfall)."""
    balance = customer_balance(session, customer_id=customer_id)
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


def _announce_completion(
    session: Session,
    order: PurchaseOrder,
    customer: Customer,
    plan: Plan,
    sim: Sim,
    *,
    actor: Actor,
    now: datetime,
    was: str,
) -> None:
    """The completed order's audit record and the buyer's `order_paid` notice."""
    audit_order(
        session,
        order,
        actor=actor,
        action="order.complete",
        now=now,
        details={
            "customer": customer.ref,
            "msisdn": order.msisdn,
            "iccid": sim.iccid,
            "line_id": order.line_id,
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
    :raises SalesClosed: a market exit is announced; nothing is charged.
    """
    order = lock_open_order(session, order_id)
    if order.status == "paid":
        return order
    ensure_sales_open(session)
    assert order.id is not None
    plan = session.get(Plan, order.plan_id)
    customer = session.get(Customer, order.customer_id)
    assert plan is not None and customer is not None and customer.id is not None
    _check_balance_covers(session, order, customer_id=customer.id)
    holder = order_holder(order.ref)
    # Holding again extends our own live hold or retakes a lapsed one that
    # nobody else took; then the hold becomes the assignment.
    reserve_number(session, msisdn=order.msisdn, holder=holder, now=now)
    assign_number(session, msisdn=order.msisdn, holder=holder, now=now)
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
            tag=plan_tag(plan.code),
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
    _announce_completion(session, order, customer, plan, sim, actor=actor, now=now, was=was)
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
    :raises SalesClosed: a market exit is announced; no payment is recorded.
    """
    reference = clean_text(reference, field="reference", max_length=limits.REFERENCE, required=True)
    order = lock_open_order(session, order_id)
    if order.status == "paid":
        return order
    ensure_sales_open(session)
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


# -- paying -------------------------------------------------------------------------------


def payable_order(session: Session, *, order_id: int, now: datetime) -> PurchaseOrder:
    """The order, locked, if it still takes payment; expired first when its hold ran out.

    :raises OrderNotPayable: it is paid, cancelled or expired. The refusal
        keeps the unit of work, so an expiry just recorded is committed.
    :raises OrderNotFound: no such order.
    :raises SalesClosed: a market exit is announced (before any money is taken).
    """
    order = expire_due(session, order_id=order_id, now=now)
    if order.status != "awaiting_payment":
        raise _not_payable(order)
    ensure_sales_open(session)
    return order


def _not_payable(order: PurchaseOrder) -> OrderNotPayable:
    return OrderNotPayable(N_("This order can no longer be paid."), field="status", ref=order.ref)


def pay_from_balance(
    session: Session, *, order_id: int, actor: Actor, now: datetime
) -> PurchaseOrder:
    """The buyer pays an order awaiting payment from the balance they already hold.

    Locks the order (see `payable_order` and `complete_order`).
    :raises OrderNotPayable: the order no longer takes payment.
    :raises OrderUnpaid, NumberUnavailable, NoSimStock: from `complete_order`; nothing is charged.
    """
    order = payable_order(session, order_id=order_id, now=now)
    assert order.id is not None
    return complete_order(session, order_id=order.id, actor=actor, now=now, method="balance")


@dataclass(frozen=True)
class VoucherPayment:
    """The order after a voucher was redeemed for it, and the balance it left."""

    order: PurchaseOrder
    balance_minor: int
    shortfall_minor: int

    @property
    def paid(self) -> bool:
        return self.order.status == "paid"


def pay_by_voucher(
    session: Session,
    *,
    order_id: int,
    serial: str,
    pin: str,
    ip: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
    voucher_policy: VoucherPolicy,
) -> VoucherPayment:
    """Redeem a voucher into the buyer's balance for an order, and complete the order
    when the balance then covers it.

    A voucher short of the total stays on the balance and the order waits for
    the rest. The voucher's credit does not renew a suspended line first.
    Locks the order, then the voucher (app/payments/vouchers.py).
    :raises OrderNotPayable: the order no longer takes payment.
    :raises VoucherInvalid, VoucherLocked, VoucherVoid, VoucherExpired,
        VoucherAlreadyRedeemed, CapExceeded: the voucher was refused (a wrong
        PIN's attempt is kept, see `VoucherInvalid.keeps_transaction`).
    :raises OrderUnpaid, NumberUnavailable, NoSimStock: completing failed; the
        voucher's redemption is undone with it.
    """
    order = payable_order(session, order_id=order_id, now=now)
    assert order.id is not None
    # The voucher pays this order: it must not renew a suspended line first.
    redeem_voucher(
        session,
        customer_id=order.customer_id,
        serial=serial,
        pin=pin,
        ip=ip,
        actor=actor,
        now=now,
        policy=voucher_policy,
        renew_suspended=False,
        **policy.cap_kwargs(),
    )
    shortfall = shortfall_minor(session, order)
    if shortfall <= 0:
        order = complete_order(session, order_id=order.id, actor=actor, now=now, method="voucher")
    balance = customer_balance(session, customer_id=order.customer_id)
    return VoucherPayment(order=order, balance_minor=balance, shortfall_minor=shortfall)


@dataclass(frozen=True)
class CardCheckout:
    """Where paying an order by card led: paid at once, or to Stripe Checkout."""

    paid: bool
    checkout_url: str = ""


def pay_by_card(
    db: Database,
    gateway: StripeGateway | None,
    *,
    order_id: int,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
    return_url: str,
    description: str,
    locale: str | None = None,
) -> CardCheckout:
    """Send the buyer to Stripe Checkout for what the balance lacks for an order.

    Runs its own units of work, so no database lock is held while Stripe is
    called: first the order is expired if due and checked, and completed
    at once when the balance already covers it (committed); then
    `begin_checkout` commits the card payment for the shortfall, asks Stripe
    for a Checkout Session outside any transaction and records it; last the
    order remembers the payment (`link_payment`). The money is booked, and
    the order completed, by Stripe's signed webhook. `return_url` is where
    Stripe sends the buyer back, paid or not.
    :raises OrderNotPayable: the order no longer takes payment (an expiry is committed).
    :raises SalesClosed: a market exit is announced; Stripe is not called.
    :raises StripeNotConfigured: no gateway.
    :raises OrderUnpaid, NumberUnavailable, NoSimStock: completing from the balance failed.
    :raises CapExceeded, PaymentProviderError: from `begin_checkout`; the order is not linked.
    """
    with db.transaction() as session:
        order = expire_due(session, order_id=order_id, now=now)
        payable = order.status == "awaiting_payment"
        if payable:
            ensure_sales_open(session)
        shortfall = 0
        if payable and gateway is not None:
            shortfall = shortfall_minor(session, order)
            if shortfall <= 0:
                complete_order(session, order_id=order_id, actor=actor, now=now, method="balance")
        customer_id = order.customer_id
    if not payable:
        raise _not_payable(order)
    if gateway is None:
        raise StripeNotConfigured(N_("Card payments (Stripe) are not configured."))
    if shortfall <= 0:
        return CardCheckout(paid=True)
    payment = begin_checkout(
        db,
        gateway,
        customer_id=customer_id,
        amount_minor=shortfall,
        purpose="purchase",
        actor=actor,
        now=now,
        policy=policy,
        urls=lambda _payment_id: (return_url, return_url),
        description=description,
        locale=locale,
    )
    assert payment.id is not None
    with db.transaction() as session:
        link_payment(session, order_id=order_id, payment_id=payment.id, method="stripe", now=now)
    return CardCheckout(paid=False, checkout_url=payment.checkout_url or "")
