"""The `mvno refunds` group: queued card refunds sent to Stripe."""

from __future__ import annotations

from datetime import datetime

from flask.cli import AppGroup, with_appcontext

from app.cli.common import database, emit, fail, json_option, now_option, refusals, settings

refunds_cli = AppGroup("refunds", help="Refunds: send queued card refunds to Stripe.")


@refunds_cli.command("send")
@with_appcontext
@json_option
@now_option
@refusals
def refunds_send(as_json: bool, now: datetime) -> None:
    """Send queued card refunds and check those still processing (as the scheduler does)."""
    from app.payments.refunds import send_pending_refunds, sync_processing_refunds
    from app.payments.stripe_gateway import StripeGateway

    gateway = StripeGateway.from_settings(settings())
    if gateway is None:
        fail("Stripe is not configured (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)")
    sent = send_pending_refunds(database(), gateway, now=now)
    checked = sync_processing_refunds(database(), gateway, now=now)
    text = f"sent {sent}, checked {checked}"
    emit({"sent": sent, "checked": checked}, as_json=as_json, text=text)
