"""Scheduled work of the numbering package (listed in the job table, app/jobs.py)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from numbering.lifecycle import release_expired


def release_expired_numbers(session: Session, now: datetime) -> dict[str, int]:
    """Return expired checkout holds and ended quarantines to the pool of available numbers."""
    return release_expired(session, now=now)
