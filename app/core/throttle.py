"""Lockouts counted from a table of attempts (logins, voucher PINs).

Kept in the database so they hold across gunicorn workers and restarts. An
attempts table has at least `at` (UTCDateTime) and `success` (bool).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select


def locked_until(
    session: Session,
    attempt_model: Any,
    *conditions: Any,
    since: datetime,
    limit: int,
    minutes: int,
) -> datetime | None:
    """If `limit` failed attempts matching `conditions` happened after `since`, when the
    lock ends (`minutes` after the oldest of them); otherwise None."""
    failures = list(
        session.exec(
            select(attempt_model.at)
            .where(*conditions, col(attempt_model.success).is_(False), attempt_model.at > since)
            .order_by(col(attempt_model.at).desc())
            .limit(limit)
        )
    )
    if len(failures) < limit:
        return None
    return failures[-1] + timedelta(minutes=minutes)
