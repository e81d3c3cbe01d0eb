"""Scheduler job of the provisioning outbox (registered in app/jobs.py)."""

from __future__ import annotations

from datetime import datetime

from app.core.config import Settings
from app.core.db import Database
from app.provisioning.services import deliver_pending


def deliver_provisioning(db: Database, settings: Settings, now: datetime) -> dict[str, int]:
    """Deliver due outbox events; opens its own transactions (adapters call out)."""
    return deliver_pending(db, now=now, settings=settings).as_dict()
