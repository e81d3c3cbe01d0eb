"""Demo data for `make run`: the basics (sample catalog and SIMs, staff for every
role, the demo store logins, the sample subscribers and China's public holidays
in the SLA calendar, this year's and the next) and, unless `size` is 0,
a living business of about `size` customers replayed over the last three months
(app/demo/business.py).

Idempotent: the basics are keyed by e-mail, code and ICCID, and the business
is built once (a second load reports its figures and changes nothing).
Deterministic: one `seed` and `size` give the same business.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from app.core.config import Settings
from app.core.db import Database
from app.core.pii import PiiCipher
from app.demo.basics import (
    DEMO_DIR,
    DEMO_DOMAIN,
    DEMO_SUBSCRIBER_PASSWORD,
    DEMO_SUBSCRIBERS,
    demo_staff_email,
    demo_staff_password,
    load_basics,
    load_holidays,
    load_money,
)
from app.demo.world import DEFAULT_SEED, DEFAULT_SIZE, make_world
from app.payments.services import MoneyPolicy

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_SIZE",
    "DEMO_DIR",
    "DEMO_DOMAIN",
    "DEMO_SUBSCRIBERS",
    "DEMO_SUBSCRIBER_PASSWORD",
    "demo_staff_email",
    "demo_staff_password",
    "load_demo",
]


def load_demo(
    db: Database,
    *,
    settings: Settings,
    now: datetime,
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    workdir: Path | None = None,
) -> dict[str, object]:
    """Load the demo (see the module docstring), each step its own unit of work.

    The business's files (usage, settlement) are written under `workdir`
    (default `instance/demo`). With a business the basics are loaded as of
    its first day, so the sample subscribers live through the replay too.
    :raises DemoInterrupted: an earlier load stopped half-way through the business.
    """
    from app.demo.business import build_business

    policy = MoneyPolicy.from_settings(settings)
    cipher = PiiCipher(settings.pii_key)
    world = make_world(
        seed=seed,
        size=size,
        policy=policy,
        cipher=cipher,
        timezone=settings.timezone,
        quarantine_days=settings.number_quarantine_days,
        workdir=workdir or settings.instance_path / "demo",
        now=now,
    )
    start = world.day(0) + timedelta(hours=8) if size else now
    with db.transaction() as session:
        report = load_basics(session, now=start, policy=policy, cipher=cipher)
        # Before the business: its tickets' due times follow the holidays of its months.
        load_holidays(session, first=start, now=now, timezone=settings.timezone)
    if size:
        report["business"] = build_business(db, world, settings=settings)
    with db.transaction() as session:
        load_money(session, now=now, policy=policy)
    return report
