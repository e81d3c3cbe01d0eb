"""Store orders under concurrency, with committed transactions in threads: a double
submit completes an order once; two buyers racing for the last SIM get one each
at most (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlmodel import func, select

from app.core.db import Database
from app.ledger.balances import customer_balance
from app.onboarding import purchase
from app.subscribers.errors import NoSimStock
from app.subscribers.models import Line, PurchaseOrder
from numbering.models import Sim
from tests.concurrency import fresh_database, race
from tests.factories import NOW
from tests.unit.onboarding.test_orders import BUYER, Buyer, add_sims, credit, place
from tests.unit.subscribers.helpers import make_world

THREADS = 8


@pytest.fixture
def own_database(backend: str, tmp_path: Any) -> Any:
    """A fresh, migrated database of the backend, outside the per-test rollback."""
    yield from fresh_database(backend, tmp_path, "orders", pool_size=THREADS + 2)


def _complete_in_parallel(db: Database, order_ids: list[int]) -> Counter[str]:
    def complete(order_id: int) -> None:
        with db.transaction() as session:
            purchase.complete_order(session, order_id=order_id, actor=BUYER, now=NOW)

    return race(complete, order_ids, {NoSimStock: "no stock"})


def test_a_double_submit_in_parallel_completes_the_order_once(own_database: Database) -> None:
    with own_database.transaction() as session:
        world = make_world(session, code="RACE")
        add_sims(session, world, "esim", count=3)
        buyer = Buyer(session)
        order = place(session, world, buyer)
        credit(session, buyer, order.total_minor * 2, "race-fund")
        order_id, customer_id, total = order.id, buyer.customer_id, order.total_minor
    assert order_id is not None
    outcomes = _complete_in_parallel(own_database, [order_id] * THREADS)
    assert outcomes == Counter({"ok": THREADS})
    with own_database.transaction() as session:
        assert customer_balance(session, customer_id=customer_id) == total
        assert session.exec(select(func.count()).select_from(Line)).one() == 1
        taken = session.exec(select(func.count()).select_from(Sim).where(Sim.status != "in_stock"))
        assert taken.one() == 1


def test_two_buyers_racing_for_the_last_sim_do_not_share_it(own_database: Database) -> None:
    with own_database.transaction() as session:
        world = make_world(session, code="LAST")
        add_sims(session, world, "esim", count=2)
        placed = []
        for n in range(2):
            buyer = Buyer(session)
            order = place(session, world, buyer)
            credit(session, buyer, order.total_minor, f"last-{n}")
            placed.append(order.id)
        # One SIM goes missing before anyone pays.
        first_sim = session.exec(select(Sim).order_by(Sim.id)).first()  # type: ignore[arg-type]
        assert first_sim is not None
        first_sim.status = "retired"
        session.add(first_sim)
    outcomes = _complete_in_parallel(own_database, [i for i in placed if i is not None])
    assert outcomes == Counter({"ok": 1, "no stock": 1})
    with own_database.transaction() as session:
        paid = session.exec(
            select(func.count()).select_from(PurchaseOrder).where(PurchaseOrder.status == "paid")
        ).one()
        assert paid == 1
        assert session.exec(select(func.count()).select_from(Line)).one() == 1
