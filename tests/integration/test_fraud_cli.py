"""`mvno fraud scan` (DESIGN §13) and the scheduler's fraud job, end to end from an import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from app.analytics.fraud_rules import update_rule_settings
from app.analytics.models import FraudAlert
from app.jobs import JOBS, run_job
from tests.unit.subscribers.helpers import STAFF, World, make_world
from tests.unit.usage.helpers import import_rows, subject

NOW = datetime(2026, 10, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


@pytest.fixture
def cli(app: Any, db: Any) -> Any:
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def _sim_box_day(session: Session, world: World, tmp_path: Path) -> tuple[int, int]:
    """A caller with 12 calls on 20 October, one of them to a line of ours: (caller, callee)."""
    update_rule_settings(
        session,
        rule="sim_box",
        enabled=True,
        auto_suspend=False,
        params={"min_calls": 12, "max_incoming_pct": 0},
        actor=STAFF,
        now=NOW,
    )
    caller = subject(session, world).line
    callee = subject(session, world).line
    start = datetime(2026, 10, 20, 1, 0, tzinfo=UTC)
    rows: list[tuple[Any, ...]] = [
        (f"SB{n}", caller.msisdn, "voice", start + timedelta(minutes=n), 30, "+8613800138000")
        for n in range(11)
    ]
    rows.append(("SB99", caller.msisdn, "voice", start, 30, callee.msisdn))
    import_rows(session, tmp_path, rows, now=NOW)
    session.commit()
    assert caller.id is not None and callee.id is not None
    return caller.id, callee.id


def test_fraud_scan_raises_once_from_imported_usage(cli, session, world, tmp_path):
    caller, callee = _sim_box_day(session, world, tmp_path)
    result = cli("fraud", "scan", "--now", NOW.isoformat(), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["raised"]["sim_box"] == 1 and report["alerts"] == 1
    alert = session.exec(select(FraudAlert)).one()
    # The callee had one incoming call, from a line of ours; the caller none.
    assert alert.line_id == caller and alert.figures["voice_calls"] == 12
    again = cli("fraud", "scan", "--now", NOW.isoformat())
    assert again.exit_code == 0 and again.stdout.startswith("0 alerts raised")
    assert callee != caller


def test_the_scheduler_job_scans(app, db, session, world, tmp_path):
    _sim_box_day(session, world, tmp_path)
    job = next(j for j in JOBS if j.id == "scan_fraud_rules")
    result = run_job(db, job, now=NOW, settings=app.extensions["mvno.settings"])
    assert result["alerts"] == 1
