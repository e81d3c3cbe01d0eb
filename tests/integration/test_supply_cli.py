"""`mvno catalog load` and `mvno sims import` (DESIGN §13)."""

import json
from pathlib import Path

import pytest
from sqlmodel import func, select

from numbering.models import PhoneNumber, Sim
from plans.models import Plan
from wholesale.models import HostCarrier

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def count(session, model):
    return session.exec(select(func.count()).select_from(model)).one()


def test_catalog_load_is_idempotent(cli, session):
    first = cli("catalog", "load", str(FIXTURES / "catalog.toml"), "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["hosts"]["created"] == 1
    assert report["plans"]["created"] == 1
    assert count(session, PhoneNumber) == 10_000
    second = json.loads(cli("catalog", "load", str(FIXTURES / "catalog.toml"), "--json").stdout)
    assert second["hosts"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert second["plans"]["created"] == 0 and second["plans"]["updated"] == 0
    assert count(session, PhoneNumber) == 10_000
    assert count(session, Plan) == 1


def test_bad_catalog_names_every_problem_and_loads_nothing(cli, session, tmp_path):
    text = (FIXTURES / "catalog.toml").read_text(encoding="utf-8")
    text = text.replace("validity_days = 30", "validity_days = 800")
    text = text.replace('sms_per_msg = "0.0150"', 'sms_per_msg = "0.00150001"', 1)
    text = text.replace('last = "+8617012349999"', 'last = "+8617012330000"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    result = cli("catalog", "load", str(bad))
    assert result.exit_code == 1
    assert "validity_days" in result.stderr
    assert "sms_per_msg" in result.stderr
    assert "+8617012340000" in result.stderr
    assert "nothing loaded" in result.stderr.splitlines()[-1]
    assert count(session, HostCarrier) == 0
    assert count(session, PhoneNumber) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [("[[hosts]\ncode = 1", "line"), (None, "no such file")],
)
def test_unreadable_catalog_is_a_clear_refusal(cli, tmp_path, content, message):
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = cli("catalog", "load", str(path))
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_sims_import_all_or_nothing(cli, session, tmp_path):
    assert cli("catalog", "load", str(FIXTURES / "catalog.toml")).exit_code == 0
    good = cli("sims", "import", str(FIXTURES / "sims.csv"), "--host", "HOSTA", "--json")
    assert good.exit_code == 0, good.stderr
    assert json.loads(good.stdout)["imported"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "iccid,imsi,kind,lpa\n"
        "8986012600000000039,460019000000003,physical,\n"
        "8986012600000000012,460019000000004,physical,\n"
        "8986012600000000013,46001900000000,physical,\n",
        encoding="utf-8",
    )
    result = cli("sims", "import", str(bad), "--host", "HOSTA")
    assert result.exit_code == 1
    assert ":3:" in result.stderr and ":4:" in result.stderr
    assert count(session, Sim) == 2


def test_sims_import_unknown_host(cli):
    result = cli("sims", "import", str(FIXTURES / "sims.csv"), "--host", "NOPE")
    assert result.exit_code == 1
    assert "NOPE" in result.stderr
