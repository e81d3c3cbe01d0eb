"""The `mvno provisioning` group: the provisioning outbox to the hosts."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals, settings

provisioning_cli = AppGroup("provisioning", help="The provisioning outbox to the hosts.")


@provisioning_cli.command("deliver")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@now_option
@refusals
def provisioning_deliver(limit: int, as_json: bool, now: datetime) -> None:
    """Deliver due provisioning events (as the scheduler does every minute)."""
    from app.provisioning.services import deliver_pending

    report = deliver_pending(database(), now=now, settings=settings(), limit=limit).as_dict()
    text = "delivered {delivered}, failed {failed}, dead {dead}".format(**report)
    emit(report, as_json=as_json, text=text)
