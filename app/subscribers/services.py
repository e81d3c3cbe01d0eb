"""Customers and lines: the minimal services the ledger needs (DESIGN §10).

Storefront sign-up, provisioning and line life-cycle come in a later issue;
these create and find rows so the ledger and its tests have owners to hold
money for.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

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
    sim_id: int | None = None,
    status: str = "active",
    now: datetime,
) -> Line:
    """Record a line of a customer. :raises MsisdnTaken: the number has a line."""
    if status not in LINE_STATUSES:
        raise InvalidInput(N_("Unknown line status %(status)s."), field="status", status=status)
    line = Line(
        customer_id=customer_id,
        msisdn=msisdn,
        plan_id=plan_id,
        sim_id=sim_id,
        status=status,
        created_at=now,
        status_changed_at=now,
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


def search_customers(session: Session, *, query: str, limit: int = 50) -> list[Customer]:
    """Customers whose ref, e-mail or name contains `query`, or with a number containing it.

    An empty query lists the newest customers. Case-insensitive; `%` and `_`
    match themselves.
    """
    query = (query or "").strip()[:254]
    statement = select(Customer)
    if query:
        numbers = select(Line.customer_id).where(col(Line.msisdn).contains(query, autoescape=True))
        statement = statement.where(
            or_(
                col(Customer.ref).icontains(query, autoescape=True),
                col(Customer.email).icontains(query, autoescape=True),
                col(Customer.name).icontains(query, autoescape=True),
                col(Customer.id).in_(numbers),
            )
        )
    return list(session.exec(statement.order_by(col(Customer.id).desc()).limit(limit)))


def find_customer_for_account(session: Session, *, account_id: int) -> Customer | None:
    """The customer of a store login, if it has one yet."""
    statement = select(Customer).where(Customer.subscriber_account_id == account_id)
    return session.exec(statement).first()


class _Taken(Exception):
    pass


def ensure_customer_for_account(
    session: Session, *, account_id: int, email: str, now: datetime, attempts: int = 20
) -> Customer:
    """The customer of a store login, created (`C-0001`, …) on first need.

    Idempotent. One customer per login and unique refs are the database's to
    enforce: the insert runs in a savepoint, and on a violation either
    another request created this login's customer first (it is returned) or
    the ref was taken, and the next number is tried.
    :raises CustomerRefTaken: no free ref was found in `attempts` tries.
    """
    existing = find_customer_for_account(session, account_id=account_id)
    if existing is not None:
        return existing
    number = (session.exec(select(func.max(Customer.id))).one() or 0) + 1
    for _ in range(attempts):
        ref = f"C-{number:04d}"
        customer = Customer(
            ref=ref, email=email or None, subscriber_account_id=account_id, created_at=now
        )
        try:
            insert_unique(session, customer, _Taken())
        except _Taken:
            if customer in session:
                session.expunge(customer)
            raced = find_customer_for_account(session, account_id=account_id)
            if raced is not None:
                return raced
            number += 1
        else:
            return customer
    raise CustomerRefTaken(N_("Customer %(ref)s already exists."), ref=ref)
