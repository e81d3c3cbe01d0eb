"""`mvno care holidays`: load a year's public holidays, list, add and remove days; bad
input is one line on stderr and exit status 1, with nothing written."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session, select

from app.care.models import SlaDay
from app.core.audit import AuditEntry


@pytest.fixture
def cli(app: Any, db: Any) -> Any:
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def test_load_list_add_and_remove(cli, session: Session):
    loaded = cli("care", "holidays", "load", "--year", "2025", "--json")
    assert loaded.exit_code == 0, loaded.output
    report = json.loads(loaded.stdout)
    assert report["country"] == "CN" and report["year"] == 2025 and report["kept"] == []
    assert "2025-01-26" in report["workdays"] and "2025-01-29" in report["holidays"]

    again = cli("care", "holidays", "load", "--year", "2025", "--country", "cn")
    assert again.exit_code == 0
    assert "0 holidays and 0 make-up working days added" in again.stdout

    listed = json.loads(cli("care", "holidays", "list", "--year", "2025", "--json").stdout)
    days = {d["day"]: d for d in listed["days"]}
    assert days["2025-01-29"] == {
        "day": "2025-01-29",
        "kind": "holiday",
        "name": "春节",
        "source": "public",
    }
    assert json.loads(cli("care", "holidays", "list", "--year", "2024", "--json").stdout) == {
        "days": []
    }

    added = cli(
        "care",
        "holidays",
        "add",
        "2025-01-29",
        "--kind",
        "holiday",
        "--name",
        "春节（公司放假）",
        "--json",
        "--now",
        "2025-01-01T09:00:00+08:00",
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["source"] == "staff"
    text = cli("care", "holidays", "list").stdout
    assert "2025-01-29  holiday  staff   春节（公司放假）" in text

    removed = cli("care", "holidays", "remove", "2025-01-29", "--json")
    assert json.loads(removed.stdout) == {"day": "2025-01-29", "removed": True}
    session.expire_all()
    assert session.get(SlaDay, date(2025, 1, 29)) is None
    actions = {a.action for a in session.exec(select(AuditEntry)).all() if a.actor_kind == "cli"}
    assert actions == {"sla_day.load", "sla_day.set", "sla_day.remove"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["load", "--year", "1999"], "from 2000 to 2099"),
        (["load", "--year", "2100"], "from 2000 to 2099"),
        (["load", "--year", "twenty"], "from 2000 to 2099"),
        (["load", "--year", "2025", "--country", "ZZ"], "No public holidays are known for ZZ"),
        (["list", "--year", "99"], "from 2000 to 2099"),
        (["add", "2025-02-30", "--kind", "holiday", "--name", "x"], "YYYY-MM-DD"),
        (["add", "2025/01/01", "--kind", "holiday", "--name", "x"], "YYYY-MM-DD"),
        (["add", "2025-01-04", "--kind", "closed", "--name", "x"], "Unknown kind of day closed"),
        (["add", "2025-01-06", "--kind", "workday", "--name", "x"], "Saturday or a Sunday"),
        (["add", "2025-01-04", "--kind", "workday", "--name", "x" * 101], "at most 100"),
        (["add", "2025-01-04", "--kind", "workday", "--name", " "], "name is required"),
        (["remove", "2025-01-04"], "2025-01-04 is not in the SLA calendar"),
        (["remove", "tomorrow"], "YYYY-MM-DD"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, session, args, message):
    result = cli("care", "holidays", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert session.exec(select(SlaDay)).all() == []
