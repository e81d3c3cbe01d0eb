"""The business's first day: SIM stock, voucher batches and the migrated base.

The reseller starts the replay by taking over its customers from another
platform: `mvno subscribers import`'s workflow (app/onboarding/migration.py)
brings in about three quarters of the demo's customers, a few with two
lines, each line in the middle of a period that began before the first day
(so renewals fall due all through the first month), most with an opening
balance. Finance prints two voucher batches for the shops. SIMs for the
base and for the store's sales are imported like any stock file.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.core.audit import Actor
from app.demo.people import Person, make_people, pick_numbers, sim_stock_csv
from app.demo.world import HOST_CODE, DemoLine, World, pick_habit, pick_use
from app.onboarding.migration import HEADER, import_subscribers
from app.payments.vouchers import create_voucher_batch
from app.subscribers.models import Customer, Line
from numbering.sim_import import import_sims
from wholesale.services import get_host_by_code

BASE_SHARE = 0.75
SECOND_LINE_SHARE = 0.1
PREFIX = "+861701234"
# Numbers of the block the demo gives out: the first hundred stay for the store.
FIRST_SUFFIX, LAST_SUFFIX = 100, 9999
PLAN_MIX = (("MINI19", 0.25), ("LITE30", 0.40), ("DATA99", 0.20), ("QUARTER108", 0.15))
PRICES = {"MINI19": 1900, "LITE30": 3900, "DATA99": 9900, "QUARTER108": 10800}
VALIDITY_DAYS = {"MINI19": 30, "LITE30": 30, "DATA99": 30, "QUARTER108": 90}
VOUCHER_BATCHES = (("门店充值卡 50 元", 5000, 60), ("门店充值卡 100 元", 10000, 40))


def pick_plan(world: World) -> str:
    """A plan code, drawn with the demo's plan mix."""
    draw, total = world.rng.random(), 0.0
    for code, share in PLAN_MIX:
        total += share
        if draw < total:
            return code
    return PLAN_MIX[-1][0]


def base_count(size: int) -> int:
    """How many of `size` customers come with the migration."""
    return round(size * BASE_SHARE)


def import_stock(session: Session, world: World, *, sims: int, now: datetime) -> list[str]:
    """Import `sims` SIMs (every fourth an eSIM); returns their ICCIDs in file order."""
    text = sim_stock_csv(first=1, count=sims)
    host = get_host_by_code(session, HOST_CODE)
    import_sims(
        session,
        text=text,
        filename="demo-business-sims.csv",
        host_id=host.id or 0,
        actor=Actor.system("demo"),
        now=now,
    )
    return [row.split(",", 1)[0] for row in text.splitlines()[1:]]


def print_vouchers(session: Session, world: World, *, finance: Actor, now: datetime) -> None:
    """Finance prints the shops' voucher batches, valid for a year."""
    for name, value, count in VOUCHER_BATCHES:
        _batch, pairs = create_voucher_batch(
            session,
            name=name,
            value_minor=value,
            count=count,
            expires_at=now + timedelta(days=365),
            currency=world.policy.currency,
            actor=finance,
            now=now,
        )
        world.vouchers.extend((serial, pin, value) for serial, pin in pairs)
    world.rng.shuffle(world.vouchers)


def _opening_balance(world: World, plan: str, habit: str) -> int:
    """A migrated line's opening balance in minor units: a few periods, or nothing."""
    if habit == "lapsing":
        return 0
    months = world.rng.choice((0, 0, 1, 1, 2, 3))
    return round(PRICES[plan] * months, -3)


def _rows(
    world: World, people: list[Person], numbers: list[str]
) -> tuple[list[list[str]], list[tuple[str, str, str, float, str]]]:
    """The migration file's rows (the ICCID still to fill in) and, per line,
    (ref, msisdn, plan, use, habit)."""
    rows: list[list[str]] = []
    cast: list[tuple[str, str, str, float, str]] = []
    start = world.day(0)
    for n, person in enumerate(people, start=1):
        ref, habit = f"P-{n:04d}", pick_habit(world.rng)
        count = 2 if world.rng.random() < SECOND_LINE_SHARE else 1
        for _ in range(count):
            plan = pick_plan(world)
            begun = start - timedelta(hours=world.rng.uniform(1, VALIDITY_DAYS[plan] * 24 - 1))
            balance = _opening_balance(world, plan, habit)
            msisdn = numbers.pop()
            rows.append(
                [
                    ref,
                    person.name,
                    person.email,
                    "cn_ric",
                    person.id_number,
                    msisdn,
                    "",
                    plan,
                    begun.isoformat(timespec="seconds"),
                    f"{balance / 100:.2f}",
                ]
            )
            cast.append((ref, msisdn, plan, pick_use(world.rng), habit))
    return rows, cast


def migrate_base(
    session: Session, world: World, *, numbers: list[str], spare_sims: int, now: datetime
) -> int:
    """Import SIM stock and the base from the previous platform; returns the lines imported.

    The stock holds a SIM for every migrated line and `spare_sims` more for the store.
    """
    people = make_people(world.rng, base_count(world.size))
    rows, cast = _rows(world, people, numbers)
    iccids = import_stock(session, world, sims=len(rows) + spare_sims, now=now)
    for row, iccid in zip(rows, iccids, strict=False):
        row[6] = iccid
    report = import_subscribers(
        session,
        text="\n".join([HEADER, *(",".join(row) for row in rows)]) + "\n",
        filename="previous-platform-subscribers.csv",
        cipher=world.cipher,
        currency=world.policy.currency,
        cap_months=world.policy.cap_months,
        actor=Actor.system("demo"),
        now=now,
    )
    found = session.exec(
        select(Line.id, Line.customer_id, Line.msisdn)
        .join(Customer, col(Customer.id) == col(Line.customer_id))
        .where(col(Customer.ref).in_({ref for ref, *_ in cast}))
    ).all()
    ids = {msisdn: (line_id, customer_id) for line_id, customer_id, msisdn in found}
    for _ref, msisdn, plan, use, habit in cast:
        line_id, customer_id = ids[msisdn]
        world.lines.append(DemoLine(line_id or 0, customer_id, msisdn, plan, use, habit))
    world.count("customers_migrated", report.customers)
    return report.lines


def numbers_for(world: World, count: int) -> list[str]:
    """`count` distinct numbers of the demo block for the business, drawn from the seed."""
    return pick_numbers(world.rng, prefix=PREFIX, count=count, first=FIRST_SUFFIX, last=LAST_SUFFIX)
