"""A host with numbers, SIMs and two plans, and lines on it, through real services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.core.audit import Actor
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from numbering.blocks import add_number_block
from numbering.lifecycle import assign_number, reserve_number
from numbering.models import Sim
from plans.models import Plan
from tests.factories import NOW
from tests.unit.plans.helpers import make_plan, publish
from tests.unit.wholesale.helpers import make_host, make_rate_card
from wholesale.models import HostCarrier

STAFF = Actor("staff", 1, "care@example.com")
FIRST = 8617012340000
_numbers = itertools.count(0)
_sims = itertools.count(1)


@dataclass
class World:
    host: HostCarrier
    plan: Plan
    other_plan: Plan
    customer: Customer


def make_world(session: Session, *, code: str = "HOSTA", **host: str | None) -> World:
    host_row = make_host(session, code=code, **host)  # type: ignore[arg-type]
    make_rate_card(session, host=host_row)
    assert host_row.id is not None
    plan = publish(session, make_plan(session, host_id=host_row.id))
    other = publish(
        session, make_plan(session, host_id=host_row.id, code="MAX60", price_minor=6900)
    )
    add_number_block(
        session,
        host_id=host_row.id,
        first=f"+{FIRST}",
        last=f"+{FIRST + 199}",
        actor=STAFF,
        now=NOW,
    )
    customer = subscribers.create_customer(session, ref=f"C-{code}", name="Lifecycle test", now=NOW)
    return World(host_row, plan, other, customer)


def _sim(session: Session, host_id: int, now: datetime) -> Sim:
    """A SIM given to a line (stock records; the storefront does this in production)."""
    n = next(_sims)
    sim = Sim(
        iccid=f"89860126{n:011d}",
        imsi=f"46001{n:010d}",
        kind="physical",
        host_id=host_id,
        status="assigned",
        created_at=now,
        status_changed_at=now,
    )
    session.add(sim)
    session.flush()
    return sim


def make_line(
    session: Session, world: World, *, status: str = "active", now: datetime = NOW
) -> Line:
    """A line with an assigned number of the block and an assigned SIM."""
    msisdn = f"+{FIRST + next(_numbers) % 200}"
    holder = f"test:{msisdn}"
    reserve_number(session, msisdn=msisdn, holder=holder, now=now)
    assign_number(session, msisdn=msisdn, holder=holder, now=now)
    assert world.host.id is not None and world.customer.id is not None
    assert world.plan.id is not None
    sim = _sim(session, world.host.id, now)
    return subscribers.open_line(
        session,
        customer_id=world.customer.id,
        msisdn=msisdn,
        plan_id=world.plan.id,
        sim_id=sim.id,
        status=status,
        now=now,
    )
