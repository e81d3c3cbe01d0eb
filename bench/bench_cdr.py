"""Usage import: `mvno cdr import` of R records for L lines, process start to exit, beside a floor.

    .venv/bin/python bench/bench_cdr.py [--backend sqlite|postgresql|both]
        [--lines L] [--records R] [--seed S] [--profile DIR]

For each backend, on a throwaway database (SQLite: a file in a temporary
folder; PostgreSQL: a new database `mvno_bench_cdr` on the server of
BENCH_DATABASE_URL, dropped at the end), migrated with the project's
migrations:

* setup, through the services (not timed against the target): the sample
  catalog with a block of ≥ L numbers and L SIMs (bench_import's `setup`),
  then bench_import's subscribers file of L lines on LITE30 (10 GB, 200 min,
  100 SMS for 30 days), every line's first period starting at
  2026-10-01T00:00+08:00, through `import_subscribers` in one transaction;
* a usage file of R records, generated from the seed: columns
  `record_id,msisdn,service,start_time,quantity,called_number`, ids
  `HOSTA-0000000001`…, about 60% data (1 KB–50 MB, log-uniform), 30% voice
  (1–1200 s, mostly short, with a called number) and 10% SMS (1–3), start
  times from 2026-10-02 to 2026-10-28 (+08:00, inside the first period),
  rows shuffled so the file is not in time order. One line in a thousand
  is heavy: its records (a tenth of the file at most) are large enough to
  go over every allowance, so overage is charged and balances go below zero;
* timed: `mvno cdr import FILE --host HOSTA --json --now
  2026-10-29T00:00:00+08:00` as a child process with DATABASE_URL set to
  the bench database, wall time from process start to exit; its stdout
  must be the JSON alone, showing every row charged, no duplicates and no
  rejects. Then the same command again, also timed: it must report
  `already_imported`;
* floor, in the same run on the same file: DuckDB in process reading the
  CSV and materialising a running sum of quantity per (msisdn, service) in
  start-time order (a window function), timed from connect to result;
* checks against the database: R usage records, no rejects, the periods'
  used counters summing to the records' `within`, `within` and `over`
  totals equal to those computed independently from the file (per line
  and service: min(billable, allowance) and the rest), and `check_ledger`.

With `--profile DIR` the first import runs under cProfile (its time then
includes the profiler's overhead): the stats go to DIR/cdr_<backend>.prof
and the top functions are printed.

Target: ≥ 100,000 records/s (1,000,000 records for 10,000 lines) on each
backend, with the ratio to the floor printed (aim: ≤ 10×). Exit status 1
when a check fails or the target is missed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlmodel import select

from app.core.audit import Actor
from app.core.db import Database
from app.core.pii import PiiCipher
from app.ledger.checks import check_ledger
from app.onboarding.migration import import_subscribers
from bench.bench_import import CAP_MONTHS, CURRENCY, generate, setup
from bench.common import BACKENDS, fresh_database, pg_bench_url, print_table, timed
from plans.models import Plan

PG_DATABASE = "mvno_bench_cdr"
ROOT = Path(__file__).resolve().parents[1]
HOST = "HOSTA"
PLAN = "LITE30"
CST = timezone(timedelta(hours=8))
PERIOD_START = datetime(2026, 10, 1, tzinfo=CST)
FIRST_DAY = 2  # records start on 2026-10-02 (+08:00) …
RECORD_DAYS = 26  # … and end before 2026-10-28
IMPORT_NOW = "2026-10-29T00:00:00+08:00"
TARGET_RATE = 100_000
AIM_RATIO = 10.0
DEFAULT_LINES = 10_000
DEFAULT_RECORDS = 1_000_000
HEAVY_EVERY = 1000  # one heavy line per thousand
HEAVY_RECORDS = 1000  # records per heavy line (a tenth of the file at most)
ACTOR = Actor.system("bench")
CLI = ("-c", "from app.cli import main; main()")
PROFILED_CLI = ("-m", "flask", "--app", "wsgi")


# -- setup ----------------------------------------------------------------------------


def subscribers_text(msisdns: list[str], iccids: list[str], seed: int) -> str:
    """bench_import's subscribers file, every line's period starting at PERIOD_START."""
    lines = generate(msisdns, iccids, seed=seed).text.splitlines()
    start = PERIOD_START.isoformat()
    rows = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        fields[8] = start  # period_start
        rows.append(",".join(fields))
    return "\n".join(rows) + "\n"


def build(database: Database, lines: int, seed: int) -> list[str]:
    """Catalog, numbers, SIMs and L active lines through the services; returns the numbers."""
    msisdns, iccids = setup(database, lines)
    cipher = PiiCipher(Fernet.generate_key().decode("ascii"))
    with database.transaction() as session:
        import_subscribers(
            session,
            text=subscribers_text(msisdns, iccids, seed),
            filename="subscribers.csv",
            cipher=cipher,
            currency=CURRENCY,
            cap_months=CAP_MONTHS,
            actor=ACTOR,
            now=PERIOD_START,
        )
    return msisdns


@dataclass(frozen=True)
class UsageFileInfo:
    path: Path
    records: int
    heavy_lines: int
    size: int


def write_usage_file(path: Path, msisdns: list[str], records: int, seed: int) -> UsageFileInfo:
    """The shuffled usage file of `records` rows (see the module), from the seed."""
    rng = random.Random(seed)
    rand = rng.random
    count = len(msisdns)
    heavy = msisdns[:: max(1, HEAVY_EVERY)][: max(1, count // HEAVY_EVERY)]
    heavy_rows = min(records // 10, len(heavy) * HEAVY_RECORDS)
    span = RECORD_DAYS * 86_400
    rows: list[str] = []
    append = rows.append
    for n in range(1, records + 1):
        is_heavy = n <= heavy_rows
        msisdn = heavy[n % len(heavy)] if is_heavy else msisdns[int(rand() * count)]
        second = int(rand() * span)
        day, second = divmod(second, 86_400)
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        when = f"2026-10-{FIRST_DAY + day:02d}T{hour:02d}:{minute:02d}:{second:02d}+08:00"
        pick = rand()
        called = ""
        if pick < 0.6:
            service = "data"
            if is_heavy:
                quantity = 20 * 1_048_576 + int(rand() * 30 * 1_048_576)
            else:
                quantity = int(1024 * 51_200 ** rand())  # 1 KB to 50 MB
        elif pick < 0.9:
            service = "voice"
            if is_heavy:
                quantity = 600 + int(rand() * 601)
            else:
                quantity = min(1200, 1 + int(rng.expovariate(1 / 120)))
            called = f"+86138{int(rand() * 100_000_000):08d}"
        else:
            service = "sms"
            quantity = 1 + int(rand() * 3)
        append(f"HOSTA-{n:010d},{msisdn},{service},{when},{quantity},{called}\n")
    rng.shuffle(rows)
    body = "record_id,msisdn,service,start_time,quantity,called_number\n" + "".join(rows)
    path.write_text(body, encoding="utf-8")
    return UsageFileInfo(path, records, len(heavy) if heavy_rows else 0, len(body))


# -- floor ----------------------------------------------------------------------------

_COLUMNS = (
    "{'record_id': 'VARCHAR', 'msisdn': 'VARCHAR', 'service': 'VARCHAR',"
    " 'start_time': 'TIMESTAMPTZ', 'quantity': 'BIGINT', 'called_number': 'VARCHAR'}"
)


def _read(path: Path) -> str:
    return f"read_csv('{path}', header = true, auto_detect = false, columns = {_COLUMNS})"


def floor(path: Path) -> tuple[float, int]:
    """Seconds for DuckDB to read the file and materialise the running sums; the rows."""
    start = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute(
            f"""CREATE TABLE running AS
            SELECT msisdn, service, start_time, record_id,
                   sum(quantity) OVER (PARTITION BY msisdn, service
                                       ORDER BY start_time, record_id
                                       ROWS UNBOUNDED PRECEDING) AS running
            FROM {_read(path)}"""
        )
        row = con.execute("SELECT count(*), sum(running) FROM running").fetchone()
    finally:
        con.close()
    assert row is not None
    return time.perf_counter() - start, int(row[0])


@dataclass(frozen=True)
class Allowance:
    data_kb: int
    voice_s: int
    sms: int
    increment: int


def expected_use(path: Path, allowance: Allowance) -> tuple[int, int]:
    """(within, over) summed over the file, from billable totals per line and service.

    Every record falls in each line's first period, so per (msisdn, service)
    the allowance takes min(total billable, allowance) and the rest is over.
    """
    inc = allowance.increment
    con = duckdb.connect()
    try:
        row = con.execute(
            f"""WITH billable AS (
                  SELECT msisdn, service,
                         CASE service WHEN 'data' THEN (quantity + 1023) // 1024
                                      WHEN 'voice' THEN (quantity + {inc} - 1) // {inc} * {inc}
                                      ELSE quantity END AS b
                  FROM {_read(path)}),
                totals AS (
                  SELECT service, sum(b) AS total,
                         CASE service WHEN 'data' THEN {allowance.data_kb}
                                      WHEN 'voice' THEN {allowance.voice_s}
                                      ELSE {allowance.sms} END AS allowed
                  FROM billable GROUP BY msisdn, service)
                SELECT sum(least(total, allowed)), sum(greatest(total - allowed, 0)) FROM totals"""
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), int(row[1])


# -- the command ----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    status: int
    output: dict[str, Any] | None
    only_json: bool  # stdout held the JSON and nothing else
    stdout: str
    stderr: str


def parse_output(stdout: str) -> tuple[dict[str, Any] | None, bool]:
    """The command's JSON, and whether stdout was only that; else its last JSON line."""
    try:
        return json.loads(stdout), True
    except json.JSONDecodeError:
        pass
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line), False
            except json.JSONDecodeError:
                continue
    return None, False


