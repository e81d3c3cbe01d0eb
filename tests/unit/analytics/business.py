"""A small reseller built through the real services, for the dashboard's figures.

Times are chosen on the edges of Asia/Shanghai days and months (UTC+8), where
a figure grouped by UTC dates would put rows in the wrong day or month:

* store order (LITEish small plan) paid 2026-09-01 00:30 local (31 Aug UTC),
  activated 01:00; renewed 1 Oct and at 2026-11-01 00:00 local exactly;
* add-ons 15 Oct, 31 Oct 23:59:59 local (October) and 1 Nov 00:00 local
  (November, though 31 Oct in UTC);
* overage in September and October; a customer driven into arrears;
* a staff line activated 11 Oct 00:00 local, renewed 10 Nov, terminated
  13 Nov 00:00 local; two lines activated a second apart across the
  10/11 Nov local midnight; one line left pending;
* settlement exports: September twice (the later one counts), October once,
  and a reconciliation-free November computed on the spot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session

from app.charging.addons import buy_addon
from app.charging.renewals import run_renewals
from app.core.audit import Actor
from app.subscribers import lifecycle
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.usage.settlement import compute_settlement, export_settlement
from numbering.lifecycle import assign_number, reserve_number
from plans.addons import upsert_addon
from plans.models import AddOn, Plan
from tests.factories import NOW
from tests.unit.charging.helpers import fund
from tests.unit.onboarding.test_orders import Buyer, add_sims, complete, credit, place
from tests.unit.subscribers.helpers import FIRST, STAFF, World, make_world
from tests.unit.usage.helpers import import_rows, small_plan

ZONE = ZoneInfo("Asia/Shanghai")
TIMEZONE = "Asia/Shanghai"
CURRENCY = "CNY"
SYSTEM = Actor.system("dashboard test")
# The dashboard is read at noon local on 15 November 2026.
AT = datetime(2026, 11, 15, 4, 0, tzinfo=UTC)


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An instant given by its Asia/Shanghai wall clock, as UTC."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZONE).astimezone(UTC)


@dataclass
class Business:
    world: World
    small: Plan
    addon: AddOn
    store_line: Line
    staff_line: Line
    midnight_lines: tuple[Line, Line]
    arrears_line: Line
    current_cost_minor: int


def _number(session: Session, offset: int) -> str:
    msisdn = f"+{FIRST + offset}"
    holder = f"dash:{msisdn}"
    reserve_number(session, msisdn=msisdn, holder=holder, now=NOW)
    assign_number(session, msisdn=msisdn, holder=holder, now=NOW)
    return msisdn


def staff_line(
    session: Session,
    customer: Customer,
    plan: Plan,
    *,
    offset: int,
    activate_at: datetime | None,
) -> Line:
    """A line opened by staff (pending), activated by the host at `activate_at` if given."""
    assert customer.id is not None and plan.id is not None
    line = subscribers.open_line(
        session,
        customer_id=customer.id,
        msisdn=_number(session, offset),
        plan_id=plan.id,
        status="pending",
        now=activate_at or NOW,
    )
    assert line.id is not None
    if activate_at is not None:
        lifecycle.activate_line(session, line_id=line.id, actor=SYSTEM, now=activate_at)
    return line


def _store_line(session: Session, world: World, small: Plan) -> tuple[Line, Buyer]:
    """The store purchase of the small plan, paid 1 Sep 00:30 local, activated 01:00."""
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    credit(session, buyer, 20_000, key="dash:buyer")
    order = place(
        session,
        dataclasses.replace(world, plan=small),
        buyer,
        msisdn=_free(150),
        now=local(2026, 9, 1, 0, 30),
    )
    order = complete(session, order, now=local(2026, 9, 1, 0, 30))
    assert order.line_id is not None
    line = lifecycle.activate_line(
        session, line_id=order.line_id, actor=SYSTEM, now=local(2026, 9, 1, 1, 0)
    )
    return line, buyer


def _free(offset: int) -> str:
    return f"+{FIRST + offset}"


def _renew(session: Session, now: datetime) -> None:
    run_renewals(session, now=now, quarantine_days=90, actor=SYSTEM)


def _buy(session: Session, line: Line, addon: AddOn, at: datetime, key: str) -> None:
    assert line.id is not None and addon.id is not None
    buy_addon(session, line_id=line.id, addon_id=addon.id, key=key, actor=SYSTEM, now=at)


def _export(session: Session, month: str, folder: Path, now: datetime) -> None:
    export_settlement(
        session, host_code="HOSTA", month=month, out_dir=folder, actor=SYSTEM, now=now
    )


def build(session: Session, folder: Path) -> Business:
    """The business of the module docstring, through the real services."""
    world = make_world(session, code="HOSTA")
    small = small_plan(session, world)
    addon = upsert_addon(
        session,
        code="DASH1G",
        names={"zh_Hans": "1GB 流量包", "en": "1 GB pack"},
        price_minor=1500,
        data_mb=1024,
        status="published",
        actor=STAFF,
        now=NOW,
    )
    store, buyer = _store_line(session, world, small)
    _export(session, "2026-09", folder, local(2026, 9, 15))  # superseded below

    arrears_customer = subscribers.create_customer(session, ref="C-ARREARS", now=NOW)
    arrears = staff_line(
        session, arrears_customer, small, offset=170, activate_at=local(2026, 9, 5)
    )
    september = [
        ("S1", store.msisdn, "voice", local(2026, 9, 20, 9), 300),  # 5 min: 3 over
        ("S2", arrears.msisdn, "sms", local(2026, 9, 21, 9), 5),  # 3 over, no balance
    ]
    import_rows(session, folder, september, now=local(2026, 9, 30, 23, 59))
    _export(session, "2026-09", folder, local(2026, 10, 2))

    _renew(session, local(2026, 10, 1, 1, 5))
    import_rows(
        session,
        folder,
        [("O1", store.msisdn, "sms", local(2026, 10, 10, 9), 5)],
        now=local(2026, 10, 20, 10),
    )
    staff = staff_line(
        session, world.customer, world.plan, offset=160, activate_at=local(2026, 10, 11)
    )
    fund(session, world, 10_000, now=local(2026, 10, 11))
    _buy(session, store, addon, local(2026, 10, 15, 12), "oct-15")
    _export(session, "2026-10", folder, local(2026, 11, 2))

    _renew(session, local(2026, 11, 1))
    _buy(session, store, addon, local(2026, 10, 31, 23, 59, 59), "oct-31-last-second")
    _buy(session, store, addon, local(2026, 11, 1), "nov-1-first-second")
    _renew(session, local(2026, 11, 10, 0, 30))
    first = staff_line(
        session,
        world.customer,
        world.other_plan,
        offset=161,
        activate_at=local(2026, 11, 10, 23, 59, 59),
    )
    second = staff_line(
        session, world.customer, world.other_plan, offset=162, activate_at=local(2026, 11, 11)
    )
    staff_line(session, world.customer, world.plan, offset=163, activate_at=None)
    assert staff.id is not None
    lifecycle.terminate_line(
        session,
        line_id=staff.id,
        reason="moved abroad",
        quarantine_days=90,
        actor=STAFF,
        now=local(2026, 11, 13),
    )
    cost = compute_settlement(session, host=world.host, month="2026-11").total_minor
    assert buyer.customer_id
    return Business(world, small, addon, store, staff, (first, second), arrears, cost)
