"""Store sales of the demo business: new customers buy a line the way the store sells one.

Each buyer opens a self-care account, gives their real name and ID, holds
a number for the cart, places the order and pays it — at a shop in cash
(recorded by staff) or with a voucher — through app/onboarding's purchase
workflow. The line stays pending until the host confirms its activation
(the provisioning outbox, delivered by the replay later that day), which
opens its first period.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from app.auth.models import SubscriberAccount
from app.auth.services import register_subscriber
from app.core.audit import Actor
from app.demo.base import pick_plan
from app.demo.basics import DEMO_SUBSCRIBER_PASSWORD
from app.demo.people import Person
from app.demo.world import DemoLine, World, pick_habit, pick_use
from app.onboarding.orders import cart_holder, hold_number, place_order
from app.onboarding.purchase import pay_by_voucher, record_store_payment
from app.subscribers.kyc import register_identity
from app.subscribers.models import Customer
from app.subscribers.services import ensure_customer_for_account
from plans.models import Plan


def _voucher_for(world: World, amount: int) -> tuple[str, str] | None:
    """An unused voucher worth at least `amount`, taken from the shop's pile."""
    for index, (serial, pin, value) in enumerate(world.vouchers):
        if value >= amount:
            del world.vouchers[index]
            return serial, pin
    return None


def _plan_id(session: Session, code: str) -> int:
    plan = session.exec(select(Plan).where(Plan.code == code, Plan.status == "published")).one()
    assert plan.id is not None
    return plan.id


def _pay(
    session: Session,
    world: World,
    *,
    order_id: int,
    total: int,
    n: int,
    buyer: Actor,
    shop: Actor,
    now: datetime,
) -> None:
    """Pay the order with a voucher (sometimes) or in cash at the shop."""
    voucher = _voucher_for(world, total) if world.rng.random() < 0.4 else None
    if voucher is not None:
        paid = pay_by_voucher(
            session,
            order_id=order_id,
            serial=voucher[0],
            pin=voucher[1],
            ip="",
            actor=buyer,
            now=now,
            policy=world.policy,
            voucher_policy=world.voucher_policy,
        )
        world.count("vouchers_redeemed")
        if paid.paid:
            return
    record_store_payment(
        session,
        order_id=order_id,
        method="cash",
        reference=f"DEMO-SHOP-{n:04d}",
        actor=shop,
        now=now,
        policy=world.policy,
    )


def _sign_up(
    session: Session, world: World, *, person: Person, email: str, now: datetime
) -> tuple[Actor, Customer]:
    """The buyer opens a self-care account and gives their real name and ID."""
    account = register_subscriber(
        session,
        email=email,
        password=DEMO_SUBSCRIBER_PASSWORD,
        display_name=person.name,
        locale=person.locale,
        now=now,
    )
    assert account.id is not None
    buyer = Actor("subscriber", account.id, email)
    customer = ensure_customer_for_account(session, account_id=account.id, email=email, now=now)
    register_identity(
        session,
        customer=customer,
        name=person.name,
        id_type="cn_ric",
        id_number=person.id_number,
        cipher=world.cipher,
        actor=buyer,
        now=now,
    )
    return buyer, customer


def sell_line(
    session: Session,
    world: World,
    *,
    n: int,
    person: Person,
    msisdn: str,
    shop: Actor,
    now: datetime,
    plan_code: str | None = None,
) -> DemoLine:
    """One store sale from sign-up to a paid order whose line awaits activation."""
    email = person.email or f"buyer{n:04d}@example.com"
    buyer, customer = _sign_up(session, world, person=person, email=email, now=now)
    assert buyer.id is not None
    account = session.get(SubscriberAccount, buyer.id)
    assert account is not None and account.id is not None
    plan_code = plan_code or pick_plan(world)
    plan_id, token = _plan_id(session, plan_code), f"demo-cart-{n:04d}"
    hold_number(
        session,
        plan_id=plan_id,
        msisdn=msisdn,
        holder=cart_holder(token),
        previous=None,
        now=now,
        actor=buyer,
    )
    order = place_order(
        session,
        account_id=account.id,
        email=email,
        plan_id=plan_id,
        msisdn=msisdn,
        cart_token=token,
        sim_kind="esim" if world.rng.random() < 0.25 else "physical",
        actor=buyer,
        now=now + timedelta(minutes=3),
    )
    assert order.id is not None and customer.id is not None
    _pay(
        session,
        world,
        order_id=order.id,
        total=order.total_minor,
        n=n,
        buyer=buyer,
        shop=shop,
        now=now + timedelta(minutes=8),
    )
    session.refresh(order)
    assert order.line_id is not None, order.status
    world.count("store_sales")
    line = DemoLine(
        order.line_id,
        customer.id,
        msisdn,
        plan_code,
        pick_use(world.rng),
        pick_habit(world.rng),
        account_id=account.id,
        email=email,
    )
    world.lines.append(line)
    return line


def sale_days(world: World, count: int) -> list[int]:
    """The replay days of `count` store sales, in order: spread over the three months,
    busier towards the end as word gets round."""
    last = world.days - 1
    days = [min(int(last * world.rng.random() ** 0.8), last) for _ in range(count)]
    return sorted(max(day, 1) for day in days)
