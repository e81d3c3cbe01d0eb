"""Stripe's webhook endpoint: `POST /webhooks/stripe`.

The signature is verified on the raw body before anything in it is
believed (400 otherwise, so Stripe shows the failure and retries). A
verified event is applied by `handle_stripe_event` in this request's
transaction, which also stores the event id: a redelivery, an unknown
type or an event about something we do not know answers 200 and changes
nothing. A paid store order is completed in the same transaction by the
handler of the payment's `PaymentSucceeded` event (app/onboarding). Any
other failure is a 500 and Stripe delivers the event again.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, request

from app.core.clock import utcnow
from app.payments.services import MoneyPolicy
from app.payments.stripe_gateway import StripeGateway
from app.payments.webhooks import handle_stripe_event
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
    outcome = handle_stripe_event(
        db_session(), event=event, now=utcnow(), policy=MoneyPolicy.from_settings(config)
    )
    log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return {"received": True, "outcome": outcome}
