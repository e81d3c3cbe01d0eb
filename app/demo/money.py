"""The demo business's money and line changes of one day, through the services.

* **Top-ups.** A customer who keeps paying tops the balance up the day a
  line's period ends when it would not cover the renewal: cash or a bank
  transfer recorded by staff, or a shop voucher, in round amounts.
* **Lapses.** A lapsing customer stops paying: the renewal job suspends the
  line. Half of them pay again after one to three weeks, which renews and
  resumes the line (the credit's `CustomerCredited`).
* **Leaving.** A leaving customer's line is terminated by care on request.
* **Lost phones.** Two lines are suspended by care when reported lost.
* **Add-ons.** Heavy users now and then buy a data pack for the period.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.charging.addons import buy_addon, get_addon_by_code
from app.core.audit import Actor
from app.demo.base import PRICES
from app.demo.world import DemoLine, World
from app.ledger.balances import customer_balance
from app.payments.services import record_offline_payment
from app.payments.vouchers import redeem_voucher
from app.subscribers.lifecycle import suspend_line, terminate_line
from app.subscribers.models import Line

STEP_MINOR = 5000  # top-ups in steps of 50 yuan
LOST_PHONES = 2


def give_fate(world: World, line: DemoLine, *, opened_day: int) -> None:
    """Draw when a lapsing customer comes back and when a leaving one leaves."""
    if line.habit == "lapsing" and world.rng.random() < 0.5:
        line.comeback_days = world.rng.randint(7, 21)
    if line.habit == "leaving":
        line.leave_day = world.rng.randint(opened_day + 5, opened_day + 70)


def _lines(session: Session, world: World) -> dict[int, Line]:
    """The demo's lines as they are now, by id."""
    ids = [line.line_id for line in world.lines]
    return {line.id or 0: line for line in session.exec(select(Line).where(col(Line.id).in_(ids)))}


def pay_in(
    session: Session,
    world: World,
    line: DemoLine,
    *,
    amount: int,
    staff: Actor,
    now: datetime,
    reference: str,
) -> None:
    """Credit `amount` to the line's customer: a voucher, cash or a bank transfer."""
    voucher = None
    if world.rng.random() < 0.35:
        voucher = next((v for v in world.vouchers if v[2] == amount), None)
    if voucher is not None:
        world.vouchers.remove(voucher)
        actor = world.buyer(line) or staff
        redeem_voucher(
            session,
            customer_id=line.customer_id,
            serial=voucher[0],
            pin=voucher[1],
            ip="",
            actor=actor,
            now=now,
            policy=world.voucher_policy,
            **world.policy.cap_kwargs(),
        )
        world.count("vouchers_redeemed")
        return
    record_offline_payment(
        session,
        customer_id=line.customer_id,
        amount_minor=amount,
        method="cash" if world.rng.random() < 0.6 else "bank_transfer",
        reference=reference,
        actor=staff,
        now=now,
        policy=world.policy,
        memo="demo",
    )
    world.count("payments")


def _top_up(session: Session, world: World, line: DemoLine, *, staff: Actor, n: int) -> None:
    """Top the balance up to cover the line's next renewal, if it would not."""
    balance = customer_balance(session, customer_id=line.customer_id)
    price = PRICES.get(line.plan_code, 0)
    if balance >= price:
        return
    amount = max(STEP_MINOR, -(-(price - balance) // STEP_MINOR) * STEP_MINOR)
    now = world.at(n, world.rng.uniform(8, 20))
    pay_in(
        session,
        world,
        line,
        amount=amount,
        staff=staff,
        now=now,
        reference=f"DEMO-TOPUP-{line.line_id}-{n}",
    )


def _ends_today(row: Line, world: World, n: int) -> bool:
    return (
        row.status == "active"
        and row.period_end is not None
        and world.day(n) <= row.period_end.astimezone(world.zone) < world.day(n + 1)
    )


def money_of_day(session: Session, world: World, *, n: int, care: Actor, finance: Actor) -> None:
    """Top-ups, comebacks, departures and lost phones of replay day `n`."""
    rows = _lines(session, world)
    for line in world.lines:
        row = rows.get(line.line_id)
        if row is None or line.fraud:
            continue
        if line.leave_day == n and row.status in ("active", "suspended"):
            terminate_line(
                session,
                line_id=line.line_id,
                reason="用户申请销户",
                quarantine_days=world.quarantine_days,
                actor=care,
                now=world.at(n, 15),
            )
            world.count("terminated_on_request")
        elif line.habit != "lapsing" and _ends_today(row, world, n):
            _top_up(session, world, line, staff=finance, n=n)
        elif _comes_back(row, line, world, n):
            pay_in(
                session,
                world,
                line,
                amount=round(PRICES[line.plan_code], -3) or STEP_MINOR,
                staff=finance,
                now=world.at(n, 11),
                reference=f"DEMO-BACK-{line.line_id}",
            )
            line.habit = "steady"
            world.count("came_back")


def _comes_back(row: Line, line: DemoLine, world: World, n: int) -> bool:
    if line.comeback_days is None or row.status != "suspended" or row.renewal_failed_at is None:
        return False
    return world.at(n, 11) - row.renewal_failed_at >= timedelta(days=line.comeback_days)


def lose_phones(session: Session, world: World, *, n: int, care: Actor) -> None:
    """Care suspends the lines of two customers who reported their phone lost."""
    rows = _lines(session, world)
    steady = [
        line
        for line in world.lines
        if line.habit == "steady" and not line.fraud and rows[line.line_id].status == "active"
    ]
    for line in world.rng.sample(steady, min(LOST_PHONES, len(steady))):
        suspend_line(
            session,
            line_id=line.line_id,
            reason="用户挂失（手机丢失）",
            actor=care,
            now=world.at(n, 16),
        )
        world.count("suspended_lost_phone")


def buy_packs(session: Session, world: World, *, n: int, care: Actor) -> None:
    """Heavy users buy a data pack now and then (paid from the balance, topped up first)."""
    rows = _lines(session, world)
    for line in world.lines:
        row = rows.get(line.line_id)
        if row is None or row.status != "active" or line.use < 0.75 or line.fraud:
            continue
        if world.rng.random() >= 0.03:
            continue
        code = world.rng.choice(("DATA1G", "DATA5G", "DATA5G", "DATA20G"))
        addon = get_addon_by_code(session, code)
        now = world.at(n, world.rng.uniform(9, 22))
        if row.period_end is None or row.period_end <= now:
            continue
        if customer_balance(session, customer_id=line.customer_id) < addon.price_minor:
            pay_in(
                session,
                world,
                line,
                amount=-(-addon.price_minor // STEP_MINOR) * STEP_MINOR,
                staff=care,
                now=now - timedelta(minutes=5),
                reference=f"DEMO-PACK-{line.line_id}-{n}",
            )
        actor = world.buyer(line) or care
        assert addon.id is not None
        buy_addon(
            session, line_id=line.line_id, addon_id=addon.id, key=f"demo-{n}", actor=actor, now=now
        )
        world.count("addons_bought")
