"""Migration import of subscribers: `import_subscribers` of N lines, beside a raw bulk insert.

    .venv/bin/python bench/bench_import.py [--backend sqlite|postgresql|both] [--lines N]

For each backend, on a throwaway database (SQLite: a file in a temporary
folder; PostgreSQL: a new database `mvno_bench_import` on the server of
BENCH_DATABASE_URL, dropped at the end), migrated with the project's
migrations:

* setup (not timed against the target): the sample catalog (host HOSTA,
  its rate card and plan LITE30) with a number block of at least N numbers,
  and N SIMs through `import_sims`;
* a generated subscribers file of N lines: every fifth line belongs to the
  customer of the line before it (so ~0.8 N customers), one customer in ten
  has a resident ID with a wrong check digit (a warning), and opening
  balances from 0.00 to 500.00 (below the cap of 936.00 for one line);
* service: `import_subscribers` in one unit of work (`Database.transaction`,
  as `mvno subscribers import` runs it), file text to commit;
* raw: the bare driver's fastest insert of the same customer, line, period,
  journal entry and posting rows (psycopg COPY / sqlite3 executemany, ids
  given, no checks, no encryption, no number or SIM updates), in a
  transaction that is rolled back — measured first, on the same database.

Afterwards the counts of customers, lines, periods and opening entries, the
assigned numbers and active SIMs must match the file and `check_ledger` must
be ok. Target: the service import ≤ 30 s for 10,000 lines on each backend;
exit status 1 when it is missed or a check fails.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet
from sqlalchemy import func
from sqlmodel import select
from stdnum import luhn
from stdnum.cn import ric

from app.catalog import load_catalog
from app.charging.models import LinePeriod
from app.core.audit import Actor
from app.core.db import Database
from app.core.floors import discover
from app.core.pii import PiiCipher
from app.ledger.checks import check_ledger
from app.ledger.models import JournalEntry
from app.onboarding.migration import HEADER, import_subscribers
from app.subscribers.models import Customer, Line
from bench.common import BACKENDS, fresh_database, print_table, timed
from numbering.models import PhoneNumber, Sim
from numbering.sim_import import import_sims
from plans.models import Plan
from wholesale.models import HostCarrier

discover("models")  # registers every table for the ORM's flush order

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PG_DATABASE = "mvno_bench_import"
ROOT = Path(__file__).resolve().parents[1]
FIRST_NUMBER = 8617012340000
TARGET_S = 30.0
DEFAULT_LINES = 10_000
CAP_MONTHS = 24
CURRENCY = "CNY"
ACTOR = Actor.system("bench")
BIRTH = datetime(1950, 1, 1)


@dataclass(frozen=True)
class Generated:
    text: str
    customers: int
    lines: int
    with_balance: int
    balance_total: int


def setup(database: Database, lines: int) -> tuple[list[str], list[str]]:
    """Catalog with a block of ≥ `lines` numbers and `lines` SIMs; returns (msisdns, iccids)."""
    catalog = (ROOT / "app" / "demo" / "catalog.toml").read_text(encoding="utf-8")
    last = FIRST_NUMBER + max(lines, 10_000) - 1
    catalog = catalog.replace('last = "+8617012349999"', f'last = "+{last}"')
    iccids = []
    for n in range(1, lines + 1):
        body = f"898601270{n:09d}"
        iccids.append(body + luhn.calc_check_digit(body))
    sims = "\n".join(
        ["iccid,imsi,kind,lpa", *(f"{c},46002{n:010d},physical," for n, c in enumerate(iccids))]
    )
    with database.transaction() as session:
        load_catalog(session, text=catalog, filename="catalog.toml", actor=ACTOR, now=NOW)
        host = session.exec(select(HostCarrier).where(HostCarrier.code == "HOSTA")).one()
        import_sims(
            session, text=sims, filename="sims.csv", host_id=host.id or 0, actor=ACTOR, now=NOW
        )
    msisdns = [f"+{FIRST_NUMBER + n}" for n in range(lines)]
    return msisdns, iccids


def resident_id(n: int, *, wrong_check_digit: bool) -> str:
    born = (BIRTH + timedelta(days=n % 20_000)).strftime("%Y%m%d")
    body = f"110105{born}{n % 1000:03d}"
    digit = ric.calc_check_digit(body + "0")  # it ignores the last character
    if wrong_check_digit:
        digit = "0" if digit != "0" else "1"
    return body + digit


def generate(msisdns: list[str], iccids: list[str], seed: int = 7) -> Generated:
    rng = random.Random(seed)
    rows = [HEADER]
    customers = with_balance = total = 0
    ref = ""
    customer_rows: list[tuple[str, int]] = []
    for n, (number, iccid) in enumerate(zip(msisdns, iccids, strict=True)):
        if n % 5 != 4 or not ref:
            customers += 1
            ref = f"M-{customers:07d}"
            name, email = f"Subscriber {customers}", f"s{customers}@example.com"
            id_number = resident_id(customers, wrong_check_digit=customers % 10 == 0)
            balance = rng.choice((0, rng.randrange(1, 50_000)))
            customer_rows.append((ref, balance))
        else:
            balance = 0  # the customer's opening balance sits on its first row
        start = NOW - timedelta(days=rng.randrange(0, 30), minutes=rng.randrange(0, 1440))
        rows.append(
            f"{ref},{name},{email},cn_ric,{id_number},{number},{iccid},LITE30,"
            f"{start.isoformat()},{balance // 100}.{balance % 100:02d}"
        )
    for _, balance in customer_rows:
        with_balance += balance > 0
        total += balance
    return Generated("\n".join(rows) + "\n", customers, len(msisdns), with_balance, total)


def raw_insert(database: Database, generated: Generated) -> float:
    """The same rows with the bare driver, timed, then rolled back."""
    with database.transaction(write=False) as session:
        plan_id = session.exec(select(Plan.id).where(Plan.code == "LITE30")).one()
        sim_ids = dict(session.exec(select(Sim.iccid, Sim.id)).all())
    base = 10_000_000
    sqlite = database.is_sqlite
    stamp: Any = NOW.replace(tzinfo=None) if sqlite else NOW
    customers: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    periods: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    postings: list[tuple[Any, ...]] = []
    ids: dict[str, int] = {}
    for n, text_row in enumerate(generated.text.splitlines()[1:]):
        ref, name, email, id_type, id_number, msisdn, iccid, _, start_text, balance = (
            text_row.split(",")
        )
        if ref not in ids:
            ids[ref] = base + len(ids)
            customers.append((ids[ref], ref, name, email, id_type, "x" * 120, id_number[:4], stamp))
            amount = int(balance.replace(".", ""))
            if amount:
                entry_id = base + len(entries)
                entries.append(
                    (
                        entry_id,
                        "opening_balance",
                        f"raw:{ref}",
                        "0" * 64,
                        "system",
                        "bench",
                        "",
                        stamp,
                    )
                )
                postings.append((entry_id, base, -amount))
                postings.append((entry_id, base, amount))
        start = datetime.fromisoformat(start_text).astimezone(UTC)
        end = start + timedelta(days=30)
        if sqlite:
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        line_id = base + n
        lines.append(
            (
                line_id,
                ids[ref],
                "R" + msisdn,
                plan_id,
                sim_ids[iccid],
                "active",
                True,
                end,
                stamp,
                stamp,
            )
        )
        periods.append((line_id, plan_id, start, end, 3900, 10485760, 12000, 100, 0, 0, 0, stamp))
    tables = [
        (
            "ledger_account",
            "id, kind, scope, currency, balance_minor",
            [(base, "adjustments", "raw", CURRENCY, 0)],
        ),
        (
            "customer",
            "id, ref, name, email, id_type, id_number_enc, id_number_masked, created_at",
            customers,
        ),
        (
            "line",
            "id, customer_id, msisdn, plan_id, sim_id, status, auto_renew, period_end,"
            " created_at, status_changed_at",
            lines,
        ),
        (
            "line_period",
            'line_id, plan_id, start, "end", price_minor, data_kb, voice_s, sms,'
            " data_kb_used, voice_s_used, sms_used, created_at",
            periods,
        ),
        (
            "journal_entry",
            "id, kind, idempotency_key, request_hash, actor_kind, actor_label, memo, at",
            entries,
        ),
        ("posting", "entry_id, account_id, amount_minor", postings),
    ]
    connection: Any = database.engine.raw_connection()
    try:
        started = time.perf_counter()
        if sqlite:
            connection.execute("BEGIN IMMEDIATE")
            for table, columns, rows in tables:
                marks = ", ".join("?" for _ in columns.split(","))
                sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
                connection.executemany(sql, rows)
        else:
            with connection.cursor() as cursor:
                for table, columns, rows in tables:
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        seconds = time.perf_counter() - started
    finally:
        connection.rollback()
        connection.close()
    return seconds


@dataclass
class Result:
    backend: str
    lines: int
    customers: int
    setup_s: float
    raw_s: float
    service_s: float
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems and self.service_s <= TARGET_S


def verify(database: Database, generated: Generated, msisdns: list[str]) -> list[str]:
    problems: list[str] = []
    with database.transaction(write=False) as session:

        def count(model: Any, *where: Any) -> int:
            return int(session.exec(select(func.count()).select_from(model).where(*where)).one())

        expected = {
            "customers": (count(Customer), generated.customers),
            "lines": (count(Line, Line.status == "active"), generated.lines),
            "periods": (count(LinePeriod), generated.lines),
            "opening entries": (
                count(JournalEntry, JournalEntry.kind == "opening_balance"),
                generated.with_balance,
            ),
            "assigned numbers": (
                count(PhoneNumber, PhoneNumber.status == "assigned"),
                len(msisdns),
            ),
            "active SIMs": (count(Sim, Sim.status == "active"), generated.lines),
        }
        for name, (found, wanted) in expected.items():
            if found != wanted:
                problems.append(f"{name}: {found} in the database, {wanted} expected")
        check = check_ledger(session, cap_months=CAP_MONTHS, reference_monthly_minor=5000)
        problems.extend(check.problems[:20])
    return problems


def run_backend(backend: str, lines: int) -> Result:
    print(f"\n== {backend}: {lines:,} lines ==", flush=True)
    with fresh_database(backend, pg_database=PG_DATABASE, drop=True) as database:
        setup_s, (msisdns, iccids) = timed(lambda: setup(database, lines))
        generated = generate(msisdns, iccids)
        print(
            f"setup: catalog, {lines:,} numbers and SIMs in {setup_s:.1f} s;"
            f" file: {generated.customers:,} customers, {generated.lines:,} lines,"
            f" {len(generated.text) / 1e6:.1f} MB",
            flush=True,
        )
        raw_s = raw_insert(database, generated)
        print(f"raw:     {raw_s:.2f} s", flush=True)
        cipher = PiiCipher(Fernet.generate_key().decode("ascii"))

        def service() -> Any:
            with database.transaction() as session:
                return import_subscribers(
                    session,
                    text=generated.text,
                    filename="bench.csv",
                    cipher=cipher,
                    currency=CURRENCY,
                    cap_months=CAP_MONTHS,
                    actor=ACTOR,
                    now=NOW,
                )

        service_s, report = timed(service)
        print(
            f"service: {service_s:.2f} s ({report.customers:,} customers, {report.lines:,} lines,"
            f" {report.id_check_digit_mismatch:,} ID warnings)",
            flush=True,
        )
        problems = verify(database, generated, msisdns)
    return Result(backend, lines, generated.customers, setup_s, raw_s, service_s, problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES)
    args = parser.parse_args(argv)
    if not 1 <= args.lines <= 1_000_000:
        parser.error("--lines must be from 1 to 1,000,000")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [run_backend(backend, args.lines) for backend in backends]
    print_table(
        f"Subscribers import, one file, one transaction; target ≤ {TARGET_S:.0f} s",
        ["backend", "lines", "customers", "service s", "raw insert s", "ratio", "checks", "target"],
        [
            [
                r.backend,
                f"{r.lines:,}",
                f"{r.customers:,}",
                f"{r.service_s:.2f}",
                f"{r.raw_s:.2f}",
                f"{r.service_s / r.raw_s:.1f}×" if r.raw_s else "-",
                "ok" if not r.problems else "FAILED",
                "met" if r.service_s <= TARGET_S else "MISSED",
            ]
            for r in results
        ],
    )
    for r in results:
        for problem in r.problems:
            print(f"  {r.backend}: {problem}")
    if not all(r.ok for r in results):
        print("\nFAIL: over the target or inconsistent after the import", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
