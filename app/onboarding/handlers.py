"""What onboarding does when a lower floor announces something (app/core/events.py)."""

from __future__ import annotations

from sqlmodel import Session

from app.core.events import on
from app.onboarding.purchase import complete_order_for_payment
from app.payments.events import PaymentSucceeded


@on(PaymentSucceeded)
def complete_paid_order(session: Session, event: PaymentSucceeded) -> None:
    """A booked card payment completes the store order it was made for, if any.

    Runs in the payment's unit of work; an order that cannot be completed
    leaves the money on the balance (`complete_order_for_payment`).
    """
    complete_order_for_payment(session, payment_id=event.payment_id, now=event.now)
