"""Customers and lines: the minimal services the ledger needs (DESIGN §10).

Storefront sign-up, provisioning and line life-cycle come in a later issue;
these create and find rows so the ledger and its tests have owners to hold
money for.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.db import insert_unique, lock_by_id
from app.core.errors import N_, InvalidInput, clean_text
from app.subscribers.errors import (
    CustomerNotFound,
    CustomerRefTaken,
    LineNotFound,
    LineStateError,
    MsisdnTaken,
)
from app.subscribers.models import FINAL_LINE_STATUSES, LINE_STATUSES, Customer, Line
from numbering.models import Sim


def create_customer(
    session: Session, *, ref: str, name: str = "", email: str | None = None, now: datetime
) -> Customer:
    """Create a customer. :raises CustomerRefTaken: the ref exists.

    :raises InvalidInput: a name or e-mail over its limit (`app.core.limits`).
    """
    name = clean_text(name, field="name", max_length=limits.PERSON_NAME)
    email = clean_text(email, field="email", max_length=limits.EMAIL) or None
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
    """The customer `customer_id`. :raises CustomerNotFound."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(N_("No customer %(id)s."), id=customer_id)
    return customer


def get_customer_by_ref(session: Session, ref: str) -> Customer:
    """The customer with this reference. :raises CustomerNotFound."""
    customer = session.exec(select(Customer).where(Customer.ref == ref)).first()
    if customer is None:
        raise CustomerNotFound(N_("No customer %(ref)s."), ref=ref)
    return customer


def get_line_by_msisdn(session: Session, msisdn: str) -> Line:
    """The number's line that is not final, else its most recent ended line."""
    statement = (
        select(Line)
        .where(Line.msisdn == msisdn)
        .order_by(col(Line.status).in_(FINAL_LINE_STATUSES), col(Line.id).desc())
        .limit(1)
    )
    line = session.exec(statement).first()
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
    """Customers found by ref, name, e-mail, phone number or SIM ICCID; newest first.

    The query's shape decides what is searched, so each search reads only
    the columns it can match: `C-…` searches refs; text with `@` searches
    e-mails; digits (spaces, dashes and a leading `+` allowed) search refs,
    the numbers of lines and the ICCIDs of their SIMs (joined through the
    unique `line.sim_id`); anything else searches names, e-mails and refs.

    A whole phone number (8 to 15 digits) or a whole ICCID (19 or 20) is
    first looked up by equality on its unique index — the common case of a
    number read out or an ICCID copied from a card — and answered at once
    when it hits. Otherwise a part matches anywhere (`LIKE '%…%'`), which
    no B-tree index serves: one pass over the tables searched, cut at
    `limit` in primary-key order. Case-insensitive; `%` and `_` match
    themselves. An empty query lists the newest customers.
    """
    query = (query or "").strip()[:254]
    statement = select(Customer).order_by(col(Customer.id).desc()).limit(limit)
    if not query:
        return list(session.exec(statement))
    digits = re.sub(r"[\s-]", "", query).removeprefix("+")
    if digits.isdigit() and not query.upper().startswith("C-"):
        whole = _whole_value(digits)
        if whole is not None:
            found = list(session.exec(statement.where(col(Customer.id).in_(whole))))
            if found:
                return found
    return list(session.exec(statement.where(_matching(query, digits))))


def _whole_value(digits: str) -> Any:
    """Customer ids by equality on a unique index, when `digits` can be a whole value."""
    if len(digits) in (19, 20):
        return (
            select(Line.customer_id)
            .join(Sim, col(Sim.id) == col(Line.sim_id))
            .where(Sim.iccid == digits)
        )
    if 8 <= len(digits) <= 15:
        return select(Line.customer_id).where(Line.msisdn == f"+{digits}")
    return None


def _matching(query: str, digits: str) -> Any:
    ref = col(Customer.ref).icontains(query, autoescape=True)
    email = col(Customer.email).icontains(query, autoescape=True)
    if query.upper().startswith("C-"):
        return ref
    if "@" in query:
        return email
    if digits.isdigit():
        # Refs hold digits too ("0001" finds C-0001).
        return or_(ref, col(Customer.id).in_(_customers_by_digits(digits)))
    return or_(col(Customer.name).icontains(query, autoescape=True), email, ref)


def _customers_by_digits(digits: str) -> Any:
    """The ids of customers with a line whose number or SIM's ICCID holds `digits`."""
    by_sim = (
        select(Line.customer_id)
        .join(Sim, col(Sim.id) == col(Line.sim_id))
        .where(col(Sim.iccid).contains(digits, autoescape=True))
    )
    by_number = select(Line.customer_id).where(col(Line.msisdn).contains(digits, autoescape=True))
    return by_number.union(by_sim)


def lines_of_customers(session: Session, *, customer_ids: list[int]) -> dict[int, list[Line]]:
    """The lines of each of these customers, oldest first (a read for result lists)."""
    found: dict[int, list[Line]] = {customer_id: [] for customer_id in customer_ids}
    if not customer_ids:
        return found
    statement = select(Line).where(col(Line.customer_id).in_(customer_ids)).order_by(col(Line.id))
    for line in session.exec(statement):
        found[line.customer_id].append(line)
    return found


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


def set_auto_renew(
    session: Session, *, line_id: int, on: bool, actor: Actor, now: datetime
) -> Line:
    """Switch a line's auto-renew on or off (DESIGN §9 renewal reads it).

    Locks the line. Idempotent: the setting it already has writes nothing.
    Audited; the host is not told (renewal is ours, not the network's).
    :raises LineNotFound: no such line.
    :raises LineStateError: the line has ended.
    """
    line = lock_by_id(session, Line, line_id)
    if line is None:
        raise LineNotFound(N_("No line %(id)s."), id=line_id)
    if line.status in FINAL_LINE_STATUSES:
        raise LineStateError(
            N_("Line %(msisdn)s cannot change auto-renew: its status is %(status)s."),
            field="status",
            msisdn=line.msisdn,
            status=line.status,
        )
    if line.auto_renew is bool(on):
        return line
    line.auto_renew = bool(on)
    session.add(line)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="line.auto_renew",
        now=now,
        target_type="line",
        target_id=line.id,
        details={"msisdn": line.msisdn, "auto_renew": line.auto_renew},
    )
    return line


def link_customer_to_account(
    session: Session, *, customer_id: int, account_id: int, actor: Actor, now: datetime
) -> Customer:
    """Give an existing customer (one migrated by the import) its store login.

    Locks the customer. Idempotent: the same link again writes nothing.
    Audited. Callers decide that the login belongs to the customer (the demo
    matches its own logins by e-mail); the store never links by itself.
    :raises CustomerNotFound: no such customer.
    :raises Conflict: the customer has another login, or the login another customer.
    """
    from app.core.errors import Conflict

    customer = lock_by_id(session, Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(N_("No customer %(id)s."), id=customer_id)
    if customer.subscriber_account_id == account_id:
        return customer
    other = find_customer_for_account(session, account_id=account_id)
    if customer.subscriber_account_id is not None or other is not None:
        raise Conflict(
            N_("Customer %(ref)s or this login is already linked to another."), ref=customer.ref
        )
    customer.subscriber_account_id = account_id
    session.add(customer)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="customer.link_login",
        now=now,
        target_type="customer",
        target_id=customer.ref,
        details={"account_id": account_id},
    )
    return customer
