"""Concurrent add-on purchases on one line, with committed transactions in threads:
a double submit (one key) charges once; different keys stop when the balance is spent."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import func, select

from app.charging.addons import buy_addon
from app.charging.models import LinePeriod, PeriodAddOn
from app.charging.periods import open_period
from app.core.audit import Actor
from app.core.db import Database
from app.ledger.balances import customer_balance
from app.ledger.errors import InsufficientBalance
from app.ledger.movements import credit_customer
from plans.addons import upsert_addon
from tests.concurrency import fresh_database, race
from tests.factories import NOW
from tests.unit.subscribers.helpers import STAFF, make_line, make_world

THREADS = 8
SOON = NOW + timedelta(hours=1)
BUYER = Actor("subscriber", 1, "buyer@example.com")


@pytest.fixture
def own_database(backend: str, tmp_path: Any) -> Any:
    """A fresh, migrated database of the backend, outside the per-test rollback."""
    yield from fresh_database(backend, tmp_path, "addons", pool_size=THREADS + 2)


def _setup(db: Database, balance: int) -> tuple[int, int, int, int]:
    with db.transaction() as session:
        world = make_world(session, code="CONC")
        line = make_line(session, world)
        period = open_period(session, line=line, plan=world.plan, start=NOW, now=NOW)
        addon = upsert_addon(
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
        credit_customer(
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
    def buy(key: str) -> None:
        with db.transaction() as session:
            buy_addon(session, line_id=line_id, addon_id=addon_id, key=key, actor=BUYER, now=SOON)

    return race(buy, keys, {InsufficientBalance: "poor"})


def test_a_double_submit_in_parallel_charges_once(own_database: Database) -> None:
    line_id, addon_id, period_id, customer_id = _setup(own_database, 5000)
    outcomes = _run(own_database, line_id, addon_id, ["same-form-token"] * THREADS)
    assert outcomes == Counter({"ok": THREADS})
    with own_database.transaction() as session:
        assert customer_balance(session, customer_id=customer_id) == 4000
        assert session.exec(select(func.count()).select_from(PeriodAddOn)).one() == 1
        period = session.get(LinePeriod, period_id)
        assert period is not None and period.data_kb == (10240 + 1024) * 1024


def test_parallel_purchases_stop_when_the_balance_is_spent(own_database: Database) -> None:
    line_id, addon_id, period_id, customer_id = _setup(own_database, 3000)
    outcomes = _run(own_database, line_id, addon_id, [f"form-{i}" for i in range(THREADS)])
    assert outcomes == Counter({"ok": 3, "poor": THREADS - 3})
    with own_database.transaction() as session:
        assert customer_balance(session, customer_id=customer_id) == 0
        assert session.exec(select(func.count()).select_from(PeriodAddOn)).one() == 3
        period = session.get(LinePeriod, period_id)
        assert period is not None and period.data_kb == (10240 + 3 * 1024) * 1024
