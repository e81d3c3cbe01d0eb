"""The 360° customer view and the dashboard over HTTP against gunicorn, full size beside empty.

    .venv/bin/python bench/bench_care_dashboard.py [--customers C] [--records R]
        [--requests N] [--warmup W] [--seed S] [--keep] [--reuse]

Two throwaway PostgreSQL databases on the server of BENCH_DATABASE_URL,
migrated with the project's migrations and dropped at the end (`--keep`
leaves them, for EXPLAIN; `--reuse` measures the ones a run left, whatever
the size options, and keeps them):

* `mvno_bench_care`: bench/care_fixture.py's customer base — C customers
  (default 100,000) with a line each, three periods, ledger entries, tickets,
  notifications, audit rows and settlement runs, and R usage records
  (default 10,000,000) spread over the 80 days up to now;
* `mvno_bench_care_empty`, the baseline: the same build with one customer
  and no usage.

For each: an admin created with `mvno staff create` (the password on
stdin); gunicorn serving `wsgi:app` with 2 workers on a free port, the
database's URL in DATABASE_URL; a login over HTTP (the form's CSRF token,
the session cookie); then W warm-up requests and N measured requests, one
at a time, of `/console/customers/<ref>/360` (random customers from the
seed; the one customer on the empty database) and of `/console/` (the
dashboard, every figure an admin sees). Every response must be 200.

Printed: build time, and per page and database p50, p95 and max in ms, with
the full-size p95 as a multiple of the empty one. Target: p95 ≤ 300 ms for
each page at full size (the default sizes); exit status 1 when it is missed
or a request fails.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from cryptography.fernet import Fernet

from app.core.clock import utcnow
from app.core.db import Database
from app.core.migrate import recreate_postgres_database, upgrade
from bench.care_fixture import build
from bench.common import fresh_database, percentile, pg_bench_url, print_table

ROOT = Path(__file__).resolve().parents[1]
FULL_DB = "mvno_bench_care"
EMPTY_DB = "mvno_bench_care_empty"
TARGET_MS = 300.0
EMAIL = "bench-admin@bench.example"
PASSWORD = "bench-password-1234"
CLI = ("-c", "from app.cli import main; main()")
PAGES = ("360", "dashboard")
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class Timing:
    page: str
    database: str
    ms: list[float]

    def p(self, q: float) -> float:
        return percentile(sorted(self.ms), q)


def _env(url: str, instance: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "bench-secret-key-bench-secret-key",
        "PII_KEY": Fernet.generate_key().decode("ascii"),
        "COOKIE_SECURE": "0",
    }


def create_admin(env: dict[str, str]) -> None:
    """`mvno staff create --role admin`, the password on stdin; a database reused
    (`--reuse`) keeps the admin an earlier run made."""
    command = [sys.executable, *CLI, "staff", "create", "--email", EMAIL, "--role", "admin"]
    made = subprocess.run(
        command, input=PASSWORD + "\n", env=env, cwd=ROOT, capture_output=True, text=True
    )
    if made.returncode != 0 and "already" not in made.stderr:
        raise RuntimeError(f"mvno staff create failed: {made.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[str]:
    """gunicorn serving wsgi:app with 2 workers; yields its base URL, stopped afterwards."""
    port = _free_port()
    binary = Path(sys.executable).with_name("gunicorn")
    command = [str(binary), "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded machine boots workers slowly
        while True:
            try:
                requests.get(f"{base}/console/login", timeout=60)
                break
            except requests.RequestException:
                if server.poll() is not None:
                    raise RuntimeError(f"gunicorn exited: {server.stderr.read()}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def login(base: str) -> requests.Session:
    """A session signed in through the console's login form (CSRF token included)."""
    client = requests.Session()
    form = client.get(f"{base}/console/login", timeout=30)
    match = _CSRF.search(form.text)
    if match is None:
        raise RuntimeError("no CSRF token on the login form")
    data = {"csrf_token": match.group(1), "email": EMAIL, "password": PASSWORD}
    answer = client.post(f"{base}/console/login", data=data, timeout=30, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"login refused: {answer.status_code}")
    return client


