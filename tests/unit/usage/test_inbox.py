"""The host's inbox folder and the month-end settlement job."""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from app.core.db import Database
from app.usage.inbox import process_inbox
from app.usage.jobs import previous_month, settle_closed_month
from app.usage.models import UsageFile
from tests.unit.subscribers.helpers import World, make_world
from tests.unit.usage.helpers import IMPORT_NOW, at, cdr_text, subject
from wholesale.models import SettlementRun


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def _drop(folder: Path, name: str, text: str, *, age_s: float = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_inbox_imports_moves_and_explains(
    session: Session, db: Database, world: World, tmp_path: Path
) -> None:
    s = subject(session, world)
    session.flush()
    inbox = tmp_path / "inbox" / "HOSTA"
    _drop(inbox, "good.csv", cdr_text([("G1", s.msisdn, "sms", at(1), 1)]))
    _drop(inbox, "bad.csv", "no,header\n1,2\n")
    _drop(inbox, "growing.csv", cdr_text([("G2", s.msisdn, "sms", at(2), 1)]), age_s=0)
    _drop(tmp_path / "inbox" / "NOSUCH", "x.csv", "anything")
    run = process_inbox(db, instance_path=tmp_path, now=IMPORT_NOW)
    assert [(i["file"], i["charged"]) for i in run.imported] == [("good.csv", 1)]
    assert [f["file"] for f in run.failed] == ["bad.csv"]
    assert run.unknown_hosts == ["NOSUCH"]
    assert (inbox / "done" / "good.csv").is_file()
    assert (inbox / "failed" / "bad.csv").is_file()
    reason = (inbox / "failed" / "bad.csv.reason.txt").read_text()
    assert "header" in reason
    assert (inbox / "growing.csv").is_file()  # still being written: left for the next run
    assert (tmp_path / "inbox" / "NOSUCH" / "x.csv").is_file()
    assert len(session.exec(select(UsageFile)).all()) == 1


def test_inbox_moves_a_file_imported_before_to_done(
    session: Session, db: Database, world: World, tmp_path: Path
) -> None:
    s = subject(session, world)
    text = cdr_text([("G1", s.msisdn, "sms", at(1), 1)])
    inbox = tmp_path / "inbox" / "HOSTA"
    _drop(inbox, "a.csv", text)
    process_inbox(db, instance_path=tmp_path, now=IMPORT_NOW)
    _drop(inbox, "a-again.csv", text)
    run = process_inbox(db, instance_path=tmp_path, now=IMPORT_NOW)
    assert run.imported[0]["already_imported"] is True
    assert (inbox / "done" / "a-again.csv").is_file()


def test_previous_month_is_the_hosts(world: World) -> None:
    # 16:30 UTC on 31 October is already November in Shanghai
    assert previous_month(world.host, datetime(2026, 10, 31, 16, 30, tzinfo=UTC)) == "2026-10"
    assert previous_month(world.host, datetime(2026, 10, 31, 15, 30, tzinfo=UTC)) == "2026-09"
    assert previous_month(world.host, datetime(2027, 1, 3, tzinfo=UTC)) == "2026-12"


def test_settlement_job_exports_the_closed_month_once(
    session: Session, db: Database, app: Any, world: World, tmp_path: Path
) -> None:
    subject(session, world)
    settings = dataclasses.replace(app.extensions["mvno.settings"], instance_path=tmp_path)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    first = settle_closed_month(db, settings, now)
    assert [(e["host"], e["month"]) for e in first["exported"]] == [("HOSTA", "2026-10")]
    assert (tmp_path / "settlement" / "HOSTA" / "settlement_HOSTA_2026-10.csv").is_file()
    second = settle_closed_month(db, settings, now + timedelta(hours=24))
    assert second == {"exported": [], "failed": []}
    runs = session.exec(select(SettlementRun)).all()
    assert [(r.month, r.kind) for r in runs] == [("2026-10", "export")]
