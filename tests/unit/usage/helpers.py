"""Lines with periods, usage files and imports for the usage and rating tests."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from app.charging.models import LinePeriod
from app.charging.periods import open_period
from app.core.audit import Actor
from app.subscribers.models import Line
from app.usage.importer import ImportResult, import_usage_file
from plans.models import Plan
from tests.unit.charging.helpers import fund
from tests.unit.plans.helpers import make_plan, publish
from tests.unit.subscribers.helpers import World, make_line

T0 = datetime(2026, 10, 1, tzinfo=UTC)
IMPORT_NOW = datetime(2026, 10, 29, tzinfo=UTC)
ACTOR = Actor.system("usage test")
HEADER = "record_id,msisdn,service,start_time,quantity,called_number"
_files = itertools.count(1)
_plans = itertools.count(1)


@dataclass
class Subject:
    """A line with its first period, on a plan with small allowances."""

    world: World
    plan: Plan
    line: Line
    period: LinePeriod

    @property
    def msisdn(self) -> str:
        return self.line.msisdn


def small_plan(session: Session, world: World, **terms: Any) -> Plan:
    """1 MB (1024 KB), 2 minutes, 2 SMS; overage 0.05/MB, 0.15/min, 0.10/SMS; 60 s increment."""
    assert world.host.id is not None
    values = dict(
        data_mb=1,
        voice_min=2,
        sms=2,
        overage_data_per_mb_minor=5,
        overage_voice_per_min_minor=15,
        overage_sms_minor=10,
        voice_increment_s=60,
    )
    values.update(terms)
    plan = make_plan(session, host_id=world.host.id, code=f"TINY{next(_plans)}", **values)
    return publish(session, plan)


def subject(
    session: Session,
    world: World,
    *,
    plan: Plan | None = None,
    start: datetime = T0,
    balance: int = 0,
) -> Subject:
    """A new line of the world's customer on `plan` (default: a small plan), period from `start`."""
    plan = plan or small_plan(session, world)
    line = make_line(session, dataclasses.replace(world, plan=plan))
    period = open_period(session, line=line, plan=plan, start=start, now=start)
    if balance:
        fund(session, world, balance, key=f"fund:{line.id}:{balance}")
    return Subject(world, plan, line, period)


def cdr_text(rows: list[tuple[Any, ...]], *, header: str = HEADER) -> str:
    """A usage file: rows of (record_id, msisdn, service, start, quantity[, called])."""
    lines = [header]
    for row in rows:
        record_id, msisdn, service, start, quantity, *rest = row
        when = start.isoformat() if isinstance(start, datetime) else start
        lines.append(
            ",".join(str(v) for v in (record_id, msisdn, service, when, quantity, *(rest or [""])))
        )
    return "\n".join(lines) + "\n"


def import_rows(
    session: Session,
    folder: Path,
    rows: list[tuple[Any, ...]],
    *,
    host: str = "HOSTA",
    now: datetime = IMPORT_NOW,
    header: str = HEADER,
) -> ImportResult:
    """Write the rows as a usage file in `folder` and import it in the test's session."""
    path = folder / f"usage_{next(_files)}.csv"
    path.write_text(cdr_text(rows, header=header), encoding="utf-8")
    return import_usage_file(session, host_code=host, path=path, actor=ACTOR, now=now)


def period_of(session: Session, period_id: int) -> LinePeriod:
    """The period as stored now."""
    session.expire_all()
    period = session.exec(select(LinePeriod).where(LinePeriod.id == period_id)).one()
    return period


def at(minutes: int, base: datetime = T0) -> datetime:
    """An instant `minutes` after `base` (records are placed by it)."""
    return base + timedelta(hours=1, minutes=minutes)
