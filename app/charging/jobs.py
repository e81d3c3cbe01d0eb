"""Scheduler job of renewals (registered in app/jobs.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.charging.renewals import DEFAULT_WORKERS, run_renewals
from app.core.config import Settings
from app.core.db import Database


def renew_lines(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Renew due lines; one transaction per batch (app/charging/renewals.py)."""
    return run_renewals(
        db, now=now, quarantine_days=settings.number_quarantine_days, workers=DEFAULT_WORKERS
    ).as_dict()
