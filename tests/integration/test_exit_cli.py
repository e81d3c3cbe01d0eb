"""`mvno exit` end to end, and killed mid-execution then run again (DESIGN §12, §13).

Each database is a real one of its own (not the tests' rolled-back
transaction), set up with the commands an operator uses: the example
catalog, SIMs and two migrated subscribers, an exit 31 days away with 30
days' notice, a renewal shortened at the exit, a transfer choice. A rerun
after a SIGKILL at any crash point must leave exactly what one clean run
leaves — the same refunds (none twice), balances, lines and the same file
bytes.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.integration.test_usage_crash import _database_url, _prepare, _run

EXIT = ("--now=2026-11-02T00:30:00+08:00",)
EXECUTE = ("exit", "execute", "--json", *EXIT)


def _setup(env: dict[str, str]) -> None:
    for args in (
        ("exit", "plan", "--exit-date", "2026-11-02", "--notice-days", "30",
         "--now=2026-10-02T00:00:00+08:00"),
        ("exit", "announce", "--now=2026-10-02T01:00:00+08:00"),
        ("renewals", "run", "--now=2026-10-31T01:00:00+08:00"),
        ("exit", "choose", "+8617012340001", "transfer", "--note", "by phone",
         "--now=2026-10-20T00:00:00+08:00"),
    ):  # fmt: skip
        done = _run(env, *args)
        assert done.returncode == 0, (args, done.stderr)


def _state(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    queries = {
        "balances": "SELECT c.ref, a.balance_minor FROM ledger_account a"
        " JOIN customer c ON c.id = a.customer_id WHERE a.kind = 'customer_prepaid' ORDER BY c.ref",
        "lines": "SELECT msisdn, status FROM line ORDER BY msisdn",
        "refunds": "SELECT customer_id, payment_id, amount_minor, reason FROM refund ORDER BY id",
        "entries": "SELECT kind, idempotency_key FROM journal_entry ORDER BY idempotency_key",
        "exit": "SELECT state FROM market_exit",
        "events": "SELECT line_id, action FROM provisioning_event"
        " WHERE action IN ('terminate', 'transfer_to_host') ORDER BY line_id",
        "held_numbers": "SELECT count(*) FROM phone_number WHERE status <> 'returned'",
    }
    try:
        with engine.connect() as connection:
            return {
                name: [tuple(row) for row in connection.execute(text(sql))]
                for name, sql in queries.items()
            }
    finally:
        engine.dispose()


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def clean(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, bytes]]:
    """(backend, --json output, state, files) of one execution never interrupted."""
    tmp_path = tmp_path_factory.mktemp(f"exit-{request.param}")
    url = _database_url(request.param, tmp_path, "exitclean")
    env = _prepare(url, tmp_path, "exitclean")
    _setup(env)
    out = tmp_path / "out"
    done = _run(env, *EXECUTE, "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return request.param, result, _state(url), _files(out)


def test_the_exit_pays_balances_and_unused_value_and_hands_over_consenting_lines(
    clean: tuple[str, dict[str, Any], dict[str, Any], dict[str, bytes]],
) -> None:
    _, result, state, files = clean
    # C-0001: 100.00 less the renewal shortened at the exit (2 of 30 days: 2.60), no unused.
    # C-0002: nothing prepaid; its period runs 2 days 9.5 h past the exit: 39 × 57.5/720 = 3.11.
    assert {k: v for k, v in result.items() if k != "files"} == {
        "lines": 2,
        "transferred": 1,
        "terminated": 1,
        "refunds": 9740 + 311,
        "transferred_balances": 0,
        "liability_before": 10051,
    }
    assert [Path(p).name for p in result["files"]] == [
        "handover_HOSTA_2026-11-02.csv",
        "refunds_2026-11-02.csv",
        "exit_report_2026-11-02.csv",
    ]
    assert state["balances"] == [("C-0001", 0), ("C-0002", 0)]
    assert state["lines"] == [("+8617012340001", "transferred"), ("+8617012340002", "terminated")]
    assert [r[2] for r in state["refunds"]] == [9740, 311]
    assert state["exit"] == [("completed",)]
    assert state["held_numbers"] == [(0,)]
    handover = files["handover_HOSTA_2026-11-02.csv"].decode("utf-8")
    assert "+8617012340001" in handover and "110105194912310022" in handover
    assert "+8617012340002" not in handover and "Li Na" not in handover  # no consent


@pytest.mark.parametrize("point", ["exit.money_posted", "exit.before_commit", "exit.executed"])
def test_a_killed_execution_finishes_on_the_rerun_without_paying_twice(
    clean: tuple[str, dict[str, Any], dict[str, Any], dict[str, bytes]],
    point: str,
    tmp_path: Path,
) -> None:
    backend, result, expected, files = clean
    url = _database_url(backend, tmp_path, "exitcrash")
    env = _prepare(url, tmp_path, "exitcrash")
    _setup(env)
    out = tmp_path / "out"
    killed = _run(env, *EXECUTE, "--out", str(out), crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = _run(env, *EXECUTE, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    again = json.loads(rerun.stdout)
    assert {k: v for k, v in again.items() if k != "files"} == {
        k: v for k, v in result.items() if k != "files"
    }
    assert _state(url) == expected
    assert _files(out) == files
    third = _run(env, *EXECUTE, "--out", str(out))
    assert third.returncode == 0 and _state(url) == expected and _files(out) == files


def test_refusals_exit_1_with_a_message_and_change_nothing(tmp_path: Path) -> None:
    url = _database_url("sqlite", tmp_path, "exitrefuse")
    env = _prepare(url, tmp_path, "exitrefuse")
    near = _run(env, "exit", "plan", "--exit-date", "2026-10-20", "--now=2026-10-02T00:00:00Z")
    assert near.returncode == 1 and "at least 90 days" in near.stderr
    short = _run(
        env,
        "exit",
        "plan",
        "--exit-date",
        "2027-01-20",
        "--notice-days",
        "10",
        "--now=2026-10-02T00:00:00Z",
    )
    assert short.returncode == 1 and "at least 30 days" in short.stderr
    _setup(env)
    early = _run(env, "exit", "execute", "--out", str(tmp_path / "o"), "--now=2026-11-01T12:00Z")
    assert early.returncode == 1 and "before its instant" in early.stderr
    topup = _run(
        env, "topup", "+8617012340002", "20.00", "--ref", "T-1", "--now=2026-10-21T00:00:00Z"
    )
    assert topup.returncode == 1 and "cap" in topup.stderr  # nothing left to prepay
    sale = _run(env, "exit", "choose", "+8617012340002", "keep", "--now=2026-10-21T00:00:00Z")
    assert sale.returncode == 2  # click refuses an unknown choice
    assert _run(env, *EXECUTE, "--out", str(tmp_path / "o")).returncode == 0
    cancel = _run(env, "exit", "cancel", "--now=2026-11-03T00:00Z")
    assert cancel.returncode == 1 and "cannot be cancelled" in cancel.stderr
