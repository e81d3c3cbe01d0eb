"""Scheduler job of the notification outbox."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.interval import IntervalTrigger

from app.core.config import Settings
from app.core.db import Database
from app.core.scheduling import Job
from app.notifications.mailer import send_notifications


def send_due_notifications(db: Database, settings: Settings, now: datetime) -> dict[str, int]:
    """Send due notices by e-mail (or the log); opens its own transactions (SMTP calls out)."""
    return send_notifications(db, now=now, settings=settings).as_dict()


JOBS: tuple[Job, ...] = (
    Job(
        id="send_notifications",
        func=send_due_notifications,
        trigger=IntervalTrigger(minutes=1),
        description="Send due notifications by e-mail (or the mail log), with retries",
        own_transactions=True,
    ),
)
