"""A host with a line in October 2026 and usage files for it, through the real services.

Shared by the console and API tests of usage and settlement.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.charging.periods import open_period
from app.subscribers import services as subscribers
from app.subscribers.models import Line
from numbering.lifecycle import assign_number, reserve_number
from numbering.models import Sim
from tests.factories import NOW
from tests.unit.subscribers.helpers import FIRST, World, make_world

T0 = datetime(2026, 10, 1, tzinfo=UTC)
MONTH = "2026-10"
HEADER = "record_id,msisdn,service,start_time,quantity,called_number"
LINE_MSISDN = f"+{FIRST + 150}"
# In the host's block but on no line until a test opens one.
SPARE_MSISDN = f"+{FIRST + 151}"
# In no block of the host.
FOREIGN_MSISDN = "+8613900000000"


@dataclasses.dataclass
class UsageWorld:
    world: World
    line: Line

    @property
    def host_code(self) -> str:
        return self.world.host.code


def line_on(session: Session, world: World, msisdn: str, *, start: datetime = T0) -> Line:
    """An active line on `msisdn` (of the world's block) with its first period from `start`."""
    holder = f"test:{msisdn}"
    reserve_number(session, msisdn=msisdn, holder=holder, now=NOW)
    assign_number(session, msisdn=msisdn, holder=holder, now=NOW)
    assert world.host.id is not None and world.customer.id is not None
    assert world.plan.id is not None
    digits = msisdn[-6:]
    sim = Sim(
        iccid=f"8986012600000{digits}",
        imsi=f"460010000{digits}",
        kind="physical",
        host_id=world.host.id,
        status="assigned",
        created_at=NOW,
        status_changed_at=NOW,
    )
    session.add(sim)
    session.flush()
    line = subscribers.open_line(
        session,
        customer_id=world.customer.id,
        msisdn=msisdn,
        plan_id=world.plan.id,
        sim_id=sim.id,
        now=NOW,
    )
    open_period(session, line=line, plan=world.plan, start=start, now=start)
    session.flush()
    return line


def usage_world(session: Session) -> UsageWorld:
    """HOSTA with its rate card, plans and numbers, and one active line from 1 October."""
    world = make_world(session)
    return UsageWorld(world, line_on(session, world, LINE_MSISDN))


def cdr_text(rows: list[tuple[Any, ...]], *, header: str = HEADER) -> str:
    """A usage file: the header, then one line per row (a row of one string is used as it is)."""
    lines = [header]
    for row in rows:
        lines.append(row[0] if len(row) == 1 else ",".join(str(value) for value in row))
    return "\n".join(lines) + "\n"


def good_rows(msisdn: str = LINE_MSISDN, prefix: str = "R") -> list[tuple[Any, ...]]:
    """Three records of October: 50 MB of data, a 61-second call and an SMS."""
    return [
        (f"{prefix}1", msisdn, "data", "2026-10-02T08:15:00+08:00", 52_428_800, ""),
        (f"{prefix}2", msisdn, "voice", "2026-10-02T09:00:05+08:00", 61, "+8613800138000"),
        (f"{prefix}3", msisdn, "sms", "2026-10-03T09:05:00+08:00", 1, "+8613800138000"),
    ]


def write_cdr(tmp_path: Path, rows: list[tuple[Any, ...]], name: str = "usage.csv") -> Path:
    path = tmp_path / name
    path.write_text(cdr_text(rows), encoding="utf-8")
    return path


def invoice_text(rows: list[tuple[str, str, int, str, str]], *, host: str = "HOSTA") -> str:
    """An invoice of the month: (service, unit, quantity, unit price, amount) per row."""
    lines = ["host,period,service,unit,quantity,unit_price,amount,currency"]
    lines += [f"{host},{MONTH},{s},{u},{q},{p},{a},CNY" for s, u, q, p, a in rows]
    return "\n".join(lines) + "\n"
