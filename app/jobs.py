"""The scheduler's job table and the leader lock.

`mvno scheduler run` is its own process, never inside gunicorn. Before it
runs any job it takes a leader lock — a PostgreSQL advisory lock held on a
dedicated connection, or an exclusive file lock next to the SQLite database
— so two scheduler processes never run the same job at once; a second
process stands by until the first one exits. Each job runs in its own
transaction with `now` read once when it starts.

The job table is gathered from every package's `jobs.py` (`JOBS`), lowest
floor first; `--once` runs the jobs in that order.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from filelock import FileLock, Timeout
from sqlalchemy import Connection, text

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import Conflict
from app.core.floors import discover
from app.core.scheduling import Job

log = logging.getLogger(__name__)

# pg_try_advisory_lock key: "mvno-scheduler" folded into a signed 64-bit integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"mvnosche", "big", signed=True)


def collect_jobs() -> tuple[Job, ...]:
    """Every package's `jobs.JOBS`, lowest floor first (DESIGN §2).

    :raises ValueError: two packages use the same job id.
    """
    jobs: list[Job] = []
    for module in discover("jobs"):
        jobs.extend(module.JOBS)
    ids = [job.id for job in jobs]
    duplicates = sorted({job_id for job_id in ids if ids.count(job_id) > 1})
    if duplicates:
        raise ValueError(f"job ids used twice: {', '.join(duplicates)}")
    return tuple(jobs)


JOBS: tuple[Job, ...] = collect_jobs()


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
        """Take the lock without waiting; False when another process holds it."""
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
        """Give the lock up; a lock not held is left as it is."""
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
    """Run the job table (every job once with `once`) while holding the leader lock.

    :raises LeaderLockHeld: another process holds the lock and `wait_for_lock` is off.
    """
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
