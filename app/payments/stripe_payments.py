"""Card payments through Stripe Checkout (DESIGN §5).

`create_stripe_payment` refuses above the cap and writes our payment row;
`begin_checkout` commits it, then asks Stripe for a Checkout Session with
the row's id as the idempotency key. The money is booked only when
Stripe's signed webhook says the session was paid (app/payments/webhooks.py
calls `complete_stripe_payment`), by `receive_money`: up to the cap on the
balance, any excess to refunds payable with a refund queued back to the
same payment. Booking announces `PaymentSucceeded` (app/payments/events.py)
in the same unit of work; the store order a purchase paid for is completed
by its handler (app/onboarding/handlers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from app.core.audit import Actor, record_audit
from app.core.db import Database
from app.core.errors import N_, InvalidInput
from app.core.events import emit
from app.core.money import check_amount
from app.ledger.cap import ensure_within_cap
from app.ledger.events import CustomerCredited
from app.ledger.movements import Receipt, receive_money
from app.payments.events import PaymentSucceeded
from app.payments.models import PAYMENT_PURPOSES, Payment, Refund
from app.payments.services import MoneyPolicy, get_payment, lock_payment
from app.payments.stripe_gateway import StripeGateway
from app.subscribers.services import get_customer


def create_stripe_payment(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    purpose: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
) -> Payment:
    """Our row for a card payment, written before Stripe hears of it.

    :raises CapExceeded: the amount would pass the cap (refused before any
        money is taken), naming the largest amount allowed now.
    """
    check_amount(amount_minor)
    if purpose not in PAYMENT_PURPOSES:
        raise InvalidInput(N_("Unknown purpose %(purpose)s."), field="purpose", purpose=purpose)
    get_customer(session, customer_id)
    ensure_within_cap(
        session, customer_id=customer_id, amount_minor=amount_minor, **policy.cap_kwargs()
    )
    payment = Payment(
        customer_id=customer_id,
        method="stripe",
        purpose=purpose,
        status="created",
        amount_minor=amount_minor,
        currency=policy.currency,
        created_by=actor.label or actor.kind,
        created_at=now,
    )
    session.add(payment)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="payment.create",
        now=now,
        target_type="payment",
        target_id=payment.id,
        details={"customer_id": customer_id, "method": "stripe", "amount_minor": amount_minor},
    )
    return payment


def begin_checkout(
    db: Database,
    gateway: StripeGateway,
    *,
    customer_id: int,
    amount_minor: int,
    purpose: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
    urls: Callable[[int], tuple[str, str]],
    description: str,
    locale: str | None = None,
) -> Payment:
    """Create our payment (committed), then its Stripe Checkout Session.

    `urls(payment_id)` gives the success and cancel addresses. Runs its own
    transactions so no database lock is held while Stripe is called.
    :raises CapExceeded: refused before any money is taken.
    :raises PaymentProviderError: Stripe did not answer; the payment stays
        `created` and can be opened again with `open_checkout`.
    """
    with db.transaction() as session:
        payment = create_stripe_payment(
            session,
            customer_id=customer_id,
            amount_minor=amount_minor,
            purpose=purpose,
            actor=actor,
            now=now,
            policy=policy,
        )
        payment_id = payment.id
    assert payment_id is not None
    success_url, cancel_url = urls(payment_id)
    return open_checkout(
        db,
        gateway,
        payment_id=payment_id,
        success_url=success_url,
        cancel_url=cancel_url,
        description=description,
        locale=locale,
    )


def open_checkout(
    db: Database,
    gateway: StripeGateway,
    *,
    payment_id: int,
    success_url: str,
    cancel_url: str,
    description: str,
    locale: str | None = None,
) -> Payment:
    """The payment with its Checkout Session; asks Stripe only if it has none yet.

    Safe to repeat: the idempotency key is the payment's id.
    """
    with db.transaction(write=False) as session:
        payment = get_payment(session, payment_id)
        if payment.stripe_session_id is not None or payment.status != "created":
            session.expunge(payment)
            return payment
        customer = get_customer(session, payment.customer_id)
        amount, currency, ref, email = (
            payment.amount_minor,
            payment.currency,
            customer.ref,
            customer.email,
        )
    checkout = gateway.create_checkout_session(
        payment_id=payment_id,
        amount_minor=amount,
        currency=currency,
        description=description,
        customer_ref=ref,
        customer_email=email,
        success_url=success_url,
        cancel_url=cancel_url,
        locale=locale,
    )
    with db.transaction() as session:
        payment = lock_payment(session, payment_id)
        if payment.stripe_session_id is None:
            payment.stripe_session_id = checkout.id
            payment.checkout_url = checkout.url
            if payment.status == "created":
                payment.status = "pending"
            session.add(payment)
            session.flush()
        session.expunge(payment)
    return payment


def _queue_cap_excess_refund(
    session: Session, payment: Payment, receipt: Receipt, *, actor: Actor, now: datetime
) -> None:
    """Queue the part of a card payment above the prepayment cap as a refund to that payment."""
    refund = Refund(
        customer_id=payment.customer_id,
        payment_id=payment.id,
        reason="cap_excess",
        status="pending",
        amount_minor=receipt.excess_minor,
        currency=payment.currency,
        attempts=1,
        journal_entry_id=receipt.entry.id,
        note="above the prepayment cap",
        created_by=actor.label,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="refund.queue",
        now=now,
        target_type="refund",
        target_id=refund.id,
        details={"payment_id": payment.id, "amount_minor": refund.amount_minor},
    )


def complete_stripe_payment(
    session: Session,
    *,
    payment_id: int,
    amount_received_minor: int,
    stripe_session_id: str,
    payment_intent_id: str | None,
    now: datetime,
    policy: MoneyPolicy,
) -> Payment:
    """Book a paid Checkout Session. Idempotent; wins over an earlier expiry.

    Credited up to the cap; any excess is queued as a refund to this payment.
    A top-up is then announced (`CustomerCredited`: charging renews and
    resumes the lines an unpaid renewal suspended); a purchase's money goes
    to its order first. Every booking then announces `PaymentSucceeded` in
    the same unit of work (the store order a purchase paid for is completed
    by its handler in app/onboarding); a handler's error undoes the booking.
    """
    payment = lock_payment(session, payment_id)
    if payment.status == "succeeded":
        return payment
    actor = Actor.system("stripe")
    receipt = receive_money(
        session,
        customer_id=payment.customer_id,
        amount_minor=amount_received_minor,
        source_kind="cash_stripe",
        idempotency_key=f"payment:{payment.id}",
        actor=actor,
        now=now,
        currency=payment.currency,
        memo=f"card payment {payment.id}",
        external_ref=payment_intent_id or stripe_session_id,
        **policy.cap_kwargs(),
    )
    payment.status = "succeeded"
    payment.amount_minor = amount_received_minor
    payment.credited_minor = receipt.credited_minor
    payment.stripe_session_id = payment.stripe_session_id or stripe_session_id
    payment.stripe_payment_intent_id = payment_intent_id
    payment.journal_entry_id = receipt.entry.id
    payment.completed_at = now
    session.add(payment)
    session.flush()
    if receipt.excess_minor:
        _queue_cap_excess_refund(session, payment, receipt, actor=actor, now=now)
    if payment.purpose == "topup":
        emit(session, CustomerCredited(customer_id=payment.customer_id, actor=actor, now=now))
    assert payment.id is not None
    emit(
        session,
        PaymentSucceeded(
            payment_id=payment.id, customer_id=payment.customer_id, purpose=payment.purpose, now=now
        ),
    )
    return payment


def close_stripe_payment(
    session: Session, *, payment_id: int, status: str, now: datetime
) -> Payment:
    """A Checkout Session expired or its payment failed; a paid one stays paid."""
    payment = lock_payment(session, payment_id)
    if payment.status in ("created", "pending"):
        payment.status = status
        payment.completed_at = now
        session.add(payment)
        session.flush()
    return payment
