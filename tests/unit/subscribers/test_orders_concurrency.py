"""Store orders under concurrency, with committed transactions in threads: a double
submit completes an order once; two buyers racing for the last SIM get one each
at most (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from app.core.db import Database
from app.core.migrate import recreate_postgres_database, upgrade
from app.ledger import services as ledger
from app.subscribers import orders
from app.subscribers.errors import NoSimStock
from app.subscribers.models import Line, PurchaseOrder
from numbering.models import Sim
from tests.factories import NOW
from tests.unit.subscribers.helpers import make_world
from tests.unit.subscribers.test_orders import BUYER, Buyer, add_sims, credit, place

THREADS = 8


@pytest.fixture
def own_database(backend: str, tmp_path: Any) -> Any:
    """A fresh, migrated database of the backend, outside the per-test rollback."""
    if backend.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'orders.db'}"
    else:
        parsed = make_url(backend)
        url = parsed.set(database=f"{parsed.database}_orders").render_as_string(hide_password=False)
        recreate_postgres_database(url)
    database = Database(url, pool_size=THREADS + 2, max_overflow=4)
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


def _complete_in_parallel(db: Database, order_ids: list[int]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(order_ids))

    def run(order_id: int) -> None:
        start.wait()
        try:
            with db.transaction() as session:
                orders.complete_order(session, order_id=order_id, actor=BUYER, now=NOW)
            result = "ok"
        except NoSimStock:
            result = "no stock"
        except Exception as exc:
            result = f"error: {exc!r}"
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run, args=(order_id,)) for order_id in order_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


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
        assert ledger.customer_balance(session, customer_id=customer_id) == total
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
