"""A customer with a line and a care agent, and tickets opened through the real services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.auth.models import StaffUser
from app.care.models import Ticket
from app.care.tickets import open_ticket
from app.core.audit import Actor
from app.subscribers.models import Customer, Line
from tests.factories import make_staff
from tests.unit.subscribers.helpers import World, make_line, make_world

TZ = "Asia/Shanghai"
# Monday 2026-12-07 10:00 in Shanghai.
MONDAY_10 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@dataclass
class Desk:
    world: World
    customer: Customer
    line: Line
    agent: StaffUser
    agent_actor: Actor
    customer_actor: Actor


def make_desk(
    session: Session, *, code: str = "CARE", email: str | None = "kunde@example.com"
) -> Desk:
    world = make_world(session, code=code)
    customer = world.customer
    customer.email = email
    session.add(customer)
    session.flush()
    line = make_line(session, world)
    agent = make_staff(session, role="care", email=f"agent-{code.lower()}@example.com")
    assert agent.id is not None and customer.id is not None
    return Desk(
        world,
        customer,
        line,
        agent,
        Actor("staff", agent.id, agent.email),
        Actor("subscriber", customer.subscriber_account_id, "subscriber"),
    )


def open_complaint(
    session: Session,
    desk: Desk,
    *,
    now: datetime = MONDAY_10,
    storage: Path | None = None,
    **overrides: Any,
) -> Ticket:
    """A complaint the customer opened in self-care about their line."""
    values: dict[str, Any] = {
        "category": "complaint",
        "channel": "self_care",
        "subject": "信号很差",
        "body": "我家里没有信号。",
        "actor": desk.customer_actor,
        "now": now,
        "timezone": TZ,
        "customer_id": desk.customer.id,
        "line_id": desk.line.id,
        "storage": storage,
        **overrides,
    }
    return open_ticket(session, **values)
