"""Ledger postings per second: `post_entry` under 8 concurrent writers, beside raw SQL.

    .venv/bin/python bench/bench_postings.py [--backend sqlite|postgresql|both]
        [--seconds S] [--threads N] [--customers N] [--profile]

For each backend, on a throwaway database (SQLite: a file in a temporary
folder, WAL, through the app's engine settings; PostgreSQL: a new database
`mvno_bench_postings` on the server of BENCH_DATABASE_URL, dropped at the
end), migrated with the project's migrations:

* setup: N customers (C-000001 …), the system `cash_offline` account (its
  SYSTEM_SHARDS shard accounts) and each customer's `customer_prepaid`
  account, via `get_or_create_account`;
* service: THREADS threads for a fixed duration (10 s by default), each
  operation one unit of work `Database.transaction()` (BEGIN IMMEDIATE on
  SQLite) calling `post_entry` with a unique idempotency key: −100 on a
  random shard of cash_offline (as the services pick one), +100 on a random
  customer's prepaid account.
  `post_entry`, not `credit_customer`: the benchmark measures the posting
  path itself; `credit_customer` adds the cap look-up and an audit row.
  Balances stay far below the cap (24 × 50.00 = 1,200.00 per customer)
  anyway, and `check_ledger` checks that too;
* raw: the same work, same threads and duration, with the bare driver
  (sqlite3 / psycopg, not SQLAlchemy), one transaction per entry: SQLite
  `BEGIN IMMEDIATE`, PostgreSQL `SELECT … FOR UPDATE` of the two accounts in
  id order; then `UPDATE ledger_account SET balance_minor = balance_minor + ?`
  for both, the journal_entry row (the columns the ORM writes, request hash
  included) and both posting rows in one INSERT, COMMIT.

Every entry is 2 postings: postings/s = 2 × entries/s. A "database is
locked" (SQLite) or deadlock/serialization failure (PostgreSQL) is retried
with the same key and counted; there should be none. Afterwards
`check_ledger` (cap 24 months × 50.00) must be ok and the entry count must
equal what the threads committed, else the exit status is 1.

Both paths post to the same rows: cash_offline is in every entry, spread
over its shards exactly as the services spread it. With a single cash row,
PostgreSQL throughput was bounded by that row's lock being held until each
commit reached the disk; the shards lift that bound (the raw path gained
most). The service path is then bound by CPU: on a 2-core machine that
also runs PostgreSQL, each entry costs the service ~4.5 ms of CPU against
well under 1 ms for the raw driver calls (writers as processes measured no
faster than threads). With --profile (or automatically
when the PostgreSQL service path misses its target) one more service run
profiles thread 0 with cProfile.

Targets: PostgreSQL service ≥ 1,000 postings/s and ≥ 0.3 × raw.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import multiprocessing
import pstats
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
import psycopg.errors
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.core.audit import Actor
from app.core.db import Database
from app.core.floors import discover
from app.ledger.accounts import SYSTEM_SHARDS, get_or_create_account
from app.ledger.checks import check_ledger
from app.ledger.posting import post_entry
from app.subscribers.models import Customer
from bench.common import BACKENDS, fresh_database, print_table, timed

discover("models")  # registers every table for the ORM's flush order

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PG_DATABASE = "mvno_bench_postings"
CURRENCY = "EUR"
KIND = "bench.credit"
AMOUNT = 100
ACTOR = Actor.system("bench")
CAP_MONTHS = 24
REFERENCE_MONTHLY_MINOR = 5000
PG_POSTINGS_TARGET = 1000.0
PG_RATIO_TARGET = 0.3
DEFAULT_THREADS = 8
DEFAULT_SECONDS = 10.0
DEFAULT_CUSTOMERS = 2000
PROFILE_SECONDS = 5.0
PROFILE_LINES = 25

ENTRY_COLUMNS = (
    "kind, idempotency_key, request_hash, external_ref, actor_kind, actor_id, actor_label, memo, at"
)

# An operation posts one entry for (idempotency key, customer account id); the
# factories return it with its clean-up.
Operation = Callable[[str, int], None]
Worker = tuple[Operation, Callable[[], None]]


@dataclass(frozen=True)
class Accounts:
    # The shards of the cash_offline system account (SYSTEM_SHARDS of them):
    # each entry posts to one at random, as the ledger's services do.
    cash_ids: list[int]
    customer_account_ids: list[int]


@dataclass(frozen=True)
class RunResult:
    path: str
    entries: int
    retries: int
    seconds: float

    @property
    def postings_per_second(self) -> float:
        return 2 * self.entries / self.seconds


def request_hash(kind: str, postings: list[tuple[int, int]]) -> str:
    """The fingerprint post_entry stores, computed the same way for the raw rows."""
    payload = json.dumps([kind, sorted([a, m] for a, m in postings)], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def is_retryable(exc: BaseException) -> bool:
    """SQLite busy/locked, PostgreSQL deadlock or serialization failure (wrapped or not)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return "locked" in message or "busy" in message
    return isinstance(
        exc,
        psycopg.errors.DeadlockDetected
        | psycopg.errors.SerializationFailure
        | psycopg.errors.LockNotAvailable,
    )


