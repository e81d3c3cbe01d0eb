"""The `mvno scheduler` group: the background job process."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.cli.common import database, refusals, settings

scheduler_cli = AppGroup("scheduler", help="Background jobs (run as its own process).")


@scheduler_cli.command("run")
@click.option("--once", is_flag=True, help="Run every job once now, then exit.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Stand by until the leader lock is free (otherwise exit 1 at once).",
)
@refusals
def scheduler_run(once: bool, wait: bool) -> None:
    """Run the job table of app/jobs.py while holding the leader lock."""
    from app.jobs import run_scheduler

    run_scheduler(database(), settings(), once=once, wait_for_lock=wait)