def run_import(url: str, path: Path, instance: Path, profile: Path | None = None) -> Run:
    """`mvno cdr import` as a child process, timed from its start to its exit."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "bench-secret-key",
        "PII_KEY": Fernet.generate_key().decode("ascii"),
    }
    prefix = ("-m", "cProfile", "-o", str(profile), *PROFILED_CLI) if profile is not None else CLI
    command = [sys.executable, *prefix, "cdr", "import", str(path), "--host", HOST]
    command += ["--json", "--now", IMPORT_NOW]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    output, only_json = parse_output(done.stdout) if done.returncode == 0 else (None, False)
    return Run(seconds, done.returncode, output, only_json, done.stdout, done.stderr)


def check_output(run: Run, records: int, *, again: bool) -> list[str]:
    name = "second import" if again else "import"
    if run.output is None:
        tail = " | ".join((run.stderr or run.stdout).strip().splitlines()[-5:])
        return [f"{name}: exit {run.status}, no JSON: {tail[-1000:]}"]
    problems = []
    if not run.only_json:
        first = run.stdout.strip().splitlines()[0]
        problems.append(f"{name}: --json output is not only JSON, stdout starts {first!r}")
    wanted = {
        "rows": records,
        "charged": records,
        "duplicates": 0,
        "rejected": 0,
        "already_imported": again,
    }
    return problems + [
        f"{name}: {key} = {run.output.get(key)!r}, expected {value!r}"
        for key, value in wanted.items()
        if run.output.get(key) != value
    ]


def print_profile(path: Path, top: int = 30) -> None:
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        print(f"\nprofile of the import, by {order} ({path}):")
        print(out.getvalue().strip("\n"))


# -- checks ---------------------------------------------------------------------------


def verify(database: Database, records: int, usage_path: Path) -> tuple[list[str], list[str]]:
    """(problems, lines to print) after the import."""
    problems: list[str] = []
    with database.transaction(write=False) as session:
        connection = session.connection()

        def scalar(sql: str) -> int:
            return int(connection.execute(text(sql)).scalar() or 0)

        plan = session.exec(select(Plan).where(Plan.code == PLAN)).one()
        allowance = Allowance(
            data_kb=plan.data_mb * 1024,
            voice_s=plan.voice_min * 60,
            sms=plan.sms,
            increment=plan.voice_increment_s,
        )
        stored = scalar("SELECT count(*) FROM usage_record")
        rejects = scalar("SELECT count(*) FROM usage_reject")
        used = scalar("SELECT sum(data_kb_used + voice_s_used + sms_used) FROM line_period")
        within = scalar("SELECT sum(within) FROM usage_record")
        over = scalar("SELECT sum(over) FROM usage_record")
        charge = scalar("SELECT sum(charge_minor) FROM usage_record")
        negative = scalar(
            "SELECT count(*) FROM ledger_account"
            " WHERE kind = 'customer_prepaid' AND balance_minor < 0"
        )
        suspended = scalar("SELECT count(*) FROM line WHERE status = 'suspended'")
        ledger = check_ledger(session, cap_months=CAP_MONTHS, reference_monthly_minor=5000)
    want_within, want_over = expected_use(usage_path, allowance)
    checks = {
        "usage records": (stored, records),
        "rejects": (rejects, 0),
        "periods' used counters (sum)": (used, within),
        "within (computed from the file)": (within, want_within),
        "over (computed from the file)": (over, want_over),
    }
    lines = []
    for name, (found, wanted) in checks.items():
        ok = found == wanted
        lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}: {found:,} (expected {wanted:,})")
        if not ok:
            problems.append(f"{name}: {found:,}, expected {wanted:,}")
    lines.append(
        f"  {'ok  ' if ledger.ok else 'FAIL'} check_ledger: {ledger.entries:,} entries,"
        f" {ledger.postings:,} postings, {len(ledger.problems)} problems"
    )
    problems.extend(ledger.problems[:20])
    lines.append(
        f"  overage: {over:,} units over, {charge / 100:,.2f} {CURRENCY} charged;"
        f" {negative:,} prepaid balances below zero, {suspended:,} lines suspended"
    )
    return problems, lines


# -- per backend ----------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    lines: int
    records: int
    import_seconds: float
    floor_seconds: float
    rerun_seconds: float
    profiled: bool
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.records / self.import_seconds

    @property
    def target(self) -> str:
        return "met" if self.rate >= TARGET_RATE else "MISSED"


def run_backend(
    backend: str, *, lines: int, records: int, seed: int, profile_dir: Path | None
) -> Result:
    print(f"\n== {backend}: {records:,} records for {lines:,} lines ==", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="mvno-bench-cdr-") as folder,
        fresh_database(backend, pg_database=PG_DATABASE, drop=True) as database,
    ):
        setup_s, msisdns = timed(lambda: build(database, lines, seed))
        print(f"setup: catalog, {lines:,} numbers, SIMs and lines in {setup_s:.1f} s", flush=True)
        path = Path(folder) / "usage.csv"
        write_s, info = timed(lambda: write_usage_file(path, msisdns, records, seed))
        print(
            f"file: {info.records:,} records, {info.heavy_lines} heavy lines,"
            f" {info.size / 1e6:.1f} MB, written in {write_s:.1f} s",
            flush=True,
        )
        floor_s, floor_rows = floor(path)
        print(f"floor: DuckDB running sums of {floor_rows:,} rows in {floor_s:.2f} s", flush=True)
        database.engine.dispose()  # no idle connection of ours beside the command's
        url = database.url if backend == "sqlite" else pg_bench_url(PG_DATABASE)
        profile = profile_dir / f"cdr_{backend}.prof" if profile_dir else None
        first = run_import(url, path, Path(folder), profile)
        problems = check_output(first, records, again=False)
        print(
            f"import: {first.seconds:.2f} s{' (profiled)' if profile else ''},"
            f" {records / first.seconds:,.0f} records/s: {first.output}",
            flush=True,
        )
        if first.output is None or not first.only_json:
            print((first.stderr or first.stdout)[-4000:], file=sys.stderr)
        second = run_import(url, path, Path(folder))
        problems += check_output(second, records, again=True)
        print(f"again:  {second.seconds:.2f} s: {second.output}", flush=True)
        found, report = verify(database, records, path)
        problems += found
        print("checks:")
        print("\n".join(report), flush=True)
        if profile is not None and profile.exists():
            print_profile(profile)
    return Result(
        backend=backend,
        lines=lines,
        records=records,
        import_seconds=first.seconds,
        floor_seconds=floor_s,
        rerun_seconds=second.seconds,
        profiled=profile is not None,
        problems=problems,
    )


def report_table(results: list[Result]) -> None:
    print_table(
        f"Usage import, `mvno cdr import` process start to exit;"
        f" target ≥ {TARGET_RATE:,} records/s, aim ≤ {AIM_RATIO:.0f}× the DuckDB floor",
        [
            "backend",
            "lines",
            "records",
            "import s",
            "records/s",
            "floor s",
            "ratio import/floor",
            "again s",
            "checks",
            "target",
        ],
        [
            [
                r.backend,
                f"{r.lines:,}",
                f"{r.records:,}",
                f"{r.import_seconds:.2f}" + (" (profiled)" if r.profiled else ""),
                f"{r.rate:,.0f}",
                f"{r.floor_seconds:.2f}",
                f"{r.import_seconds / r.floor_seconds:.1f}×",
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
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="run the first import under cProfile"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.lines <= 1_000_000:
        parser.error("--lines must be from 1 to 1,000,000")
    if not 1 <= args.records <= 10**10 - 1:
        parser.error("--records must be from 1 to 9,999,999,999")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [
        run_backend(
            backend,
            lines=args.lines,
            records=args.records,
            seed=args.seed,
            profile_dir=args.profile,
        )
        for backend in backends
    ]
    report_table(results)
    failed = [r for r in results if r.problems]
    missed = [r for r in results if r.target == "MISSED"]
    if failed:
        print("\nFAIL: checks failed after the import", file=sys.stderr)
    if missed:
        print(f"\nFAIL: below {TARGET_RATE:,} records/s", file=sys.stderr)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
