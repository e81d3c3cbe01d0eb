"""Scheduler job of renewals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from app.charging.renewals import DEFAULT_WORKERS, run_renewals
from app.core.config import Settings
from app.core.db import Database
from app.core.scheduling import Job


def renew_lines(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Renew due lines; one transaction per batch (app/charging/renewals.py)."""
    return run_renewals(
        db, now=now, quarantine_days=settings.number_quarantine_days, workers=DEFAULT_WORKERS
    ).as_dict()


JOBS: tuple[Job, ...] = (
    Job(
        id="renew_lines",
        func=renew_lines,
        trigger=IntervalTrigger(minutes=10),
        description="Renew lines at period end; suspend unpaid, resume paid, terminate"
        " after 90 days unpaid",
        own_transactions=True,
    ),
)
