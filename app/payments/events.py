"""Events the payments package announces to the floors above it (app/core/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PaymentSucceeded:
    """A card payment was booked: Stripe said its Checkout Session was paid.

    Announced once, in the unit of work that booked the money, so a handler's
    refusal undoes the booking too. `purpose` is the payment's (`topup`,
    `purchase`); a store order paid by card is completed by its handler.
    """

    payment_id: int
    customer_id: int
    purpose: str
    now: datetime
