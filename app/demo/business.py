"""A living business for the demo: three months of a small reseller, replayed.

The replay starts 90 local days before now and steps a day at a time, each
day its own units of work, with the services' `now` set to the moment each
thing happens:

* day 0: SIM stock, voucher batches, the migrated base (app/demo/base.py);
* every day: the day's store sales (app/demo/store.py), top-ups, lapses,
  departures and data packs (app/demo/money.py), tickets
  (app/demo/care.py); in the evening the provisioning outbox is delivered
  (the `log` host confirms activations, which opens the new lines'
  periods); before midnight the renewal job runs;
* every seventh day: the host's usage file of the week before, imported
  by the real importer (app/demo/traffic.py); on the first day of a month
  the settlement of the month before is exported (the dashboard's
  wholesale cost);
* at the end: the usage of the last days, with the fraud case's 20 GB, and
  a fraud scan, which raises its alert (`run_fraud_scan`).

Every choice is drawn from `random.Random(seed)` in a fixed order, so a
seed and a size give the same business (the figures; voucher PINs and
other secrets are random). The business is built once: a finished load
leaves a `demo.business` audit record, and a second load reports the
figures and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.analytics.fraud import scan_fraud
from app.analytics.lines import count_lines_by_status
from app.auth import passwords
from app.care.models import Ticket
from app.charging.renewals import run_renewals
from app.core.audit import Actor, AuditEntry, record_audit
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import N_, Conflict
from app.demo.base import base_count, migrate_base, numbers_for, print_vouchers
from app.demo.basics import demo_staff_email
from app.demo.care import plan_tickets, tickets_of_day
from app.demo.money import buy_packs, give_fate, lose_phones, money_of_day
from app.demo.people import make_people
from app.demo.store import sale_days, sell_line
from app.demo.traffic import fraud_rows, import_week
from app.demo.world import World, staff_actor
from app.provisioning.services import deliver_pending
from app.subscribers.models import Customer, Line
from app.usage.models import UsageRecord, UsageReject
from app.usage.settlement import export_settlement

MARKER = "demo.business"
FIRST_REF = "P-0001"
WEEK = 7


class DemoInterrupted(Conflict):
    """An earlier load of the demo business stopped half-way."""

    code = "demo_interrupted"


def figures(session: Session) -> dict[str, Any]:
    """What the business holds now: customers, lines by status, usage and tickets."""
    tickets = dict(
        session.exec(select(Ticket.status, func.count()).group_by(col(Ticket.status))).all()
    )
    return {
        "customers": session.exec(select(func.count()).select_from(Customer)).one(),
        "lines": count_lines_by_status(session),
        "usage_records": session.exec(select(func.count()).select_from(UsageRecord)).one(),
        "usage_rejects": session.exec(select(func.count()).select_from(UsageReject)).one(),
        "tickets": tickets,
    }


def already_built(session: Session) -> bool:
    """Whether a finished load built the business.

    :raises DemoInterrupted: the business was begun and not finished.
    """
    marker = session.exec(select(AuditEntry.id).where(AuditEntry.action == MARKER)).first()
    if marker is not None:
        return True
    begun = session.exec(select(Customer.id).where(Customer.ref == FIRST_REF)).first()
    if begun is not None:
        raise DemoInterrupted(
            N_("An earlier demo load stopped half-way; load the demo into a fresh database.")
        )
    return False


def run_fraud_scan(session: Session, world: World) -> int:
    """Run the fraud rules over the replayed usage (the first-day 20 GB line is flagged);
    returns the number of new alerts."""
    return len(scan_fraud(session, now=world.now, timezone=world.timezone).alert_ids)


class Replay:
    """The day-by-day replay of one world (see the module docstring)."""

    def __init__(self, db: Database, world: World, settings: Settings) -> None:
        self.db, self.world, self.settings = db, world, settings
        store = max(world.size - base_count(world.size), 1)
        self.buyers = make_people(world.rng, store)
        self.numbers = numbers_for(world, 3 * world.size)
        self.sales = sale_days(world, store - 1)
        self.fraud_day = max(world.days - 3, 0)
        self.lost_day = world.rng.randrange(world.days // 3, world.days - 5)
        self.tickets = plan_tickets(world)
        self.sold = 0

    def actors(self, session: Session) -> tuple[Actor, Actor]:
        """The demo's care and finance staff."""
        return (
            staff_actor(session, demo_staff_email("care")),
            staff_actor(session, demo_staff_email("finance")),
        )

    def first_day(self) -> None:
        """SIM stock, the migrated base and the voucher batches."""
        world = self.world
        with self.db.transaction() as session:
            _care, finance = self.actors(session)
            migrate_base(
                session,
                world,
                numbers=self.numbers,
                spare_sims=len(self.buyers) + 20,
                now=world.at(0, 9),
            )
            for line in world.lines:
                give_fate(world, line, opened_day=0)
            print_vouchers(session, world, finance=finance, now=world.at(0, 10))

    def sell(self, session: Session, n: int, care: Actor) -> None:
        """The store sales of day `n` (the fraud case's among them, two days ago)."""
        world = self.world
        count = self.sales.count(n) + (1 if n == self.fraud_day else 0)
        for k in range(count):
            fraud = n == self.fraud_day and k == count - 1
            line = sell_line(
                session,
                world,
                n=self.sold + 1,
                person=self.buyers[self.sold],
                msisdn=self.numbers.pop(),
                shop=care,
                now=world.at(n, 10 if fraud else world.rng.uniform(9, 20.5)),
                plan_code="DATA99" if fraud else None,
            )
            line.fraud = fraud
            give_fate(world, line, opened_day=n)
            self.sold += 1

    def settle(self, session: Session, n: int, finance: Actor) -> None:
        """On the first local day of a month, export the settlement of the month before."""
        day = self.world.day(n)
        if day.day != 1 or n == 0:
            return
        before = day - timedelta(days=1)
        export_settlement(
            session,
            host_code="HOSTA",
            month=f"{before:%Y-%m}",
            out_dir=self.world.workdir / "settlement",
            actor=finance,
            now=self.world.at(n, 6),
        )

    def day(self, n: int) -> None:
        """One day of the business (see the module docstring)."""
        world = self.world
        with self.db.transaction() as session:
            care, finance = self.actors(session)
            if n and n % WEEK == 0:
                import_week(session, world, start=world.day(n - WEEK), end=world.day(n))
            self.settle(session, n, finance)
            self.sell(session, n, care)
            money_of_day(session, world, n=n, care=care, finance=finance)
            if n == self.lost_day:
                lose_phones(session, world, n=n, care=care)
            buy_packs(session, world, n=n, care=care)
            tickets_of_day(session, world, self.tickets, n=n, care=care)
        deliver_pending(self.db, now=world.at(n, 21.5), settings=self.settings, limit=100_000)
        with self.db.transaction() as session:
            run_renewals(session, now=world.at(n, 23.9), quarantine_days=world.quarantine_days)

    def last_days(self) -> dict[str, Any]:
        """The usage since the last weekly file, the fraud case, the scan, the marker."""
        world = self.world
        with self.db.transaction() as session:
            extra = []
            for line in world.lines:
                if line.fraud:
                    row = session.get(Line, line.line_id)
                    if row is not None and row.period_end is not None:
                        activated = row.status_changed_at
                        extra = fraud_rows(world, line, activated=activated)
            last = (world.days - 1) // WEEK * WEEK
            import_week(
                session,
                world,
                start=world.day(last),
                end=world.now - timedelta(hours=1),
                extra=extra,
            )
            scanned = run_fraud_scan(session, world)
            result = {**world.figures, "fraud_alerts": scanned, **figures(session)}
            record_audit(
                session,
                actor=Actor.system("demo"),
                action=MARKER,
                now=world.now,
                target_type="demo",
                target_id=str(world.size),
                details={k: v for k, v in result.items() if isinstance(v, int)},
            )
            return result


def build_business(db: Database, world: World, *, settings: Settings) -> dict[str, Any]:
    """Build the demo business once (see the module docstring); returns its figures.

    :raises DemoInterrupted: an earlier load stopped half-way.
    """
    with db.transaction() as session:
        if already_built(session):
            return {"already_loaded": True, **figures(session)}
    replay = Replay(db, world, settings)
    # The store's buyers share the documented demo password: their hashes are
    # made with the cheap profile (80 full-cost hashes would take most of the
    # load's time), and a login rehashes them (app/auth/passwords.py).
    passwords.configure("cheap")
    try:
        replay.first_day()
        for n in range(world.days):
            replay.day(n)
        return {"already_loaded": False, **replay.last_days()}
    finally:
        passwords.configure(settings.password_hash_profile)
