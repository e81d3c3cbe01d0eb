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


def priced_plan(session: Session, *, host_id: int, code: str, price_minor: int, days: int) -> Plan:
    """A published plan of another price or validity, so customers' caps differ."""
    return publish(
        session,
        make_plan(session, host_id=host_id, code=code, price_minor=price_minor, validity_days=days),
    )


def customers_with_different_caps(session: Session, *, prefix: str) -> list[Customer]:
    """Three customers whose caps differ: one LITE30 line (3900 a month), a LITE30 and a
    90-day 10000 line (3900 + 3333 a month), and none (the reference fee)."""
    lite = lite30_plan(session)
    assert lite.host_id is not None
    quarter = priced_plan(session, host_id=lite.host_id, code="Q90", price_minor=10000, days=90)
    one = make_customer(session, ref=f"{prefix}-ONE")
    two = make_customer(session, ref=f"{prefix}-TWO")
    none = make_customer(session, ref=f"{prefix}-NONE")
    make_line(session, customer=one, plan=lite, msisdn="+8617000000001")
    make_line(session, customer=two, plan=lite, msisdn="+8617000000002")
    make_line(session, customer=two, plan=quarter, msisdn="+8617000000003")
    make_line(session, customer=two, plan=lite, msisdn="+8617000000004", status="terminated")
    return [one, two, none]
