"""The scheduler's job table and the leader lock.

`mvno scheduler run` is its own process, never inside gunicorn. Before it
runs any job it takes a leader lock — a PostgreSQL advisory lock held on a
dedicated connection, or an exclusive file lock next to the SQLite database
— so two scheduler processes never run the same job at once; a second
process stands by until the first one exits. Each job runs in its own
transaction with `now` read once when it starts.

Later capabilities add their jobs to `JOBS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from filelock import FileLock, Timeout
from sqlalchemy import Connection, text
from sqlmodel import Session

from app.auth.services import purge_login_attempts
from app.charging.jobs import renew_lines
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import Conflict
from app.notifications.jobs import send_due_notifications
from app.onboarding.jobs import expire_purchase_orders
from app.provisioning.jobs import deliver_provisioning
from numbering.jobs import release_expired_numbers

log = logging.getLogger(__name__)

# pg_try_advisory_lock key: "mvno-scheduler" folded into a signed 64-bit integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"mvnosche", "big", signed=True)


@dataclass(frozen=True)
class Job:
    """A scheduled job: `func(session, now)` in one transaction, or, when it
    calls out (Stripe) and must not hold a transaction open meanwhile,
    `func(db, settings, now)` opening its own (`own_transactions`)."""

    id: str
    func: Callable[..., Any]
    trigger: BaseTrigger
    description: str
    own_transactions: bool = False


def _send_refunds(db: Database, settings: Settings, now: datetime) -> dict[str, int]:
    """Send queued card refunds and ask Stripe about those still processing."""
    from app.payments.refunds import send_pending_refunds, sync_processing_refunds
    from app.payments.stripe_gateway import StripeGateway

    gateway = StripeGateway.from_settings(settings)
    if gateway is None:
        return {"sent": 0, "checked": 0}
    return {
        "sent": send_pending_refunds(db, gateway, now=now),
        "checked": sync_processing_refunds(db, gateway, now=now),
    }


def _purge_login_attempts(session: Session, now: datetime) -> int:
    return purge_login_attempts(session, now=now, keep_days=30)


JOBS: tuple[Job, ...] = (
    Job(
        id="release_expired_numbers",
        func=release_expired_numbers,
        trigger=IntervalTrigger(minutes=1),
        description="Return expired checkout holds and ended quarantines to the number pool",
    ),
    Job(
        id="expire_purchase_orders",
        func=expire_purchase_orders,
        trigger=IntervalTrigger(minutes=1),
        description="Expire store orders whose number hold ran out before payment",
    ),
    Job(
        id="purge_login_attempts",
        func=_purge_login_attempts,
        trigger=CronTrigger(hour=3, minute=17, timezone="UTC"),
        description="Delete login attempts older than 30 days",
    ),
    Job(
        id="send_refunds",
        func=_send_refunds,
        trigger=IntervalTrigger(minutes=1),
        description="Send queued card refunds to Stripe and follow those still processing",
        own_transactions=True,
    ),
    Job(
        id="deliver_provisioning",
        func=deliver_provisioning,
        trigger=IntervalTrigger(minutes=1),
        description="Deliver due provisioning events to the hosts, with retries",
        own_transactions=True,
    ),
    Job(
        id="renew_lines",
        func=renew_lines,
        trigger=IntervalTrigger(minutes=10),
        description="Renew lines at period end; suspend unpaid, resume paid, terminate"
        " after 90 days unpaid",
        own_transactions=True,
    ),
    Job(
        id="send_notifications",
        func=send_due_notifications,
        trigger=IntervalTrigger(minutes=1),
        description="Send due notifications by e-mail (or the mail log), with retries",
        own_transactions=True,
    ),
)


class LeaderLockHeld(Conflict):
    code = "scheduler_running"


class LeaderLock:
    """Exclusive right to run jobs: advisory lock on PostgreSQL, file lock on SQLite."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self._connection: Connection | None = None
        self._file_lock: FileLock | None = None

    def try_acquire(self) -> bool:
        if self.db.is_sqlite:
            path = (
                self.settings.scheduler_lock_path or self.settings.instance_path / "scheduler.lock"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path), is_singleton=False)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                return False
            self._file_lock = lock
            return True
        connection = self.db.engine.connect()
        got = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ).scalar()
        connection.commit()
        if got:
            self._connection = connection
            return True
        connection.close()
        return False

    def release(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None
        if self._connection is not None:
            self._connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
            self._connection.commit()
            self._connection.close()
            self._connection = None


def run_job(
    db: Database, job: Job, *, now: datetime | None = None, settings: Settings | None = None
) -> Any:
    """Run one job in its own transaction (or let it open its own)."""
    started = now or utcnow()
    if job.own_transactions:
        if settings is None:
            raise ValueError(f"job {job.id} needs the settings")
        result = job.func(db, settings, started)
        log.info("job %s done: %s", job.id, result)
        return result
    with db.transaction() as session:
        result = job.func(session, started)
    log.info("job %s done: %s", job.id, result)
    return result


def run_scheduler(
    db: Database,
    settings: Settings,
    *,
    once: bool = False,
    wait_for_lock: bool = True,
    poll_seconds: float = 5.0,
) -> None:
    lock = LeaderLock(db, settings)
    while not lock.try_acquire():
        if not wait_for_lock:
            raise LeaderLockHeld("Another scheduler process holds the leader lock.")
        log.info("another scheduler is the leader; standing by")
        time.sleep(poll_seconds)
    try:
        if once:
            for job in JOBS:
                run_job(db, job, settings=settings)
            return
        scheduler = BlockingScheduler(timezone="UTC")
        for job in JOBS:
            scheduler.add_job(
                run_job,
                trigger=job.trigger,
                args=(db, job),
                kwargs={"settings": settings},
                id=job.id,
                name=job.description,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
            )
        log.info("scheduler leader; %d job(s)", len(JOBS))
        scheduler.start()
    finally:
        lock.release()
