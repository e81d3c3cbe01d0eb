"""Renewals at scale: `run_renewals` over N lines due at once, beside a raw bulk INSERT.

    .venv/bin/python bench/bench_renewals.py [--backend sqlite|postgresql|both]
        [--lines N] [--batch-size B] [--unpaid-every K]

For each backend, on a throwaway database (SQLite: a file in a temporary
folder, WAL, through the app's engine settings; PostgreSQL: a new database
`mvno_bench_renewals` on the server of BENCH_DATABASE_URL, dropped at the
end), migrated with the project's migrations:

* setup, by bulk inserts (not timed against the target): one host, one
  30-day plan at 39.00, N customers with an e-mail, N active lines with a
  first period that ends at the same instant, and each customer's opening
  balance posted by `post_entries` (kind `opening_balance`). Every K-th
  line's customer holds 38.99 (its renewal fails: suspension through the
  lifecycle, provisioning `suspend`, notice); of the others, half hold
  49.00 (renewed, then a low-balance notice) and half 88.00 (renewed);
* baseline: the raw driver inserting N line_period rows (the periods the
  run opens) into a scratch copy of the table, one transaction, commit
  included (psycopg COPY / sqlite3 executemany): the floor for writing that
  much, before entries, postings, balances, audit records and notices;
* service: `run_renewals(database, now=the period end)` — batches of B due
  lines, one committed transaction each (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL);
* checks: the report's counts, the rows in line_period, journal_entry
  (kind renewal), audit_entry (line.renew), notification and
  provisioning_event, the line statuses, and `check_ledger`; then a rerun
  with the same `now`, which must find nothing to do.

Target: PostgreSQL ≤ 60 s for 100,000 lines. Exit status 1 when a check
fails or the PostgreSQL target is missed.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.charging.models import LinePeriod
from app.charging.renewal_terms import ENTRY_KIND, RenewalReport
from app.charging.renewals import DEFAULT_WORKERS, run_renewals
from app.core.audit import Actor, AuditEntry
from app.core.db import Database
from app.core.floors import discover
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.checks import check_ledger
from app.ledger.models import JournalEntry
from app.ledger.posting import BulkEntry, post_entries
from app.notifications.models import Notification
from app.provisioning.models import ProvisioningEvent
from app.subscribers.models import Customer, Line
from bench.common import BACKENDS, fresh_database, print_table, timed
from plans.models import Plan
from wholesale.models import HostCarrier

discover("models")  # registers every table for the ORM's flush order

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
VALIDITY_DAYS = 30
DUE = START + timedelta(days=VALIDITY_DAYS)
PRICE = 3900
CURRENCY = "CNY"
PG_DATABASE = "mvno_bench_renewals"
PG_TARGET_SECONDS = 60.0
DEFAULT_LINES = 100_000
DEFAULT_UNPAID_EVERY = 50
CHUNK = 10_000
ACTOR = Actor.system("bench")
FIRST_MSISDN = 8617100000000
PERIOD_COLUMNS = (
    "line_id",
    "plan_id",
    "start",
    "end",
    "price_minor",
    "data_kb",
    "voice_s",
    "sms",
    "data_kb_used",
    "voice_s_used",
    "sms_used",
    "created_at",
)


def _chunks(n: int) -> Iterator[range]:
    for first in range(0, n, CHUNK):
        yield range(first, min(first + CHUNK, n))


def opening_balance(index: int, unpaid_every: int) -> int:
    if index % unpaid_every == 0:
        return PRICE - 1
    return PRICE + 1000 if index % 2 else 2 * PRICE + 1000


# -- setup ----------------------------------------------------------------------------


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Rows into `table` in the session's transaction: COPY on PostgreSQL, else executemany."""
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(insert(table), rows)
        return
    names = list(rows[0])
    columns = ", ".join(f'"{name}"' for name in names)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])


@dataclass(frozen=True)
class World:
    plan_id: int
    line_ids: list[int]


