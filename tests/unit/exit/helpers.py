"""A small reseller about to leave the market: customers with lines, periods and money."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from app.charging.periods import open_period
from app.core.audit import Actor
from app.exit import schedule
from app.exit.models import MarketExit
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.posting import BulkEntry, post_entries
from app.payments.models import Payment
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from plans.models import Plan
from tests.unit.charging.helpers import fund
from tests.unit.subscribers.helpers import World, make_line

ADMIN = Actor("staff", 1, "admin@example.com")
TZ = "Asia/Shanghai"
# The exit date and its instant: 00:00 on 1 March 2027 in Shanghai.
EXIT_DATE = date(2027, 3, 1)
EXIT_AT = datetime(2027, 2, 28, 16, tzinfo=UTC)
PLANNED = datetime(2026, 11, 20, tzinfo=UTC)
ANNOUNCED = datetime(2026, 11, 21, tzinfo=UTC)
DAY = timedelta(days=1)
_refs = itertools.count(1)


def customer(session: Session, world: World, *, balance: int = 0, name: str = "") -> World:
    """A new customer of the world (its own world view), funded with `balance`."""
    n = next(_refs)
    row = subscribers.create_customer(
        session, ref=f"C-X{n:04d}", name=name or f"Exit test {n}", now=PLANNED
    )
    row.email = f"exit{n}@example.com"
    session.add(row)
    session.flush()
    mine = dataclasses.replace(world, customer=row)
    if balance:
        fund(session, mine, balance, now=PLANNED, key=f"exit-fund:{row.id}:{balance}")
    return mine


def line(
    session: Session,
    world: World,
    *,
    start: datetime,
    plan: Plan | None = None,
    status: str = "active",
) -> Line:
    """A line of the world's customer with one period from `start`."""
    plan = plan or world.plan
    row = make_line(session, dataclasses.replace(world, plan=plan), status=status, now=start)
    open_period(session, line=row, plan=plan, start=start, now=start)
    return row


def arrears(session: Session, world: World, amount: int) -> None:
    """Take the customer's balance down by `amount` through late usage (may go negative)."""
    assert world.customer.id is not None
    account = customer_account_ids(session, customer_ids=[world.customer.id], currency="CNY")[
        world.customer.id
    ]
    usage = system_account_id(session, kind="revenue_usage", currency="CNY")
    result = post_entries(
        session,
        entries=[
            BulkEntry(
                kind="usage",
                idempotency_key=f"late-usage:{world.customer.id}:{amount}",
                postings=((account, -amount), (usage, amount)),
                allow_arrears=True,
            )
        ],
        actor=ADMIN,
        now=ANNOUNCED,
    )
    assert not result.refused


def card_payment(session: Session, customer: Customer, amount: int, intent: str) -> Payment:
    """A succeeded Stripe payment on record (the money itself is funded separately)."""
    assert customer.id is not None
    payment = Payment(
        customer_id=customer.id,
        method="stripe",
        status="succeeded",
        amount_minor=amount,
        currency="CNY",
        credited_minor=amount,
        stripe_payment_intent_id=intent,
        created_at=PLANNED,
    )
    session.add(payment)
    session.flush()
    return payment


def announced(session: Session, *, exit_date: date = EXIT_DATE) -> MarketExit:
    """Plan and announce the exit."""
    schedule.plan_exit(
        session, exit_date=exit_date, notice_days=None, timezone=TZ, actor=ADMIN, now=PLANNED
    )
    return schedule.announce_exit(session, timezone=TZ, actor=ADMIN, now=ANNOUNCED)
