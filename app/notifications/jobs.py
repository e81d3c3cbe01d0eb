"""Scheduler job of the notification outbox (registered in app/jobs.py)."""

from __future__ import annotations

from datetime import datetime

from app.core.config import Settings
from app.core.db import Database
from app.notifications.mailer import send_notifications


def send_due_notifications(db: Database, settings: Settings, now: datetime) -> dict[str, int]:
    """Send due notices by e-mail (or the log); opens its own transactions (SMTP calls out)."""
    return send_notifications(db, now=now, settings=settings).as_dict()
