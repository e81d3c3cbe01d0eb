"""Concurrent add-on purchases on one line, with committed transactions in threads:
a double submit (one key) charges once; different keys stop when the balance is spent."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from app.charging.addons import buy_addon
from app.charging.models import LinePeriod, PeriodAddOn
from app.charging.periods import open_period
from app.core.audit import Actor
from app.core.db import Database
from app.core.migrate import recreate_postgres_database, upgrade
from app.ledger import services as ledger
from app.ledger.errors import InsufficientBalance
from plans import services as plans
from tests.factories import NOW
from tests.unit.subscribers.helpers import STAFF, make_line, make_world

THREADS = 8
SOON = NOW + timedelta(hours=1)
BUYER = Actor("subscriber", 1, "buyer@example.com")


@pytest.fixture
def own_database(backend: str, tmp_path: Any) -> Any:
    """A fresh, migrated database of the backend, outside the per-test rollback."""
    if backend.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'addons.db'}"
    else:
        parsed = make_url(backend)
        url = parsed.set(database=f"{parsed.database}_addons").render_as_string(hide_password=False)
        recreate_postgres_database(url)
    database = Database(url, pool_size=THREADS + 2, max_overflow=4)
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


def _setup(db: Database, balance: int) -> tuple[int, int, int, int]:
    with db.transaction() as session:
        world = make_world(session, code="CONC")
        line = make_line(session, world)
        period = open_period(session, line=line, plan=world.plan, start=NOW, now=NOW)
        addon = plans.upsert_addon(
            session,
            code="DATA1G",
            names={"en": "1 GB"},
            price_minor=1000,
            data_mb=1024,
            status="published",
            actor=STAFF,
            now=NOW,
        )
        assert world.customer.id is not None
        ledger.credit_customer(
            session,
            customer_id=world.customer.id,
            amount_minor=balance,
            source_kind="cash_offline",
            idempotency_key="fund",
            actor=STAFF,
            now=NOW,
            cap_months=24,
            reference_monthly_minor=5000,
            currency="CNY",
        )
        assert line.id and addon.id and period.id
        return line.id, addon.id, period.id, world.customer.id


def _run(db: Database, line_id: int, addon_id: int, keys: list[str]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(keys))

    def buy(key: str) -> None:
        start.wait()
        try:
            with db.transaction() as session:
                buy_addon(
                    session, line_id=line_id, addon_id=addon_id, key=key, actor=BUYER, now=SOON
                )
            result = "ok"
        except InsufficientBalance:
            result = "poor"
        except Exception as exc:
            result = f"error: {exc!r}"
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=buy, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_a_double_submit_in_parallel_charges_once(own_database: Database) -> None:
    line_id, addon_id, period_id, customer_id = _setup(own_database, 5000)
    outcomes = _run(own_database, line_id, addon_id, ["same-form-token"] * THREADS)
    assert outcomes == Counter({"ok": THREADS})
    with own_database.transaction() as session:
        assert ledger.customer_balance(session, customer_id=customer_id) == 4000
        assert session.exec(select(func.count()).select_from(PeriodAddOn)).one() == 1
        period = session.get(LinePeriod, period_id)
        assert period is not None and period.data_kb == (10240 + 1024) * 1024


def test_parallel_purchases_stop_when_the_balance_is_spent(own_database: Database) -> None:
    line_id, addon_id, period_id, customer_id = _setup(own_database, 3000)
    outcomes = _run(own_database, line_id, addon_id, [f"form-{i}" for i in range(THREADS)])
    assert outcomes == Counter({"ok": 3, "poor": THREADS - 3})
    with own_database.transaction() as session:
        assert ledger.customer_balance(session, customer_id=customer_id) == 0
        assert session.exec(select(func.count()).select_from(PeriodAddOn)).one() == 3
        period = session.get(LinePeriod, period_id)
        assert period is not None and period.data_kb == (10240 + 3 * 1024) * 1024
