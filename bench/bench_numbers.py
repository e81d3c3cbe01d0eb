"""Numbering at a million numbers: block load, ends-with search, concurrent holds.

    .venv/bin/python bench/bench_numbers.py [--backend sqlite|postgresql|both] [--size N]

For each backend, on a throwaway database (SQLite: a temporary file;
PostgreSQL: the database `mvno_bench`, or BENCH_DATABASE_URL, emptied and
migrated first):

a. `add_number_block` of N numbers, beside a baseline measured in the same
   run on another fresh database: the raw driver's fastest insert of the same
   rows without golden tiers (psycopg COPY / sqlite3 executemany).
b. 200 ends-with searches of random 4-digit suffixes through
   `search_numbers`, beside the same query sent as raw SQL text.
c. 16 threads reserving random numbers for 10 s, each reservation its own
   committed transaction; afterwards the holders of every number are
   counted. Exit status 1 if any number was handed to two holders.

Targets: load ≤ 30 s; search p95 ≤ 50 ms; PostgreSQL ≥ 300 reservations/s;
zero duplicates.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url

from app.core.audit import Actor
from app.core.db import Database, UTCDateTime
from bench.common import (
    BACKENDS,
    fresh_database,
    percentile,
    print_table,
    timed,
)
from numbering.blocks import add_number_block
from numbering.errors import NumberUnavailable
from numbering.lifecycle import reserve_number
from numbering.models import NumberBlock
from numbering.search import search_numbers
from wholesale.models import HostCarrier

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
FIRST = 8617000000000  # +86 170 0000 0000: a valid Chinese mobile range
LOAD_TARGET_S = 30.0
SEARCH_P95_TARGET_MS = 50.0
PG_RESERVATIONS_TARGET = 300.0
SEARCHES = 200
THREADS = 16
RACE_SECONDS = 10.0
# Threads draw from this many numbers, so some of them collide and race.
HOT_NUMBERS = 50_000

COLUMNS = "msisdn, msisdn_reversed, block_id, status, tier, surcharge_minor, status_changed_at"
SEARCH_SQL = (
    "SELECT id, msisdn, msisdn_reversed, block_id, status, tier, surcharge_minor,"
    " reserved_until, reserved_by, quarantine_until, status_changed_at"
    " FROM phone_number"
    " WHERE (status = 'available' OR (status = 'reserved' AND reserved_until <= :now))"
    " AND msisdn_reversed >= :low AND msisdn_reversed < :high"
    " ORDER BY msisdn LIMIT 21 OFFSET 0"
)


def add_host(database: Database) -> int:
    with database.transaction() as session:
        host = HostCarrier(code="BENCH", name="Bench host", created_at=NOW)
        session.add(host)
        session.flush()
        assert host.id is not None
        return host.id


# -- a. block load --------------------------------------------------------------------


def raw_rows(first: int, size: int, block_id: int, stamp: Any) -> Iterator[tuple[Any, ...]]:
    for n in range(first, first + size):
        msisdn = f"+{n}"
        yield (msisdn, msisdn[::-1], block_id, "available", None, 0, stamp)


def baseline_load(database: Database, backend: str, size: int) -> float:
    """Seconds for the raw driver to insert the rows without tiers, commit included."""
    host_id = add_host(database)
    with database.transaction() as session:
        block = NumberBlock(
            host_id=host_id,
            first=f"+{FIRST}",
            last=f"+{FIRST + size - 1}",
            size=size,
            received_at=NOW,
        )
        session.add(block)
        session.flush()
        assert block.id is not None
        block_id = block.id
    database.engine.dispose()
    url = make_url(database.url)
    if backend == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as pg:
            start = time.perf_counter()
            with (
                pg.cursor() as cursor,
                cursor.copy(f"COPY phone_number ({COLUMNS}) FROM STDIN") as copy,
            ):
                for row in raw_rows(FIRST, size, block_id, NOW):
                    copy.write_row(row)
            pg.commit()
            return time.perf_counter() - start
    connection = sqlite3.connect(str(url.database), isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        stamp = NOW.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        placeholders = ", ".join("?" * 7)
        sql = f"INSERT INTO phone_number ({COLUMNS}) VALUES ({placeholders})"
        start = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        rows = raw_rows(FIRST, size, block_id, stamp)
        while batch := list(itertools.islice(rows, 50_000)):
            connection.executemany(sql, batch)
        connection.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        connection.close()


def service_load(database: Database, size: int) -> tuple[float, int]:
    """Seconds for `add_number_block` of `size` numbers in one committed transaction."""
    host_id = add_host(database)

    def load() -> int:
        with database.transaction() as session:
            block = add_number_block(
                session,
                host_id=host_id,
                first=f"+{FIRST}",
                last=f"+{FIRST + size - 1}",
                actor=Actor.system("bench"),
                now=NOW,
            )
            assert block.id is not None
            return block.id

    seconds, block_id = timed(load)
    return seconds, block_id


# -- b. search ------------------------------------------------------------------------


def next_prefix(digits: str) -> str:
    """The smallest digit string above every string starting with `digits` (":" past 9999)."""
    stripped = digits.rstrip("9")
    return stripped[:-1] + str(int(stripped[-1]) + 1) if stripped else ":"


def search_figures(database: Database, backend: str, size: int) -> dict[str, Any]:
    rng = random.Random(4)
    suffixes = [f"{rng.randrange(10_000):04d}" for _ in range(SEARCHES)]
    service_ms: list[float] = []
    found = 0
    for suffix in suffixes:
        start = time.perf_counter()
        with database.transaction(write=False) as session:
            page = search_numbers(session, pattern=suffix, mode="ends_with", now=NOW)
        service_ms.append((time.perf_counter() - start) * 1000)
        found += len(page.items)
    statement = text(SEARCH_SQL).bindparams(bindparam("now", type_=UTCDateTime()))
    raw_ms: list[float] = []
    for suffix in suffixes:
        low = suffix[::-1]
        high = next_prefix(low)
        start = time.perf_counter()
        with database.engine.connect() as connection:
            connection.execute(statement, {"now": NOW, "low": low, "high": high}).fetchall()
        raw_ms.append((time.perf_counter() - start) * 1000)
    with database.engine.connect() as connection:
        explain = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
        plan = connection.execute(
            text(explain + SEARCH_SQL).bindparams(bindparam("now", type_=UTCDateTime())),
            {"now": NOW, "low": "4321", "high": "4322"},
        ).fetchall()
    return {
        "service": sorted(service_ms),
        "raw": sorted(raw_ms),
        "found_per_search": found / len(suffixes),
        "plan": [" | ".join(str(cell) for cell in row) for row in plan],
    }


# -- c. concurrent reservations -------------------------------------------------------


def race(database: Database, size: int) -> dict[str, Any]:
    hot = min(size, HOT_NUMBERS)
    successes: list[tuple[str, str]] = []
    conflicts = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(THREADS)
    deadline = [0.0]

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine: list[tuple[str, str]] = []
        mine_conflicts = 0
        attempt = 0
        start_gate.wait()
        try:
            while time.perf_counter() < deadline[0]:
                attempt += 1
                msisdn = f"+{FIRST + rng.randrange(hot)}"
                holder = f"bench-{index}-{attempt}"
                try:
                    with database.transaction() as session:
                        reserve_number(session, msisdn=msisdn, holder=holder, now=NOW)
                    mine.append((msisdn, holder))
                except NumberUnavailable:
                    mine_conflicts += 1
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        with lock:
            successes.extend(mine)
            conflicts[0] += mine_conflicts

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    deadline[0] = time.perf_counter() + RACE_SECONDS + 0.5
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]

    # Count holders per number: our record of successes and the table must agree.
    per_number = Counter(msisdn for msisdn, _ in successes)
    duplicates = sum(count - 1 for count in per_number.values() if count > 1)
    with database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT msisdn, reserved_by FROM phone_number WHERE status = 'reserved'")
        ).all()
    held = {str(msisdn): str(holder) for msisdn, holder in rows}
    mismatched = sum(1 for msisdn, holder in successes if held.get(msisdn) != holder)
    return {
        "reservations": len(successes),
        "conflicts": conflicts[0],
        "seconds": elapsed,
        "per_second": len(successes) / elapsed,
        "duplicates": duplicates,
        "mismatched": mismatched,
        "held_in_table": len(held),
    }


# -- report ---------------------------------------------------------------------------


def run_backend(backend: str, size: int) -> dict[str, Any]:
    print(f"\n== {backend}: {size:,} numbers ==", flush=True)
    with fresh_database(backend) as database:
        baseline = baseline_load(database, backend, size)
    print(f"baseline raw insert: {baseline:.1f} s", flush=True)
    with fresh_database(backend, pool_size=THREADS + 4, max_overflow=0) as database:
        load, _ = service_load(database, size)
        print(f"add_number_block:    {load:.1f} s", flush=True)
        search = search_figures(database, backend, size)
        print("search plan:\n    " + "\n    ".join(search["plan"]), flush=True)
        racing = race(database, size)
    return {"backend": backend, "baseline": baseline, "load": load, **search, "race": racing}


def ms(value: float) -> str:
    return f"{value:.2f}"


def report(results: list[dict[str, Any]], size: int) -> bool:
    """Print the tables; True when no number was handed out twice."""
    print_table(
        f"(a) add_number_block of {size:,} numbers (target ≤ {LOAD_TARGET_S:.0f} s)",
        ["backend", "service s", "raw insert s", "ratio", "target"],
        [
            [
                r["backend"],
                f"{r['load']:.1f}",
                f"{r['baseline']:.1f}",
                f"{r['load'] / r['baseline']:.2f}x",
                "met" if r["load"] <= LOAD_TARGET_S else "MISSED",
            ]
            for r in results
        ],
    )
    rows = []
    for r in results:
        service, raw = r["service"], r["raw"]
        p95 = percentile(service, 95)
        rows.append(
            [
                r["backend"],
                ms(percentile(service, 50)),
                ms(p95),
                ms(service[-1]),
                ms(percentile(raw, 50)),
                ms(percentile(raw, 95)),
                ms(raw[-1]),
                f"{p95 / percentile(raw, 95):.2f}x",
                f"{r['found_per_search']:.1f}",
                "met" if p95 <= SEARCH_P95_TARGET_MS else "MISSED",
            ]
        )
    print_table(
        f"(b) {SEARCHES} ends-with-4-digit searches, ms (target p95 ≤ {SEARCH_P95_TARGET_MS:.0f})",
        [
            "backend",
            "p50",
            "p95",
            "max",
            "raw p50",
            "raw p95",
            "raw max",
            "p95 ratio",
            "rows/page",
            "target",
        ],
        rows,
    )
    rows = []
    clean = True
    for r in results:
        race = r["race"]
        bad = race["duplicates"] + race["mismatched"]
        clean = clean and bad == 0
        target = "met"
        if r["backend"] == "postgresql" and race["per_second"] < PG_RESERVATIONS_TARGET:
            target = "MISSED"
        if bad:
            target = "DUPLICATES"
        rows.append(
            [
                r["backend"],
                race["reservations"],
                race["conflicts"],
                f"{race['per_second']:.0f}",
                race["held_in_table"],
                race["duplicates"],
                race["mismatched"],
                target,
            ]
        )
    print_table(
        f"(c) {THREADS} threads reserving for {RACE_SECONDS:.0f} s "
        f"(target PostgreSQL ≥ {PG_RESERVATIONS_TARGET:.0f}/s, zero duplicates)",
        [
            "backend",
            "reserved",
            "conflicts",
            "per s",
            "held in table",
            "duplicates",
            "holder mismatches",
            "target",
        ],
        rows,
    )
    return clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if not 1 <= args.size <= 1_000_000:
        parser.error("--size must be from 1 to 1000000")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [run_backend(backend, args.size) for backend in backends]
    if not report(results, args.size):
        print("\nFAIL: a number was handed to two holders", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
