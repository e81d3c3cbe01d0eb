"""The `mvno line` group: a line's status, current period and allowances."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals, settings
from app.core.clock import parse_instant
from app.core.money import format_plain

line_cli = AppGroup("line", help="Lines: status, current period and allowances.")


@line_cli.command("show")
@click.argument("msisdn")
@click.option(
    "--at", "at_text", metavar="ISO8601", help="Show the period containing this time instead."
)
@json_option
@now_option
@refusals
def line_show(msisdn: str, at_text: str | None, as_json: bool, now: datetime) -> None:
    """Show a line: status, plan, the period in force (times in TIMEZONE), what remains of
    its allowances, and the customer's balance (minor units)."""
    from zoneinfo import ZoneInfo

    from app.charging.summary import line_summary

    config = settings()
    at = parse_instant(at_text, field="at") if at_text else None
    with database().transaction(write=False) as session:
        line = line_summary(session, msisdn=msisdn, now=now, at=at)
    zone = ZoneInfo(config.timezone)
    start = line.period_start.astimezone(zone).isoformat() if line.period_start else None
    end = line.period_end.astimezone(zone).isoformat() if line.period_end else None
    remaining = (
        None
        if line.data_kb is None
        else {"data_kb": line.data_kb, "voice_s": line.voice_s, "sms": line.sms}
    )
    data = {
        "msisdn": line.msisdn,
        "status": line.status,
        "plan": line.plan,
        "period_start": start,
        "period_end": end,
        "remaining": remaining,
        "balance": line.balance_minor,
        "currency": config.currency,
    }
    period = f"period {start} to {end}" if start else "no period"
    left = (
        f"remaining: data {line.data_kb} KB, voice {line.voice_s} s, SMS {line.sms}"
        if remaining
        else "remaining: -"
    )
    text_out = "\n".join(
        [
            f"{line.msisdn}: {line.status}, plan {line.plan}",
            period,
            left,
            f"balance {format_plain(line.balance_minor)} {config.currency}",
        ]
    )
    emit(data, as_json=as_json, text=text_out)
