"""Scheduler job of the fraud rules: the scan (app/analytics/fraud.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from app.analytics.fraud import scan_fraud
from app.core.config import Settings
from app.core.db import Database
from app.core.scheduling import Job


def scan_fraud_rules(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Run the fraud rules and raise their new alerts; one transaction.

    Opens its own transaction because the rules' days are those of `TIMEZONE`.
    """
    with db.transaction() as session:
        return scan_fraud(session, now=now, timezone=settings.timezone).as_dict()


JOBS: tuple[Job, ...] = (
    Job(
        id="scan_fraud_rules",
        func=scan_fraud_rules,
        trigger=IntervalTrigger(minutes=30),
        description="Run the fraud and anomaly rules over recent usage and voucher PINs and"
        " raise their alerts, once each",
        own_transactions=True,
    ),
)
