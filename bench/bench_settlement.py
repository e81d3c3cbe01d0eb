"""Settlement export: `mvno settlement export` for a month of R usage records on PostgreSQL.

    .venv/bin/python bench/bench_settlement.py [--records R] [--lines L]

On a throwaway PostgreSQL database (`mvno_bench_settlement` on the server of
BENCH_DATABASE_URL, dropped at the end), migrated with the project's
migrations:

* setup (not timed): bench_cdr's catalog, numbers, SIMs and L lines on
  LITE30 from 2026-10-01T00:00+08:00 through the services; then R usage
  records of October 2026 (Shanghai time) written straight into
  `usage_record` by one server-side `INSERT … SELECT generate_series`
  (rating is not what is measured here), into the monthly partitions the
  importer would create (`app.usage.store.ensure_partitions`), with about
  1% of the records in the first hours of November to check the month's
  edge; a second rate card from 2026-10-16 so that both halves of the month
  are priced apart;
* floor, in the same run: the one aggregate the settlement needs, run bare
  with psql's driver — quantities per service and local day of the month;
* timed: `mvno settlement export --host HOSTA --month 2026-10 --out DIR
  --json` as a child process, process start to exit;
* checks: the CSV's quantities per service equal a direct `sum()` per
  service over the month, and a second export writes byte-identical files.

Target: ≤ 30 s for 10,000,000 records (the default); exit status 1 when it
is missed or a check fails.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import text

from app.core.audit import Actor
from app.core.db import Database
from app.usage.store import ensure_partitions
from bench.bench_cdr import build
from bench.common import fill_usage, fresh_database, pg_bench_url, print_table
from wholesale.models import SERVICES
from wholesale.services import add_rate_card, get_host_by_code, list_rate_cards

PG_DATABASE = "mvno_bench_settlement"
ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 30.0
DEFAULT_RECORDS = 10_000_000
DEFAULT_LINES = 10_000
ACTOR = Actor.system("bench")
MONTH_START_UTC = "2026-09-30 16:00:00+00"  # 2026-10-01 00:00 in Shanghai
MONTH_END_UTC = "2026-10-31 16:00:00+00"

_BY_SERVICE = """
SELECT service, sum(quantity), count(*) FROM usage_record
WHERE host_id = :host AND start_time >= :start AND start_time < :end GROUP BY service
"""
_FLOOR = """
SELECT service, CAST(start_time AT TIME ZONE 'Asia/Shanghai' AS DATE), sum(quantity)
FROM usage_record WHERE host_id = %s AND start_time >= %s AND start_time < %s GROUP BY 1, 2
"""


def fill(database: Database, records: int, lines: int) -> int:
    """The records and a second rate card from 16 October; returns the host id."""
    with database.transaction() as session:
        host = get_host_by_code(session, "HOSTA")
        assert host.id is not None
        (card,) = list_rate_cards(session, host_id=host.id)
        prices = {s: card.price(s) for s in SERVICES}
        prices["data"] += 500
        add_rate_card(
            session,
            host_id=host.id,
            effective_from=date(2026, 10, 16),
            prices_micro=prices,
            retail_micro={s: card.retail_price(s) for s in SERVICES},
            actor=ACTOR,
            now=datetime(2026, 10, 1, tzinfo=UTC),
        )
        ensure_partitions(session, {(2026, 9), (2026, 10), (2026, 11)})
        fill_usage(
            session.connection(),
            host_id=host.id,
            records=records,
            start=datetime(2026, 9, 30, 16, tzinfo=UTC),  # 2026-10-01 00:00 in Shanghai
            span_s=31 * 86400 + 7200,
            first_line=1,
            lines=lines,
        )
        return host.id


def floor_seconds(url: str, host_id: int) -> float:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        started = time.perf_counter()
        connection.execute(_FLOOR, (host_id, MONTH_START_UTC, MONTH_END_UTC)).fetchall()
        return time.perf_counter() - started


def export(url: str, out: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "DATABASE_URL": url, "PASSWORD_HASH_PROFILE": "cheap"}
    args = ["settlement", "export", "--host", "HOSTA", "--month", "2026-10", "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            *args,
            "--json",
            "--now=2026-11-02T00:00:00+08:00",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    return time.perf_counter() - started, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES)
    options = parser.parse_args(argv)
    problems: list[str] = []
    with fresh_database("postgresql", pg_database=PG_DATABASE, drop=True) as database:
        started = time.perf_counter()
        build(database, options.lines, seed=7)
        host_id = fill(database, options.records, options.lines)
        with database.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE usage_record")
            connection.commit()
        print(
            f"setup: {options.lines:,} lines, {options.records:,} records in"
            f" {time.perf_counter() - started:.1f} s"
        )
        url = pg_bench_url(PG_DATABASE)
        floor_s = floor_seconds(url, host_id)
        with tempfile.TemporaryDirectory(prefix="mvno-bench-settle-") as folder:
            out = Path(folder)
            seconds, done = export(url, out / "a")
            if done.returncode != 0:
                print(done.stderr)
                return 1
            summary = json.loads(done.stdout)
            again_s, _ = export(url, out / "b")
            names = ("settlement_HOSTA_2026-10.csv", "settlement_HOSTA_2026-10.json")
            if any((out / "a" / n).read_bytes() != (out / "b" / n).read_bytes() for n in names):
                problems.append("a second export is not byte-identical")
            rows = list(csv.DictReader(io.StringIO((out / "a" / names[0]).read_text())))
        with database.engine.connect() as connection:
            found = connection.execute(
                text(_BY_SERVICE),
                {"host": host_id, "start": MONTH_START_UTC, "end": MONTH_END_UTC},
            ).all()
        direct = {service: int(quantity) for service, quantity, _ in found}
        in_month = sum(int(n) for _, _, n in found)
        exported: dict[str, int] = {}
        for row in rows:
            exported[row["service"]] = exported.get(row["service"], 0) + int(row["quantity"])
        for service, quantity in direct.items():
            if exported.get(service) != quantity:
                problems.append(f"{service}: exported {exported.get(service)}, direct {quantity}")
    met = seconds <= TARGET_S
    print_table(
        f"Settlement export, process start to exit; target ≤ {TARGET_S:.0f} s",
        ("records", "in Oct", "rows", "export s", "again s", "floor s", "ratio", "total", "target"),
        [
            (
                f"{options.records:,}",
                f"{in_month:,}",
                len(rows),
                f"{seconds:.2f}",
                f"{again_s:.2f}",
                f"{floor_s:.2f}",
                f"{seconds / floor_s:.1f}×",
                f"{summary['total'] / 100:,.2f} {summary['currency']}",
                "met" if met else "MISSED",
            )
        ],
    )
    for problem in problems:
        print(f"FAIL: {problem}")
    return 0 if met and not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
