"""Scheduled work of the subscribers package (listed in app/jobs.py JOBS)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.subscribers.orders import expire_orders


def expire_purchase_orders(session: Session, now: datetime) -> int:
    """Expire store orders whose number hold ran out before they were paid."""
    return expire_orders(session, now=now)
