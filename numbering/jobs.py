"""Scheduled work of the numbering package."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from app.core.scheduling import Job
from numbering.lifecycle import release_expired


def release_expired_numbers(session: Session, now: datetime) -> dict[str, int]:
    """Return expired checkout holds and ended quarantines to the pool of available numbers."""
    return release_expired(session, now=now)


JOBS: tuple[Job, ...] = (
    Job(
        id="release_expired_numbers",
        func=release_expired_numbers,
        trigger=IntervalTrigger(minutes=1),
        description="Return expired checkout holds and ended quarantines to the number pool",
    ),
)
