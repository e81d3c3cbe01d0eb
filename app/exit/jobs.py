"""Scheduled work of the market exit: executing it at its instant (DESIGN §12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from app.core.audit import Actor
from app.core.config import Settings
from app.core.db import Database
from app.core.scheduling import Job
from app.exit.schedule import current_exit
from app.exit.workflow import exit_folder, run_execution


def execute_due_exit(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Execute an announced exit once its instant has come; finish one executed but not completed.

    The files go to the instance's exit folder (`workflow.exit_folder`);
    nothing happens before the instant or when no exit is announced.
    """
    with db.transaction(write=False) as session:
        found = current_exit(session)
        due = found is not None and (
            (found.state == "announced" and now >= found.exit_at) or found.state == "executed"
        )
    if not due:
        return {"executed": 0}
    result = run_execution(
        db, settings=settings, actor=Actor.system("exit"), now=now, out_dir=exit_folder(settings)
    )
    return {"executed": 1, **{k: v for k, v in result.items() if k != "files"}}


JOBS: tuple[Job, ...] = (
    Job(
        id="exit_execute",
        func=execute_due_exit,
        trigger=IntervalTrigger(minutes=1),
        description="Execute the announced market exit at its instant and write its files",
        own_transactions=True,
    ),
)
