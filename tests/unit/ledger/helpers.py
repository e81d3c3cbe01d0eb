"""Customers, lines and a published LITE30 plan for ledger tests, through real services."""

from __future__ import annotations

import itertools

from sqlmodel import Session

from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from plans.models import Plan
from tests.factories import NOW
from tests.unit.plans.helpers import make_plan, publish
from tests.unit.wholesale.helpers import make_host, make_rate_card

MONTHS = 24
REFERENCE = 5000
_seq = itertools.count(1)


def make_customer(session: Session, *, ref: str | None = None) -> Customer:
    ref = ref or f"C-{next(_seq):04d}"
    return subscribers.create_customer(session, ref=ref, name="Test customer", now=NOW)


def lite30_plan(session: Session) -> Plan:
    """LITE30: 39.00 for 30 days, so a monthly fee of 3900."""
    host = make_host(session)
    make_rate_card(session, host=host)
    assert host.id is not None
    return publish(session, make_plan(session, host_id=host.id))


def make_line(
    session: Session, *, customer: Customer, plan: Plan, msisdn: str, status: str = "active"
) -> Line:
    assert customer.id is not None and plan.id is not None
    return subscribers.open_line(
        session,
        customer_id=customer.id,
        msisdn=msisdn,
        plan_id=plan.id,
        status=status,
        now=NOW,
    )
