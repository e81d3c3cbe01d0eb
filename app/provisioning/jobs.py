"""Scheduler job of the provisioning outbox."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.interval import IntervalTrigger

from app.core.config import Settings
from app.core.db import Database
from app.core.scheduling import Job
from app.provisioning.services import deliver_pending


def deliver_provisioning(db: Database, settings: Settings, now: datetime) -> dict[str, int]:
    """Deliver due outbox events; opens its own transactions (adapters call out)."""
    return deliver_pending(db, now=now, settings=settings).as_dict()


JOBS: tuple[Job, ...] = (
    Job(
        id="deliver_provisioning",
        func=deliver_provisioning,
        trigger=IntervalTrigger(minutes=1),
        description="Deliver due provisioning events to the hosts, with retries",
        own_transactions=True,
    ),
)
