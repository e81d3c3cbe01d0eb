"""The `mvno notifications` group: the notification outbox."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals, settings

notifications_cli = AppGroup("notifications", help="The notification outbox (e-mail, SMS).")


@notifications_cli.command("send")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@now_option
@refusals
def notifications_send(limit: int, as_json: bool, now: datetime) -> None:
    """Send due notifications (as the scheduler does every minute)."""
    from app.notifications.mailer import send_notifications

    report = send_notifications(database(), now=now, settings=settings(), limit=limit).as_dict()
    text = "sent {sent}, failed {failed}, dead {dead}".format(**report)
    emit(report, as_json=as_json, text=text)
