"""The state a demo business is built with: its seed, its clock and its cast.

The demo replays a small reseller's last three months day by day. `World`
holds what the steps share: the seeded generator (every random choice of
the demo is drawn from it, in a fixed order, so one seed gives one
business), the settings the services need, the local calendar, and the
lines the demo has opened with each line's habits (how much of its
allowance it uses, whether its customer keeps paying).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from app.auth.models import StaffUser
from app.core.audit import Actor
from app.core.pii import PiiCipher
from app.payments.services import MoneyPolicy
from app.payments.vouchers import VoucherPolicy
from plans.models import Plan

HOST_CODE = "HOSTA"
DAYS = 90
DEFAULT_SEED = 2026
DEFAULT_SIZE = 300

# How a customer pays: keeps topping up, stops paying (the line is suspended
# at its next renewal; some come back), or leaves (the line is terminated).
HABITS = ("steady", "lapsing", "leaving")


@dataclass
class DemoLine:
    """A line the demo opened, with the habits its traffic and payments follow."""

    line_id: int
    customer_id: int
    msisdn: str
    plan_code: str
    use: float  # share of the allowance used in a period, about
    habit: str
    account_id: int | None = None
    fraud: bool = False
    email: str = ""  # the self-care login of a customer who bought in the store
    comeback_days: int | None = None  # a lapsing customer pays again after so many days
    leave_day: int | None = None  # a leaving customer's line ends on this replay day


@dataclass
class World:
    """What every step of the demo business shares (see the module docstring)."""

    rng: random.Random
    size: int
    policy: MoneyPolicy
    cipher: PiiCipher
    zone: ZoneInfo
    timezone: str
    quarantine_days: int
    workdir: Path
    first_day: datetime  # local midnight of the first day replayed
    now: datetime
    voucher_policy: VoucherPolicy = field(default_factory=VoucherPolicy)
    lines: list[DemoLine] = field(default_factory=list)
    vouchers: list[tuple[str, str, int]] = field(default_factory=list)  # serial, PIN, value
    record_seq: int = 0
    figures: dict[str, int] = field(default_factory=dict)

    def day(self, n: int) -> datetime:
        """Local midnight of day `n` of the replay (day 0 is the first)."""
        local = self.first_day.date() + timedelta(days=n)
        return datetime.combine(local, time(0), tzinfo=self.zone)

    @property
    def days(self) -> int:
        """How many local days are replayed: the first up to and including today."""
        return (self.now.astimezone(self.zone).date() - self.first_day.date()).days + 1

    def at(self, n: int, hours: float) -> datetime:
        """An instant of day `n`, `hours` after its local midnight, never after now."""
        return min(self.day(n) + timedelta(hours=hours), self.now)

    def buyer(self, line: DemoLine) -> Actor | None:
        """The customer acting in self-care, when they have a login."""
        if line.account_id is None:
            return None
        return Actor("subscriber", line.account_id, line.email)

    def count(self, name: str, by: int = 1) -> None:
        """Add `by` to the figure `name` of the demo's report."""
        self.figures[name] = self.figures.get(name, 0) + by

    def line(self, line_id: int) -> DemoLine | None:
        """The demo line `line_id`, if the demo opened it."""
        for line in self.lines:
            if line.line_id == line_id:
                return line
        return None


def make_world(
    *,
    seed: int,
    size: int,
    policy: MoneyPolicy,
    cipher: PiiCipher,
    timezone: str,
    quarantine_days: int,
    workdir: Path,
    now: datetime,
) -> World:
    """A world whose replay starts `DAYS` local days before `now`."""
    zone = ZoneInfo(timezone)
    first = now.astimezone(zone).date() - timedelta(days=DAYS)
    return World(
        rng=random.Random(seed),  # noqa: S311 (demo data, reproducible from its seed)
        size=size,
        policy=policy,
        cipher=cipher,
        zone=zone,
        timezone=timezone,
        quarantine_days=quarantine_days,
        workdir=workdir,
        first_day=datetime.combine(first, time(0), tzinfo=zone),
        now=now,
    )


def staff_actor(session: Session, email: str) -> Actor:
    """The acting demo staff member with this e-mail (created by the basics)."""
    staff = session.exec(select(StaffUser).where(StaffUser.email == email)).one()
    return Actor("staff", staff.id, staff.email)


def plan_ids(session: Session) -> dict[str, int]:
    """The published plans' ids by code."""
    plans = session.exec(select(Plan).where(Plan.status == "published")).all()
    return {plan.code: plan.id for plan in plans if plan.id is not None}


def pick_use(rng: random.Random) -> float:
    """How much of its allowance a line uses: light, medium or heavy."""
    kind = rng.random()
    if kind < 0.4:
        return rng.uniform(0.15, 0.4)
    if kind < 0.85:
        return rng.uniform(0.4, 0.75)
    return rng.uniform(0.75, 0.97)


def pick_habit(rng: random.Random) -> str:
    """How a customer pays (see `HABITS`)."""
    draw = rng.random()
    return "steady" if draw < 0.9 else "lapsing" if draw < 0.97 else "leaving"