def build(database: Database, lines: int, unpaid_every: int) -> World:
    """N customers, lines due at DUE with their first period, and opening balances."""
    customers = Customer.__table__  # type: ignore[attr-defined]
    line_table = Line.__table__  # type: ignore[attr-defined]
    periods = LinePeriod.__table__  # type: ignore[attr-defined]
    with database.transaction() as session:
        host = HostCarrier(code="BENCH", name="Bench host", created_at=START)
        session.add(host)
        session.flush()
        assert host.id is not None
        plan = Plan(
            code="LITE30",
            status="published",
            names={"en": "Lite"},
            host_id=host.id,
            currency=CURRENCY,
            price_minor=PRICE,
            validity_days=VALIDITY_DAYS,
            data_mb=10240,
            voice_min=200,
            sms=100,
            created_at=START,
            published_at=START,
        )
        session.add(plan)
        session.flush()
        assert plan.id is not None
        connection = session.connection()
        for chunk in _chunks(lines):
            bulk_insert(
                session,
                customers,
                [
                    {
                        "ref": f"C-{n:07d}",
                        "name": f"Bench customer {n}",
                        "email": f"c{n}@bench.example",
                        "created_at": START,
                    }
                    for n in chunk
                ],
            )
        customer_ids = [
            row[0] for row in connection.execute(select(customers.c.id).order_by(customers.c.id))
        ]
        for chunk in _chunks(lines):
            bulk_insert(
                session,
                line_table,
                [
                    {
                        "customer_id": customer_ids[n],
                        "msisdn": f"+{FIRST_MSISDN + n}",
                        "plan_id": plan.id,
                        "status": "active",
                        "auto_renew": True,
                        "period_end": DUE,
                        "service_started_at": START,
                        "created_at": START,
                        "status_changed_at": START,
                    }
                    for n in chunk
                ],
            )
        line_ids = [
            row[0] for row in connection.execute(select(line_table.c.id).order_by(line_table.c.id))
        ]
        for chunk in _chunks(lines):
            bulk_insert(
                session,
                periods,
                [
                    {
                        "line_id": line_ids[n],
                        "plan_id": plan.id,
                        "start": START,
                        "end": DUE,
                        "price_minor": PRICE,
                        "data_kb": 10240 * 1024,
                        "voice_s": 200 * 60,
                        "sms": 100,
                        "data_kb_used": 0,
                        "voice_s_used": 0,
                        "sms_used": 0,
                        "created_at": START,
                    }
                    for n in chunk
                ],
            )
        accounts = customer_account_ids(session, customer_ids=customer_ids, currency=CURRENCY)
        cash = system_account_id(session, kind="cash_offline", currency=CURRENCY)
        # One opening entry per customer, as a migration import posts them (an entry
        # with many postings would make the deferred balance trigger quadratic).
        for chunk in _chunks(lines):
            post_entries(
                session,
                entries=[
                    BulkEntry(
                        kind="opening_balance",
                        idempotency_key=f"opening:{customer_ids[n]}",
                        postings=(
                            (cash, -opening_balance(n, unpaid_every)),
                            (accounts[customer_ids[n]], opening_balance(n, unpaid_every)),
                        ),
                    )
                    for n in chunk
                ],
                actor=ACTOR,
                now=START,
            )
        return World(plan_id=plan.id, line_ids=line_ids)


# -- baseline -------------------------------------------------------------------------


