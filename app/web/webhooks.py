"""Stripe's webhook endpoint: `POST /webhooks/stripe`.

The signature is verified on the raw body before anything in it is
believed (400 otherwise, so Stripe shows the failure and retries). A
verified event is applied by `handle_stripe_event` in this request's
transaction, which also stores the event id: a redelivery, an unknown
type or an event about something we do not know answers 200 and changes
nothing. Any other failure is a 500 and Stripe delivers the event again.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, request

from app.core.clock import utcnow
from app.payments.services import MoneyPolicy
from app.payments.stripe_gateway import StripeGateway
from app.payments.webhooks import handle_stripe_event
from app.subscribers.orders import complete_order_for_payment
from app.web.context import db_session, settings

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.route("/stripe", methods=["POST"])
def stripe_webhook() -> Any:
    config = settings()
    gateway = StripeGateway.from_settings(config)
    if gateway is None:
        abort(404)
    event = gateway.verify_event(request.get_data(), request.headers.get("Stripe-Signature"))
    now = utcnow()
    outcome = handle_stripe_event(
        db_session(), event=event, now=now, policy=MoneyPolicy.from_settings(config)
    )
    _complete_purchase(event, now)
    log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return {"received": True, "outcome": outcome}


def _complete_purchase(event: dict[str, Any], now: Any) -> None:
    """A paid Checkout Session for a store order completes the order (its own savepoint)."""
    if not str(event.get("type", "")).startswith("checkout.session."):
        return
    obj = event.get("data", {}).get("object") or {}
    metadata = obj.get("metadata") or {}
    try:
        payment_id = int(metadata.get("payment_id") or obj.get("client_reference_id") or 0)
    except (TypeError, ValueError):
        return
    if 0 < payment_id < 2**63:
        complete_order_for_payment(db_session(), payment_id=payment_id, now=now)
