"""A booked card payment completes its store order through `PaymentSucceeded`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from app.ledger.balances import customer_balance
from app.onboarding import handlers, orders, purchase
from app.payments.models import Payment, StripeEvent
from app.payments.stripe_payments import create_stripe_payment
from app.payments.webhooks import handle_stripe_event
from app.subscribers.errors import OrderNotPayable
from app.subscribers.models import Line, PurchaseOrder
from numbering.models import PhoneNumber
from tests.factories import NOW
from tests.unit.onboarding.test_orders import BUYER, POLICY, Buyer, add_sims, place
from tests.unit.subscribers.helpers import World, make_world


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="PAID")


def card_order(session: Session, world: World) -> tuple[PurchaseOrder, Payment]:
    """An order awaiting payment with a card payment for its total linked to it."""
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    assert order.id is not None
    payment = create_stripe_payment(
        session,
        customer_id=buyer.customer_id,
        amount_minor=order.total_minor,
        purpose="purchase",
        actor=BUYER,
        now=NOW,
        policy=POLICY,
    )
    assert payment.id is not None
    orders.link_payment(session, order_id=order.id, payment_id=payment.id, method="stripe", now=NOW)
    return order, payment


def paid_event(payment: Payment, *, event_id: str = "evt_paid_1") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": f"cs_{payment.id}",
                "payment_status": "paid",
                "amount_total": payment.amount_minor,
                "currency": payment.currency.lower(),
                "client_reference_id": str(payment.id),
                "metadata": {"payment_id": str(payment.id)},
                "payment_intent": f"pi_{payment.id}",
            }
        },
    }


def test_a_paid_checkout_event_alone_completes_the_purchase_order(session, world) -> None:
    order, payment = card_order(session, world)
    outcome = handle_stripe_event(
        session, event=paid_event(payment), now=NOW + timedelta(minutes=2), policy=POLICY
    )
    assert outcome == f"payment {payment.id} succeeded"
    session.refresh(order)
    assert order.status == "paid" and order.payment_method == "stripe"
    assert order.ref == f"O-{order.id:06d}"
    line = session.get(Line, order.line_id)
    assert line is not None and line.msisdn == order.msisdn and line.status == "pending"
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == order.msisdn)).one()
    assert number.status == "assigned"
    # The card's money paid the order: nothing is left on the balance.
    assert customer_balance(session, customer_id=order.customer_id) == 0


def test_a_redelivered_paid_event_completes_the_order_once(session, world) -> None:
    order, payment = card_order(session, world)
    event = paid_event(payment, event_id="evt_paid_twice")
    handle_stripe_event(session, event=event, now=NOW, policy=POLICY)
    line_id = session.get(PurchaseOrder, order.id).line_id  # type: ignore[union-attr]
    assert handle_stripe_event(session, event=event, now=NOW, policy=POLICY) == "duplicate"
    lines = session.exec(select(Line).where(Line.msisdn == order.msisdn)).all()
    assert [line.id for line in lines] == [line_id]


def test_a_failing_handler_rolls_back_the_payment_too(session, world, monkeypatch) -> None:
    order, payment = card_order(session, world)

    def boom(_session: Session, *, payment_id: int, now: Any) -> None:
        raise RuntimeError("handler failed")

    monkeypatch.setattr(handlers, "complete_order_for_payment", boom)
    with pytest.raises(RuntimeError, match="handler failed"):
        with session.begin_nested():
            handle_stripe_event(session, event=paid_event(payment), now=NOW, policy=POLICY)
    session.expire_all()
    assert session.get(Payment, payment.id).status == "created"  # type: ignore[union-attr]
    assert session.get(StripeEvent, "evt_paid_1") is None
    assert customer_balance(session, customer_id=order.customer_id) == 0
    assert session.get(PurchaseOrder, order.id).status == "awaiting_payment"  # type: ignore[union-attr]


def test_paying_an_expired_order_is_refused_and_keeps_the_expiry(session, world) -> None:
    add_sims(session, world, "esim")
    order = place(session, world, Buyer(session))
    assert order.id is not None
    later = order.hold_until + timedelta(seconds=1)
    with pytest.raises(OrderNotPayable) as refused:
        purchase.pay_from_balance(session, order_id=order.id, actor=BUYER, now=later)
    assert refused.value.keeps_transaction
    assert session.get(PurchaseOrder, order.id).status == "expired"  # type: ignore[union-attr]
