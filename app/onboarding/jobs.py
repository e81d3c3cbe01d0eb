"""Scheduled work of the onboarding package."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from app.core.scheduling import Job
from app.onboarding.orders import expire_orders


def expire_purchase_orders(session: Session, now: datetime) -> int:
    """Expire store orders whose number hold ran out before they were paid."""
    return expire_orders(session, now=now)


JOBS: tuple[Job, ...] = (
    Job(
        id="expire_purchase_orders",
        func=expire_purchase_orders,
        trigger=IntervalTrigger(minutes=1),
        description="Expire store orders whose number hold ran out before payment",
    ),
)
