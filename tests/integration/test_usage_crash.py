"""A real `mvno cdr import` killed mid-import (SIGKILL), then run again (DESIGN §7).

The rerun must leave exactly what an uninterrupted run leaves: the same
balances, period counters, journal entries, records and rejects. Both
databases, each a real database of its own (not the tests' rolled-back
transaction), set up with the commands an operator uses.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.core.migrate import recreate_postgres_database
from tests.conftest import pg_url, require_postgres

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
MVNO = Path(sys.executable).parent / "mvno"
NUMBERS = ("+8617012340001", "+8617012340002")
START = datetime(2026, 10, 6, tzinfo=UTC)


def _database_url(backend: str, tmp_path: Path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    base = make_url(pg_url())
    url = base.set(database=f"{base.database}_crash_{name}")
    rendered = url.render_as_string(hide_password=False)
    try:
        recreate_postgres_database(rendered)
    except OperationalError as exc:
        if require_postgres():
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return rendered


def _run(
    env: dict[str, str], *args: str, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    run_env = dict(env)
    if crash_at:
        run_env["MVNO_CRASH_AT"] = crash_at
    return subprocess.run(
        [str(MVNO), *args],
        capture_output=True,
        text=True,
        env=run_env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def _prepare(url: str, tmp_path: Path, name: str) -> dict[str, str]:
    instance = tmp_path / f"instance-{name}"
    instance.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(instance),
        "PASSWORD_HASH_PROFILE": "cheap",
    }
    env.pop("MVNO_CRASH_AT", None)
    then = "--now=2026-09-01T00:00:00+08:00"
    for args in (
        ("db", "upgrade"),
        ("catalog", "load", str(FIXTURES / "catalog.toml"), then),
        ("sims", "import", str(FIXTURES / "sims.csv"), "--host", "HOSTA", then),
        ("subscribers", "import", str(FIXTURES / "subscribers.csv"), then),
    ):
        done = _run(env, *args)
        assert done.returncode == 0, (args, done.stderr)
    return env


def _usage_file(path: Path) -> Path:
    """Enough usage for overage and arrears on both example lines, shuffled."""
    rng = random.Random(11)
    rows = ["record_id,msisdn,service,start_time,quantity,called_number"]
    for n in range(3_000):
        service = rng.choice(("data", "voice", "sms"))
        quantity = {"data": rng.randrange(1, 9_000_000), "voice": rng.randrange(1, 600)}.get(
            service, 1
        )
        start = START + timedelta(seconds=rng.randrange(0, 20 * 86_400))
        rows.append(f"C-{n:05d},{rng.choice(NUMBERS)},{service},{start.isoformat()},{quantity},")
    rows.append("C-00007,+8617012340001,sms,2026-10-07T00:00:00+00:00,1,")  # a duplicate
    rows.append("C-99999,+8613800138000,sms,2026-10-07T00:00:00+00:00,1,")  # not our number
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _state(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    queries = {
        "balances": "SELECT c.ref, a.balance_minor FROM ledger_account a"
        " JOIN customer c ON c.id = a.customer_id WHERE a.kind = 'customer_prepaid' ORDER BY c.ref",
        "counters": "SELECT l.msisdn, p.start, p.data_kb_used, p.voice_s_used, p.sms_used"
        " FROM line_period p JOIN line l ON l.id = p.line_id ORDER BY l.msisdn, p.start",
        "lines": "SELECT msisdn, status FROM line ORDER BY msisdn",
        "usage_entries": "SELECT count(*), sum(abs(p.amount_minor)) FROM journal_entry e"
        " JOIN posting p ON p.entry_id = e.id WHERE e.kind = 'charge.revenue_usage'",
        "records": "SELECT count(*), sum(charge_minor), sum(within), sum(over) FROM usage_record",
        "rejects": "SELECT line_no, reason FROM usage_reject ORDER BY line_no",
        "files": "SELECT rows_total, charged, duplicates, rejected, charge_minor FROM usage_file",
    }
    try:
        with engine.connect() as connection:
            return {
                name: [tuple(row) for row in connection.execute(text(sql))]
                for name, sql in queries.items()
            }
    finally:
        engine.dispose()


COMMAND = ("cdr", "import", "--host", "HOSTA", "--json", "--now=2026-10-28T00:00:00Z")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def uninterrupted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, dict[str, Any], dict[str, Any]]:
    """(backend, usage file, --json output, state) of one import never interrupted."""
    tmp_path = tmp_path_factory.mktemp(f"clean-{request.param}")
    usage = _usage_file(tmp_path / "usage.csv")
    url = _database_url(request.param, tmp_path, "clean")
    env = _prepare(url, tmp_path, "clean")
    clean = _run(env, *COMMAND, str(usage))
    assert clean.returncode == 0, clean.stderr
    return request.param, usage, json.loads(clean.stdout), _state(url)


@pytest.mark.parametrize("point", ["usage.rated", "usage.before_commit"])
def test_a_killed_import_finishes_on_the_rerun(
    uninterrupted: tuple[str, Path, dict[str, Any], dict[str, Any]], point: str, tmp_path: Path
) -> None:
    backend, usage, output, expected = uninterrupted
    url = _database_url(backend, tmp_path, "crash")
    env = _prepare(url, tmp_path, "crash")
    before = _state(url)
    killed = _run(env, *COMMAND, str(usage), crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _state(url) == before  # nothing half-done survived the kill
    rerun = _run(env, *COMMAND, str(usage))
    assert rerun.returncode == 0, rerun.stderr

    assert json.loads(rerun.stdout) == output
    assert output["already_imported"] is False
    assert _state(url) == expected
    assert expected["records"][0][0] == 3_000
    assert expected["rejects"] == [(3003, "unknown_msisdn")]
    assert any(status == "suspended" for _, status in expected["lines"])
    again = _run(env, *COMMAND, str(usage))
    assert json.loads(again.stdout)["already_imported"] is True
    assert _state(url) == expected
