"""Scheduler jobs of mediation: the inbox, and settlement after each month closes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import select

from app.core.audit import Actor
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import DomainError
from app.core.scheduling import Job
from app.usage.inbox import process_inbox
from app.usage.settlement import export_settlement
from wholesale.models import HostCarrier, SettlementRun
from wholesale.services import list_hosts

ACTOR = Actor.system("settlement job")


def import_inbox(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Import the files waiting in every host's inbox folder; one transaction per file."""
    return process_inbox(db, instance_path=settings.instance_path, now=now).as_dict()


def previous_month(host: HostCarrier, now: datetime) -> str:
    """The calendar month before the one `now` falls in, in the host's time zone."""
    local = now.astimezone(ZoneInfo(host.timezone))
    last_day = local.replace(day=1) - timedelta(days=1)
    return f"{last_day.year:04d}-{last_day.month:02d}"


def settle_closed_month(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Export each host's settlement of the month just closed, once, into instance/settlement/."""
    done: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    with db.transaction(write=False) as session:
        hosts = list_hosts(session)
    for host in hosts:
        month = previous_month(host, now)
        try:
            result = _export_once(db, settings, host=host, month=month, now=now)
        except DomainError as exc:
            failed.append({"host": host.code, "month": month, "reason": exc.message})
            continue
        if result is not None:
            done.append(result)
    return {"exported": done, "failed": failed}


def _export_once(
    db: Database, settings: Settings, *, host: HostCarrier, month: str, now: datetime
) -> dict[str, Any] | None:
    """Export the host's month unless an export of it exists; its summary, or None."""
    with db.transaction() as session:
        exported = session.exec(
            select(SettlementRun.id).where(
                SettlementRun.host_id == host.id,
                SettlementRun.month == month,
                SettlementRun.kind == "export",
            )
        ).first()
        if exported is not None:
            return None
        result = export_settlement(
            session,
            host_code=host.code,
            month=month,
            out_dir=settings.instance_path / "settlement" / host.code,
            actor=ACTOR,
            now=now,
        )
    return result.as_dict()


JOBS: tuple[Job, ...] = (
    Job(
        id="usage_inbox",
        func=import_inbox,
        trigger=IntervalTrigger(minutes=1),
        description="Import usage files dropped in instance/inbox/<HOST>/",
        own_transactions=True,
    ),
    Job(
        id="settlement_export",
        func=settle_closed_month,
        trigger=CronTrigger(hour=6, minute=0),
        description="Export each host's settlement of the month just closed",
        own_transactions=True,
    ),
)
