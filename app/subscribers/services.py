"""Customers and lines: the minimal services the ledger needs (DESIGN §10).

Storefront sign-up, provisioning and line life-cycle come in a later issue;
these create and find rows so the ledger and its tests have owners to hold
money for.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from app.core.db import insert_unique
from app.core.errors import N_, InvalidInput
from app.subscribers.errors import CustomerNotFound, CustomerRefTaken, LineNotFound, MsisdnTaken
from app.subscribers.models import LINE_STATUSES, Customer, Line


def create_customer(
    session: Session, *, ref: str, name: str = "", email: str | None = None, now: datetime
) -> Customer:
    """Create a customer. :raises CustomerRefTaken: the ref exists."""
    customer = Customer(ref=ref, name=name, email=email, created_at=now)
    insert_unique(
        session, customer, CustomerRefTaken(N_("Customer %(ref)s already exists."), ref=ref)
    )
    return customer


def open_line(
    session: Session,
    *,
    customer_id: int,
    msisdn: str,
    plan_id: int,
    status: str = "active",
    now: datetime,
) -> Line:
    """Record a line of a customer. :raises MsisdnTaken: the number has a line."""
    if status not in LINE_STATUSES:
        raise InvalidInput(N_("Unknown line status %(status)s."), field="status", status=status)
    line = Line(
        customer_id=customer_id, msisdn=msisdn, plan_id=plan_id, status=status, created_at=now
    )
    insert_unique(session, line, MsisdnTaken(N_("%(msisdn)s already has a line."), msisdn=msisdn))
    return line


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(N_("No customer %(id)s."), id=customer_id)
    return customer


def get_customer_by_ref(session: Session, ref: str) -> Customer:
    customer = session.exec(select(Customer).where(Customer.ref == ref)).first()
    if customer is None:
        raise CustomerNotFound(N_("No customer %(ref)s."), ref=ref)
    return customer


def get_line_by_msisdn(session: Session, msisdn: str) -> Line:
    line = session.exec(select(Line).where(Line.msisdn == msisdn)).first()
    if line is None:
        raise LineNotFound(N_("No line with number %(msisdn)s."), msisdn=msisdn)
    return line


def get_customer_by_msisdn_or_ref(session: Session, target: str) -> Customer:
    """A customer named by one of their numbers or by their ref ("C-0001")."""
    if target.upper().startswith("C-"):
        return get_customer_by_ref(session, target.upper())
    line = get_line_by_msisdn(session, target)
    return get_customer(session, line.customer_id)
