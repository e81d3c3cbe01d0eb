"""Helpers shared by the benchmark scripts: throwaway databases, timing, tables."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from app.core.db import Database
from app.core.migrate import recreate_postgres_database, upgrade

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_BENCH_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/mvno_bench"


def pg_bench_url(database: str | None = None) -> str:
    """BENCH_DATABASE_URL (or the default), with its database name replaced by `database`."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG_BENCH_URL)
    if database is None:
        return url
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop the PostgreSQL database of `url` if it exists, closing its sessions first."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def fresh_database(
    backend: str, *, pg_database: str | None = None, drop: bool = False, **engine_kwargs: Any
) -> Iterator[Database]:
    """A newly migrated, empty database of `backend`, removed (or emptied) afterwards.

    PostgreSQL: the database of `pg_bench_url(pg_database)`, created if
    missing; afterwards its schema is emptied, or with `drop` the database
    itself is dropped.
    """
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="mvno-bench-") as folder:
            database = Database(f"sqlite:///{Path(folder) / 'bench.db'}", **engine_kwargs)
            try:
                upgrade(database.engine)
                yield database
            finally:
                database.dispose()
        return
    url = pg_bench_url(pg_database)
    recreate_postgres_database(url)
    database = Database(url, **engine_kwargs)
    try:
        upgrade(database.engine)
        yield database
    finally:
        database.dispose()
        if drop:
            drop_postgres_database(url)
        else:
            recreate_postgres_database(url)


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0–100) by linear interpolation between closest ranks."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [list(map(str, header))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
