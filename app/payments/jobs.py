"""Scheduled work of the payments package."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.interval import IntervalTrigger

from app.core.config import Settings
from app.core.db import Database
from app.core.scheduling import Job
from app.payments.refunds import send_pending_refunds, sync_processing_refunds
from app.payments.stripe_gateway import StripeGateway


def send_refunds(db: Database, settings: Settings, now: datetime) -> dict[str, int]:
    """Send queued card refunds and ask Stripe about those still processing.

    Opens its own transactions (Stripe calls out); does nothing when Stripe
    is not configured.
    """
    gateway = StripeGateway.from_settings(settings)
    if gateway is None:
        return {"sent": 0, "checked": 0}
    return {
        "sent": send_pending_refunds(db, gateway, now=now),
        "checked": sync_processing_refunds(db, gateway, now=now),
    }


JOBS: tuple[Job, ...] = (
    Job(
        id="send_refunds",
        func=send_refunds,
        trigger=IntervalTrigger(minutes=1),
        description="Send queued card refunds to Stripe and follow those still processing",
        own_transactions=True,
    ),
)
