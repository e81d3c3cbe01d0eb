"""Scheduler jobs of customer service: SLA breaches and system tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from app.care.breaches import flag_breaches
from app.care.system_tickets import open_system_tickets as open_tickets
from app.core.config import Settings
from app.core.db import Database
from app.core.scheduling import Job


def flag_sla_breaches(session: Session, now: datetime) -> dict[str, Any]:
    """Flag SLA breaches once and queue the supervisors' e-mails (the job's transaction)."""
    return flag_breaches(session, now=now).as_dict()


def open_system_tickets(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Open tickets for new settlement disputes and dead provisioning events; one transaction.

    Opens its own transaction because the SLA due instants need `TIMEZONE`.
    """
    with db.transaction() as session:
        return open_tickets(session, now=now, timezone=settings.timezone).as_dict()


JOBS: tuple[Job, ...] = (
    Job(
        id="flag_sla_breaches",
        func=flag_sla_breaches,
        trigger=IntervalTrigger(minutes=5),
        description="Flag tickets past their first-response or resolution due time and"
        " e-mail the supervisors",
    ),
    Job(
        id="open_system_tickets",
        func=open_system_tickets,
        trigger=IntervalTrigger(minutes=10),
        description="Open tickets for open settlement disputes and dead-lettered"
        " provisioning events, once each",
        own_transactions=True,
    ),
)