# -- setup ----------------------------------------------------------------------------


def create_accounts(database: Database, customers: int) -> Accounts:
    with database.transaction() as session:
        get_or_create_account(session, kind="cash_offline", currency=CURRENCY)
        cash_ids = [
            get_or_create_account(session, kind="cash_offline", currency=CURRENCY, shard=shard).id
            or 0
            for shard in range(SYSTEM_SHARDS)
        ]
        rows = [
            Customer(ref=f"C-{n:06d}", name=f"Bench customer {n}", created_at=NOW)
            for n in range(1, customers + 1)
        ]
        session.add_all(rows)
        session.flush()
        ids: list[int] = []
        for customer in rows:
            assert customer.id is not None
            account = get_or_create_account(
                session, kind="customer_prepaid", customer_id=customer.id, currency=CURRENCY
            )
            assert account.id is not None
            ids.append(account.id)
        return Accounts(cash_ids=cash_ids, customer_account_ids=ids)


# -- the two paths --------------------------------------------------------------------


def service_operation(database: Database, accounts: Accounts) -> Worker:
    def operation(key: str, account_id: int) -> None:
        with database.transaction() as session:
            post_entry(
                session,
                kind=KIND,
                idempotency_key=key,
                postings=[(random.choice(accounts.cash_ids), -AMOUNT), (account_id, AMOUNT)],
                actor=ACTOR,
                now=NOW,
            )

    return operation, lambda: None