def measure(client: requests.Session, urls: list[str], warmup: int) -> tuple[list[float], int]:
    """Milliseconds of each request after the first `warmup` ones; failures (not 200)."""
    timings, failures = [], 0
    for index, url in enumerate(urls):
        started = time.perf_counter()
        answer = client.get(url, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        failures += answer.status_code != 200
        if index >= warmup:
            timings.append(elapsed)
    return timings, failures


def run_pages(
    url: str, label: str, refs: list[str], *, requests_n: int, warmup: int, seed: int
) -> tuple[list[Timing], int]:
    """Both pages against one database through its own gunicorn; (timings, failures)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="mvno-bench-care-") as folder:
        env = _env(url, Path(folder))
        create_admin(env)
        with gunicorn(env) as base:
            client = login(base)
            total = warmup + requests_n
            picked = [refs[rng.randrange(len(refs))] for _ in range(total)]
            urls = {
                "360": [f"{base}/console/customers/{ref}/360" for ref in picked],
                "dashboard": [f"{base}/console/"] * total,
            }
            out, failures = [], 0
            for page in PAGES:
                ms, failed = measure(client, urls[page], warmup)
                out.append(Timing(page, label, ms))
                failures += failed
    return out, failures


@contextmanager
def bench_database(name: str, *, keep: bool) -> Iterator[Database]:
    """A newly migrated database `name`, dropped afterwards unless `keep`."""
    if not keep:
        with fresh_database("postgresql", pg_database=name, drop=True) as database:
            yield database
        return
    url = pg_bench_url(name)
    recreate_postgres_database(url)
    database = Database(url)
    try:
        upgrade(database.engine)
        yield database
    finally:
        database.dispose()
        print(f"kept {url}")


def _exists(name: str) -> bool:
    admin = Database(pg_bench_url("postgres"))
    try:
        with admin.engine.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name}
            ).first()
    finally:
        admin.dispose()
    return found is not None


def _refs(url: str) -> list[str]:
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            return [
                r[0] for r in connection.exec_driver_sql("SELECT ref FROM customer ORDER BY id")
            ]
    finally:
        database.dispose()


def build_and_run(
    database_name: str, label: str, *, customers: int, records: int, options: argparse.Namespace
) -> tuple[list[Timing], int, float]:
    if options.reuse and _exists(database_name):
        url = pg_bench_url(database_name)
        refs = _refs(url)
        print(f"{label}: reusing {url} ({len(refs):,} customers)", flush=True)
        timings, failures = run_pages(
            url, label, refs, requests_n=options.requests, warmup=options.warmup, seed=options.seed
        )
        return timings, failures, 0.0
    with bench_database(database_name, keep=options.keep or options.reuse) as db:
        started = time.perf_counter()
        fixture = build(db, customers=customers, records=records, now=utcnow())
        seconds = time.perf_counter() - started
        print(
            f"{label}: {customers:,} customers, {records:,} records built in {seconds:.1f} s",
            flush=True,
        )
        db.engine.dispose()
        timings, failures = run_pages(
            pg_bench_url(database_name),
            label,
            fixture.refs,
            requests_n=options.requests,
            warmup=options.warmup,
            seed=options.seed,
        )
    return timings, failures, seconds


def report(full: list[Timing], empty: list[Timing], options: argparse.Namespace) -> bool:
    """The table; whether every full-size p95 is within the target."""
    baseline = {t.page: t for t in empty}
    rows, met = [], True
    for timing in [*full, *empty]:
        base = baseline[timing.page]
        ratio = timing.p(95) / base.p(95)
        ok = timing.p(95) <= TARGET_MS
        if timing in full:
            met = met and ok
        rows.append(
            (
                timing.page,
                timing.database,
                len(timing.ms),
                f"{timing.p(50):.1f}",
                f"{timing.p(95):.1f}",
                f"{max(timing.ms):.1f}",
                f"{ratio:.2f}×",
                ("met" if ok else "MISSED") if timing in full else "",
            )
        )
    print_table(
        f"Console pages over HTTP (gunicorn, 2 workers), {options.requests} requests each"
        f" after {options.warmup} warm-up; target p95 ≤ {TARGET_MS:.0f} ms at full size",
        ("page", "database", "n", "p50 ms", "p95 ms", "max ms", "p95 / empty", "target"),
        rows,
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="leave the databases for EXPLAIN")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure databases a --keep or --reuse run left, building only missing ones",
    )
    options = parser.parse_args(argv)
    if not 1 <= options.customers <= 1_000_000:
        parser.error("--customers must be from 1 to 1,000,000")
    if options.records < 0 or options.requests < 1 or options.warmup < 0:
        parser.error("--records, --requests and --warmup must not be negative")
    full, full_failed, _ = build_and_run(
        FULL_DB, "full", customers=options.customers, records=options.records, options=options
    )
    empty, empty_failed, _ = build_and_run(
        EMPTY_DB, "empty", customers=1, records=0, options=options
    )
    met = report(full, empty, options)
    if full_failed or empty_failed:
        print(f"FAIL: {full_failed + empty_failed} requests did not answer 200", file=sys.stderr)
    if not met:
        print(f"FAIL: a p95 above {TARGET_MS:.0f} ms", file=sys.stderr)
    return 0 if met and not (full_failed or empty_failed) else 1


if __name__ == "__main__":
    sys.exit(main())
