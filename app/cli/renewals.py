"""The `mvno renewals` group: renewals at period end."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals, settings

renewals_cli = AppGroup("renewals", help="Renewals at period end (DESIGN §9).")


@renewals_cli.command("run")
@click.option(
    "--limit",
    type=click.IntRange(1, None),
    default=None,
    help="Handle at most N due lines (and N terminations) in this run.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Batches taken at once on PostgreSQL (SQLite and --limit: one).",
)
@json_option
@now_option
@refusals
def renewals_run(limit: int | None, workers: int, as_json: bool, now: datetime) -> None:
    """Renew due lines, suspend unpaid ones, resume paid ones, terminate those unpaid 90 days.

    One transaction per batch of lines; a rerun with the same --now does nothing.
    """
    from app.charging.renewals import run_renewals

    report = run_renewals(
        database(),
        now=now,
        limit=limit,
        workers=workers,
        quarantine_days=settings().number_quarantine_days,
    ).as_dict()
    text = (
        "{lines_seen} due: {renewed} renewed ({periods_opened} periods), {suspended} suspended,"
        " {unpaid} unpaid, {resumed} resumed, {terminated} terminated"
    ).format(**report)
    emit(report, as_json=as_json, text=text)
