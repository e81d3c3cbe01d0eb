"""Scheduled work of the onboarding package.

`JOBS` lists each job with the fields of the scheduler's `Job` entries
(app/jobs.py): `func(session, now)` runs in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from app.onboarding.orders import expire_orders


def expire_purchase_orders(session: Session, now: datetime) -> int:
    """Expire store orders whose number hold ran out before they were paid."""
    return expire_orders(session, now=now)


JOBS: tuple[dict[str, Any], ...] = (
    {
        "id": "expire_purchase_orders",
        "func": expire_purchase_orders,
        "trigger": IntervalTrigger(minutes=1),
        "description": "Expire store orders whose number hold ran out before payment",
    },
)
