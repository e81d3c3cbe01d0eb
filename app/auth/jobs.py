"""Scheduled work of the auth package."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session

from app.auth.services import purge_login_attempts
from app.core.scheduling import Job


def purge_old_login_attempts(session: Session, now: datetime) -> int:
    """Delete login attempts older than 30 days; returns how many. Idempotent."""
    return purge_login_attempts(session, now=now, keep_days=30)


JOBS: tuple[Job, ...] = (
    Job(
        id="purge_login_attempts",
        func=purge_old_login_attempts,
        trigger=CronTrigger(hour=3, minute=17, timezone="UTC"),
        description="Delete login attempts older than 30 days",
    ),
)
