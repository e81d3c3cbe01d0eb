"""`line.service_started_at` and `line.period_gap_at` (app/charging/periods.py): kept as
periods open, and filled from the periods by migration 0014 for lines opened before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import select

from app.charging.periods import open_period
from app.core.db import Database
from app.core.migrate import alembic_config, upgrade
from app.subscribers.models import Line
from tests.concurrency import fresh_database
from tests.factories import NOW
from tests.unit.subscribers.helpers import make_line, make_world

DAY = timedelta(days=1)
PERIOD = 30 * DAY


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    yield from fresh_database(backend, tmp_path, "periods", pool_size=2)


def _kept(database: Database) -> dict[int, tuple[object, object]]:
    with database.transaction(write=False) as session:
        lines = session.exec(select(Line).order_by(Line.id)).all()  # type: ignore[arg-type]
        return {line.id or 0: (line.service_started_at, line.period_gap_at) for line in lines}


def test_the_migration_fills_the_columns_as_the_periods_kept_them(database: Database) -> None:
    with database.transaction() as session:
        world = make_world(session, code="GAPS")
        chained, gapped, ahead = (make_line(session, world) for _ in range(3))
        make_line(session, world, status="pending")  # no period: neither column
        for start in (NOW, NOW + PERIOD):
            open_period(session, line=chained, plan=world.plan, start=start, now=start)
        for start in (NOW, NOW + PERIOD + 10 * DAY, NOW + 2 * PERIOD + 10 * DAY):
            open_period(session, line=gapped, plan=world.plan, start=start, now=start)
        for start in (NOW, NOW + PERIOD, NOW + 2 * PERIOD):  # paid ahead: end to start
            open_period(session, line=ahead, plan=world.plan, start=start, now=NOW)
        ids = (chained.id, gapped.id, ahead.id)
    kept = _kept(database)
    assert [kept[i or 0] for i in ids] == [
        (NOW, None),
        (NOW, NOW + PERIOD + 10 * DAY),
        (NOW, None),
    ]
    assert sorted(kept.values(), key=repr).count((None, None)) == 1

    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection=connection), "0013")
        columns = {c[1] for c in connection.execute(text("SELECT * FROM line")).cursor.description}
        assert not {"service_started_at", "period_gap_at"} & columns
    upgrade(database.engine)

    assert _kept(database) == kept
