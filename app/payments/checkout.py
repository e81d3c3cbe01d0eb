"""Card money movements a person starts from a page, each in its own units of work.

A call to Stripe never runs inside a database transaction: each function
here commits our operation row first (the payment, or reads the refund
already queued), calls Stripe outside any transaction with that row's id in
the idempotency key, and records Stripe's answer in a second unit of work.
So the entry point calling them must hold no write lock of its own
meanwhile (`app.web.context.own_units_of_work`). The functions take the
`Database` and open their units of work themselves; nothing else here
commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.core.audit import Actor
from app.core.db import Database
from app.core.errors import N_
from app.payments.errors import StripeNotConfigured
from app.payments.models import Payment, Refund
from app.payments.refunds import get_refund, send_refund
from app.payments.services import MoneyPolicy
from app.payments.stripe_gateway import StripeGateway
from app.payments.stripe_payments import begin_checkout
from app.subscribers.services import ensure_customer_for_account


def start_card_top_up(
    db: Database,
    gateway: StripeGateway,
    *,
    account_id: int,
    email: str,
    amount_minor: int,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
    urls: Callable[[int], tuple[str, str]],
    description: str,
    locale: str | None = None,
) -> Payment:
    """A subscriber's card top-up: our payment row, then its Stripe Checkout Session.

    The login's customer is created first if it has none yet (committed on
    its own, as a first top-up always did); the payment row is committed
    before Stripe is called and the session recorded after
    (`begin_checkout`). `urls(payment_id)` gives the success and cancel
    addresses.
    :raises CapExceeded: refused before any money is taken.
    :raises PaymentProviderError: Stripe did not answer; the payment stays `created`.
    """
    with db.transaction() as session:
        customer = ensure_customer_for_account(session, account_id=account_id, email=email, now=now)
        customer_id = customer.id
    assert customer_id is not None
    return begin_checkout(
        db,
        gateway,
        customer_id=customer_id,
        amount_minor=amount_minor,
        purpose="topup",
        actor=actor,
        now=now,
        policy=policy,
        urls=urls,
        description=description,
        locale=locale,
    )


def send_refund_now(
    db: Database, gateway: StripeGateway | None, *, refund_id: int, now: datetime
) -> Refund:
    """Send a pending card refund to Stripe now, at staff's request, and record the answer.

    A refund that is not pending (or has no card payment) is returned as it
    is. Safe to repeat: the Stripe call is keyed by refund id and attempt
    (`send_refund`).
    :raises RefundNotFound: no such refund (checked before Stripe's configuration).
    :raises StripeNotConfigured: no Stripe keys are set.
    :raises RefundStateError: the payment has no card charge to refund.
    :raises PaymentProviderError: Stripe could not be reached or refused the refund.
    """
    with db.transaction(write=False) as session:
        get_refund(session, refund_id)
    if gateway is None:
        raise StripeNotConfigured(N_("Card payments (Stripe) are not configured."))
    return send_refund(db, gateway, refund_id=refund_id, now=now)
