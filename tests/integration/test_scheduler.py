"""The scheduler's leader lock and job runs, on both backends."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from app.auth.models import LoginAttempt
from app.core.config import Settings
from app.core.db import Database
from app.jobs import JOBS, LeaderLock, run_job
from tests.factories import NOW

ROOT = Path(__file__).resolve().parents[2]


def test_only_one_process_holds_the_leader_lock(app):
    settings: Settings = app.extensions["mvno.settings"]
    first_db = Database(settings.database_url)
    second_db = Database(settings.database_url)
    first, second = LeaderLock(first_db, settings), LeaderLock(second_db, settings)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        second.release()
    finally:
        first.release()
        second.release()
        first_db.dispose()
        second_db.dispose()


def test_second_scheduler_process_refuses_while_the_leader_runs(app, backend):
    settings: Settings = app.extensions["mvno.settings"]
    holder_db = Database(settings.database_url)
    holder = LeaderLock(holder_db, settings)
    assert holder.try_acquire()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "INSTANCE_PATH": str(settings.instance_path),
        "SCHEDULER_LOCK_PATH": str(settings.scheduler_lock_path),
    }
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "mvno"), "scheduler", "run", "--once", "--no-wait"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    finally:
        holder.release()
        holder_db.dispose()
    assert result.returncode == 1
    assert "Another scheduler process holds the leader lock" in result.stderr


def test_jobs_run_in_their_own_transaction(db, session):
    for days in (1, 45):
        session.add(
            LoginAttempt(
                scope="staff", email="x@example.com", success=False, at=NOW - timedelta(days=days)
            )
        )
    session.commit()
    purge = next(job for job in JOBS if job.id == "purge_login_attempts")
    assert run_job(db, purge, now=NOW) == 1
    session.expire_all()
    assert [a.at for a in session.exec(select(LoginAttempt))] == [NOW - timedelta(days=1)]


def test_job_ids_are_unique():
    ids = [job.id for job in JOBS]
    assert len(ids) == len(set(ids))
