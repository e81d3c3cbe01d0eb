"""Helpers shared by the benchmark scripts: throwaway databases, timing, tables."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

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


# Usage records written server-side, as a benchmark's fixture (rating is not what
# is measured): record i belongs to line `first_line + i % lines`, starts `offset`
# seconds after `start` (spread over `span` seconds) and falls in that line's
# period number `offset // period_s` — the line's periods having consecutive ids
# from `first_period + (i % lines) * periods`. A line's records cycle through
# data, data, voice, sms; `within` is the billable quantity (KB rounded up for
# data, voice rounded up to `increment` seconds), `over` and the charge zero.
_USAGE_FILL = """
INSERT INTO usage_record (host_id, record_id, start_time, file_id, line_id, period_id, service,
                          quantity, within, over, charge_minor, called_number)
SELECT :host, :prefix || lpad(i::text, 10, '0'),
       CAST(:start AS TIMESTAMPTZ) + o * INTERVAL '1 second', 0,
       :first_line + i % :lines,
       :first_period + (i % :lines) * :periods + LEAST(o / :period_s, :periods - 1),
       s, q,
       CASE s WHEN 'data' THEN (q + 1023) / 1024
              WHEN 'voice' THEN (q + :increment - 1) / :increment * :increment ELSE q END,
       0, 0, NULL
FROM generate_series(1::bigint, :records) AS i,
     LATERAL (SELECT (i * 7919) % :span AS o,
                     (ARRAY['data', 'data', 'voice', 'sms'])[1 + (i / :lines) % 4] AS s) AS a,
     LATERAL (SELECT CASE s WHEN 'sms' THEN 1 + i % 3 WHEN 'voice' THEN 1 + i % 1200
                            ELSE 1024 + (i * 31) % 50000000 END AS q) AS b
"""


def fill_usage(
    connection: Connection,
    *,
    host_id: int,
    records: int,
    start: datetime,
    span_s: int,
    first_line: int,
    lines: int,
    first_period: int | None = None,
    periods: int = 1,
    period_s: int | None = None,
    increment_s: int = 60,
    prefix: str = "B",
) -> None:
    """`records` usage records by one server-side INSERT … SELECT (see `_USAGE_FILL`).

    The monthly partitions must exist (`app.usage.store.ensure_partitions`).
    """
    connection.execute(
        text(_USAGE_FILL),
        {
            "host": host_id,
            "prefix": prefix,
            "start": start,
            "span": span_s,
            "first_line": first_line,
            "lines": lines,
            "first_period": first_line if first_period is None else first_period,
            "periods": periods,
            "period_s": period_s or span_s,
            "increment": increment_s,
            "records": records,
        },
    )