def raw_sqlite_operation(url: str, accounts: Accounts) -> Worker:
    connection = sqlite3.connect(
        str(make_url(url).database), isolation_level=None, timeout=30, check_same_thread=False
    )
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "busy_timeout=30000",
        "synchronous=NORMAL",
    ):
        connection.execute(f"PRAGMA {pragma}")
    at = NOW.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    update = "UPDATE ledger_account SET balance_minor = balance_minor + ? WHERE id = ?"
    insert_entry = f"INSERT INTO journal_entry ({ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    insert_postings = (
        "INSERT INTO posting (entry_id, account_id, amount_minor) VALUES (?, ?, ?), (?, ?, ?)"
    )

    def operation(key: str, account_id: int) -> None:
        cash_id = random.choice(accounts.cash_ids)
        postings = [(cash_id, -AMOUNT), (account_id, AMOUNT)]
        fingerprint = request_hash(KIND, postings)
        connection.execute("BEGIN IMMEDIATE")
        try:
            for target, amount in sorted(postings):
                connection.execute(update, (amount, target))
            cursor = connection.execute(
                insert_entry,
                (KIND, key, fingerprint, None, ACTOR.kind, ACTOR.id, ACTOR.label, "", at),
            )
            entry_id = cursor.lastrowid
            connection.execute(
                insert_postings, (entry_id, cash_id, -AMOUNT, entry_id, account_id, AMOUNT)
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    return operation, connection.close


def raw_postgres_operation(url: str, accounts: Accounts) -> Worker:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(conninfo)
    lock = "SELECT id FROM ledger_account WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
    update = "UPDATE ledger_account SET balance_minor = balance_minor + %s WHERE id = %s"
    insert_entry = (
        f"INSERT INTO journal_entry ({ENTRY_COLUMNS})"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
    )
    insert_postings = (
        "INSERT INTO posting (entry_id, account_id, amount_minor) VALUES (%s, %s, %s), (%s, %s, %s)"
    )

    def operation(key: str, account_id: int) -> None:
        cash_id = random.choice(accounts.cash_ids)
        postings = [(cash_id, -AMOUNT), (account_id, AMOUNT)]
        fingerprint = request_hash(KIND, postings)
        try:
            with connection.cursor() as cursor:
                cursor.execute(lock, ([cash_id, account_id],))
                cursor.fetchall()
                for target, amount in sorted(postings):
                    cursor.execute(update, (amount, target))
                cursor.execute(
                    insert_entry,
                    (KIND, key, fingerprint, None, ACTOR.kind, ACTOR.id, ACTOR.label, "", NOW),
                )
                row = cursor.fetchone()
                assert row is not None
                entry_id = row[0]
                cursor.execute(
                    insert_postings, (entry_id, cash_id, -AMOUNT, entry_id, account_id, AMOUNT)
                )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise

    return operation, connection.close


def post_until(
    operation: Operation,
    accounts: Accounts,
    rng: random.Random,
    name: str,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[int, int]:
    """Post entries on random customers until `deadline`; returns (entries, retries)."""
    done = retried = 0
    while clock() < deadline:
        key = f"bench-{name}-{done}"
        account_id = rng.choice(accounts.customer_account_ids)
        while True:
            try:
                operation(key, account_id)
                break
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                retried += 1
        done += 1
    return done, retried


# -- the threads ----------------------------------------------------------------------


def run_threads(
    path: str,
    make_operation: Callable[[], Worker],
    accounts: Accounts,
    *,
    threads: int,
    seconds: float,
    profile: cProfile.Profile | None = None,
) -> RunResult:
    """`threads` threads posting entries until `seconds` have passed; thread 0 may be profiled."""
    counts = [0] * threads
    retries = [0] * threads
    finished = [0.0] * threads
    errors: list[BaseException] = []
    clock: dict[str, float] = {}

    def start_clock() -> None:
        clock["start"] = time.perf_counter()
        clock["deadline"] = clock["start"] + seconds

    gate = threading.Barrier(threads, action=start_clock)

    def worker(index: int) -> None:
        rng = random.Random(f"{path}-{index}")
        operation, close = make_operation()
        try:
            gate.wait()
            if profile is not None and index == 0:
                profile.enable()
            counts[index], retries[index] = post_until(
                operation, accounts, rng, f"{path}-{index}", clock["deadline"], time.perf_counter
            )
        except BaseException as exc:  # reported after the run
            errors.append(exc)
            gate.abort()
        finally:
            if profile is not None and index == 0:
                profile.disable()
            finished[index] = time.perf_counter()
            close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return RunResult(
        path=path,
        entries=sum(counts),
        retries=sum(retries),
        seconds=max(finished) - clock["start"],
    )


def _make_operation(path: str, backend: str, url: str, accounts: Accounts) -> Worker:
    """The operation of `path` in a fresh process: its own engine or connection."""
    if path == "raw":
        make_raw = raw_sqlite_operation if backend == "sqlite" else raw_postgres_operation
        return make_raw(url, accounts)
    database = Database(url, pool_size=2, max_overflow=0)
    operation, _close = service_operation(database, accounts)
    return operation, database.dispose


def _process_worker(
    path: str,
    backend: str,
    url: str,
    accounts: Accounts,
    index: int,
    seconds: float,
    gate: Any,
    results: Any,
) -> None:
    """One writer process (as a gunicorn worker is): post until `seconds` have passed."""
    try:
        operation, close = _make_operation(path, backend, url, accounts)
        rng = random.Random(f"{path}-{index}")
        gate.wait()
        started = time.time()
        done, retried = post_until(
            operation, accounts, rng, f"{path}-{index}", started + seconds, time.time
        )
        finished = time.time()
        close()
        results.put((index, done, retried, started, finished, None))
    except BaseException as exc:  # reported by the parent
        gate.abort()
        results.put((index, 0, 0, 0.0, 0.0, repr(exc)))


def run_processes(
    path: str, backend: str, url: str, accounts: Accounts, *, processes: int, seconds: float
) -> RunResult:
    """`processes` writer processes (spawned, each with its own connections)."""
    context = multiprocessing.get_context("spawn")
    gate = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_process_worker,
            args=(path, backend, url, accounts, index, seconds, gate, results),
        )
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    rows = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    failures = [row[5] for row in rows if row[5]]
    if failures:
        raise RuntimeError(f"a writer process failed: {failures[0]}")
    return RunResult(
        path=path,
        entries=sum(row[1] for row in rows),
        retries=sum(row[2] for row in rows),
        seconds=max(row[4] for row in rows) - min(row[3] for row in rows),
    )


# -- per backend ----------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    service: RunResult
    raw: RunResult
    check_ok: bool
    check_line: str
    problems: list[str]
    profile: str | None


def profile_text(profile: cProfile.Profile, seconds: float, entries: int) -> str:
    out = io.StringIO()
    out.write(
        f"cProfile of thread 0 of the service path ({entries} entries in {seconds:.1f} s"
        f" across all threads):\n"
    )
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    return out.getvalue()


def run_backend(
    backend: str,
    *,
    threads: int,
    seconds: float,
    customers: int,
    force_profile: bool,
    writers: str,
) -> BackendResult:
    print(
        f"\n== {backend}: {threads} writer {writers} × {seconds:.0f} s, {customers:,} customers =="
    )
    with fresh_database(
        backend, pg_database=PG_DATABASE, drop=True, pool_size=threads + 2, max_overflow=0
    ) as database:
        setup_seconds, accounts = timed(lambda: create_accounts(database, customers))
        print(f"setup: {customers:,} customers and accounts in {setup_seconds:.1f} s", flush=True)

        def run(path: str) -> RunResult:
            if writers == "processes":
                return run_processes(
                    path, backend, database.url, accounts, processes=threads, seconds=seconds
                )
            return run_threads(
                path,
                lambda: (
                    _make_operation(path, backend, database.url, accounts)
                    if path == "raw"
                    else service_operation(database, accounts)
                ),
                accounts,
                threads=threads,
                seconds=seconds,
            )

        service = run("service")
        print(
            f"service: {service.entries:,} entries in {service.seconds:.1f} s,"
            f" {service.postings_per_second:,.0f} postings/s, {service.retries} retries",
            flush=True,
        )
        raw = run("raw")
        print(
            f"raw:     {raw.entries:,} entries in {raw.seconds:.1f} s,"
            f" {raw.postings_per_second:,.0f} postings/s, {raw.retries} retries",
            flush=True,
        )
        committed = service.entries + raw.entries

        profiled: str | None = None
        missed = backend == "postgresql" and (
            service.postings_per_second < PG_POSTINGS_TARGET
            or service.postings_per_second < PG_RATIO_TARGET * raw.postings_per_second
        )
        if force_profile or missed:
            profile = cProfile.Profile()
            run = run_threads(
                "profile",
                lambda: service_operation(database, accounts),
                accounts,
                threads=threads,
                seconds=PROFILE_SECONDS,
                profile=profile,
            )
            committed += run.entries
            profiled = profile_text(profile, run.seconds, run.entries)

        with database.transaction(write=False) as session:
            check = check_ledger(
                session, cap_months=CAP_MONTHS, reference_monthly_minor=REFERENCE_MONTHLY_MINOR
            )
        problems = list(check.problems)
        if check.entries != committed:
            problems.append(f"{check.entries} entries in the table, {committed} committed")
        if check.postings != 2 * committed:
            problems.append(f"{check.postings} postings in the table, {2 * committed} expected")
        line = (
            f"check_ledger: ok={check.ok}, {check.entries:,} entries, {check.postings:,} postings,"
            f" {len(check.problems)} problems; committed by the threads: {committed:,} entries"
        )
        print(line, flush=True)
    return BackendResult(
        backend=backend,
        service=service,
        raw=raw,
        check_ok=check.ok and not problems,
        check_line=line,
        problems=problems,
        profile=profiled,
    )


def target_status(result: BackendResult) -> str:
    if result.backend != "postgresql":
        return "—"
    rate = result.service.postings_per_second
    ratio = rate / result.raw.postings_per_second
    met = rate >= PG_POSTINGS_TARGET and ratio >= PG_RATIO_TARGET
    return "met" if met else "MISSED"


def report(results: list[BackendResult], *, threads: int, seconds: float, writers: str) -> None:
    print_table(
        f"Postings/s, {threads} writer {writers} × {seconds:.0f} s, one transaction per entry"
        f" (2 postings each); target PostgreSQL ≥ {PG_POSTINGS_TARGET:,.0f}/s"
        f" and ≥ {PG_RATIO_TARGET} × raw",
        [
            "backend",
            "service entries",
            "service postings/s",
            "raw entries",
            "raw postings/s",
            "ratio service/raw",
            "retries (service/raw)",
            "ledger check",
            "target",
        ],
        [
            [
                r.backend,
                f"{r.service.entries:,}",
                f"{r.service.postings_per_second:,.0f}",
                f"{r.raw.entries:,}",
                f"{r.raw.postings_per_second:,.0f}",
                f"{r.service.postings_per_second / r.raw.postings_per_second:.2f}",
                f"{r.service.retries}/{r.raw.retries}",
                "ok" if r.check_ok else "FAILED",
                target_status(r),
            ]
            for r in results
        ],
    )
    for r in results:
        for problem in r.problems[:20]:
            print(f"  {r.backend}: {problem}")
        if r.profile:
            print(f"\n{r.backend}: {r.profile}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument(
        "--writers",
        choices=["processes", "threads"],
        default="threads",
        help="writers as threads of one process (default) or as processes (as gunicorn"
        " workers are; on 2 cores they only add CPU contention)",
    )
    parser.add_argument("--profile", action="store_true", help="profile one service thread")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.threads < 1 or args.customers < 1:
        parser.error("--seconds, --threads and --customers must be positive")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [
        run_backend(
            backend,
            threads=args.threads,
            seconds=args.seconds,
            customers=args.customers,
            force_profile=args.profile,
            writers=args.writers,
        )
        for backend in backends
    ]
    report(results, threads=args.threads, seconds=args.seconds, writers=args.writers)
    if not all(r.check_ok for r in results):
        print("\nFAIL: the ledger is inconsistent after the run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