def baseline(database: Database, backend: str, world: World) -> float:
    """Seconds for the raw driver to insert N period rows into a scratch copy, commit included."""
    rows = [
        (
            line_id,
            world.plan_id,
            DUE,
            DUE + timedelta(days=VALIDITY_DAYS),
            PRICE,
            10240 * 1024,
            200 * 60,
            100,
            0,
            0,
            0,
            DUE,
        )
        for line_id in world.line_ids
    ]
    columns = ", ".join(f'"{c}"' for c in PERIOD_COLUMNS)
    url = make_url(database.url)
    if backend == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as pg:
            pg.execute("CREATE TABLE bench_period_copy (LIKE line_period INCLUDING ALL)")
            pg.commit()
            start = time.perf_counter()
            with (
                pg.cursor() as cursor,
                cursor.copy(f"COPY bench_period_copy ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            pg.commit()
            seconds = time.perf_counter() - start
            pg.execute("DROP TABLE bench_period_copy")
            pg.commit()
            return seconds
    connection = sqlite3.connect(str(url.database), isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("CREATE TABLE bench_period_copy AS SELECT * FROM line_period WHERE 0")
        stamp = [
            tuple(
                v.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
                if isinstance(v, datetime)
                else v
                for v in row
            )
            for row in rows
        ]
        placeholders = ", ".join("?" * len(PERIOD_COLUMNS))
        sql = f"INSERT INTO bench_period_copy ({columns}) VALUES ({placeholders})"
        start = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        for first in range(0, len(stamp), 50_000):
            connection.executemany(sql, stamp[first : first + 50_000])
        connection.execute("COMMIT")
        seconds = time.perf_counter() - start
        connection.execute("DROP TABLE bench_period_copy")
        return seconds
    finally:
        connection.close()


# -- checks ---------------------------------------------------------------------------


def check(
    database: Database, report: RenewalReport, lines: int, unpaid_every: int
) -> tuple[list[str], str]:
    unpaid = len(range(0, lines, unpaid_every))
    paid = lines - unpaid
    low = sum(1 for n in range(lines) if n % unpaid_every and n % 2)
    problems: list[str] = []
    expected = {
        "lines_seen": lines,
        "renewed": paid,
        "periods_opened": paid,
        "suspended": unpaid,
        "unpaid": unpaid,
        "resumed": 0,
        "terminated": 0,
    }
    got = report.as_dict()
    for name, value in expected.items():
        if got[name] != value:
            problems.append(f"report {name} = {got[name]}, expected {value}")

    with database.transaction(write=False) as session:

        def count(table: Any, *where: Any) -> int:
            statement = select(func.count()).select_from(table).where(*where)
            return int(session.execute(statement).scalar() or 0)

        tables = {
            "line_period rows": (count(LinePeriod.__table__), lines + paid),  # type: ignore[attr-defined]
            "renewal entries": (
                count(JournalEntry.__table__, JournalEntry.kind == ENTRY_KIND),  # type: ignore[attr-defined]
                paid,
            ),
            "line.renew audit rows": (
                count(AuditEntry.__table__, AuditEntry.action == "line.renew"),  # type: ignore[attr-defined]
                paid,
            ),
            "notifications": (count(Notification.__table__), paid + low + unpaid),  # type: ignore[attr-defined]
            "suspend events": (count(ProvisioningEvent.__table__), unpaid),  # type: ignore[attr-defined]
            "active lines": (count(Line.__table__, Line.status == "active"), paid),  # type: ignore[attr-defined]
            "suspended lines": (count(Line.__table__, Line.status == "suspended"), unpaid),  # type: ignore[attr-defined]
            "lines still due": (
                count(
                    Line.__table__,  # type: ignore[attr-defined]
                    Line.period_end <= DUE,  # type: ignore[operator]
                    Line.status == "active",
                ),
                0,
            ),
        }
        for name, (value, wanted) in tables.items():
            if value != wanted:
                problems.append(f"{name}: {value}, expected {wanted}")
        ledger = check_ledger(session, cap_months=24, reference_monthly_minor=5000)
        problems.extend(ledger.problems[:20])
    line = (
        f"check_ledger: ok={ledger.ok}, {ledger.entries:,} entries, {ledger.postings:,} postings;"
        f" {paid:,} renewed, {unpaid:,} suspended, {low:,} low-balance notices expected"
    )
    return problems, line


# -- per backend ----------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    lines: int
    setup_seconds: float
    baseline_seconds: float
    service_seconds: float
    rerun_seconds: float
    problems: list[str]

    @property
    def rate(self) -> float:
        return self.lines / self.service_seconds

    @property
    def target(self) -> str:
        if self.backend != "postgresql":
            return "—"
        return "met" if self.service_seconds <= PG_TARGET_SECONDS else "MISSED"


def run_backend(
    backend: str, *, lines: int, batch_size: int, unpaid_every: int, workers: int
) -> Result:
    print(
        f"\n== {backend}: {lines:,} lines due at once, batches of {batch_size:,},"
        f" {workers if backend == 'postgresql' else 1} worker(s) ==",
        flush=True,
    )
    with fresh_database(
        backend, pg_database=PG_DATABASE, drop=True, pool_size=workers + 2
    ) as database:
        setup_seconds, world = timed(lambda: build(database, lines, unpaid_every))
        print(f"setup: {lines:,} customers, lines, periods, balances in {setup_seconds:.1f} s")
        if backend == "postgresql":
            with database.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
        baseline_seconds = baseline(database, backend, world)
        print(f"baseline: raw insert of {lines:,} periods in {baseline_seconds:.2f} s", flush=True)
        service_seconds, report = timed(
            lambda: run_renewals(
                database, now=DUE, quarantine_days=90, batch_size=batch_size, workers=workers
            )
        )
        print(
            f"service: run_renewals in {service_seconds:.1f} s,"
            f" {lines / service_seconds:,.0f} lines/s: {report.as_dict()}",
            flush=True,
        )
        rerun_seconds, rerun = timed(lambda: run_renewals(database, now=DUE, quarantine_days=90))
        problems, line = check(database, report, lines, unpaid_every)
        if rerun.lines_seen or rerun.renewed or rerun.suspended:
            problems.append(f"the rerun did something: {rerun.as_dict()}")
        print(line)
        print(f"rerun with the same now: {rerun_seconds:.2f} s, {rerun.as_dict()}", flush=True)
    return Result(
        backend=backend,
        lines=lines,
        setup_seconds=setup_seconds,
        baseline_seconds=baseline_seconds,
        service_seconds=service_seconds,
        rerun_seconds=rerun_seconds,
        problems=problems,
    )


def report_table(results: list[Result]) -> None:
    print_table(
        f"Renewals of lines due at once; target PostgreSQL ≤ {PG_TARGET_SECONDS:.0f} s"
        f" for {DEFAULT_LINES:,} lines",
        [
            "backend",
            "lines",
            "run_renewals s",
            "lines/s",
            "raw period insert s",
            "ratio run/raw",
            "rerun s",
            "checks",
            "target",
        ],
        [
            [
                r.backend,
                f"{r.lines:,}",
                f"{r.service_seconds:.1f}",
                f"{r.rate:,.0f}",
                f"{r.baseline_seconds:.2f}",
                f"{r.service_seconds / r.baseline_seconds:.1f}",
                f"{r.rerun_seconds:.2f}",
                "ok" if not r.problems else "FAILED",
                r.target,
            ]
            for r in results
        ],
    )
    for r in results:
        for problem in r.problems:
            print(f"  {r.backend}: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="PostgreSQL batch takers at once"
    )
    parser.add_argument(
        "--unpaid-every",
        type=int,
        default=DEFAULT_UNPAID_EVERY,
        help="every K-th line cannot pay its renewal (default 50: 2%%)",
    )
    args = parser.parse_args(argv)
    if min(args.lines, args.batch_size, args.unpaid_every, args.workers) < 1:
        parser.error("--lines, --batch-size, --unpaid-every and --workers must be positive")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [
        run_backend(
            backend,
            lines=args.lines,
            batch_size=args.batch_size,
            unpaid_every=args.unpaid_every,
            workers=args.workers,
        )
        for backend in backends
    ]
    report_table(results)
    failed = [r for r in results if r.problems]
    missed = [r for r in results if r.target == "MISSED"]
    if failed:
        print("\nFAIL: checks failed after the run", file=sys.stderr)
    if missed:
        print(f"\nFAIL: PostgreSQL took more than {PG_TARGET_SECONDS:.0f} s", file=sys.stderr)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
