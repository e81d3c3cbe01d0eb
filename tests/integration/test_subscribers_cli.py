"""`mvno subscribers import` and `mvno line show` (DESIGN §13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from app.auth.models import SubscriberAccount
from app.charging.models import LinePeriod
from app.charging.periods import open_period
from app.subscribers.models import Customer, Line
from app.subscribers.services import open_line
from numbering.models import Sim
from plans.models import Plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = "2026-10-15T12:00:00+08:00"
MSISDN = "+8617012340001"


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


@pytest.fixture
def supply(cli):
    assert cli("catalog", "load", str(FIXTURES / "catalog.toml")).exit_code == 0
    result = cli("sims", "import", str(FIXTURES / "sims.csv"), "--host", "HOSTA")
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def imported(cli, supply):
    result = cli("subscribers", "import", str(FIXTURES / "subscribers.csv"), "--now", NOW)
    assert result.exit_code == 0, result.stderr
    return result


def show(cli, *args):
    result = cli("line", "show", MSISDN, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_import_prints_the_report_as_json(cli, supply):
    path = str(FIXTURES / "subscribers.csv")
    result = cli("subscribers", "import", path, "--json", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    reason = report["warnings"][0]["reason"]
    assert report == {
        "file": path,
        "rows": 2,
        "customers": 2,
        "lines": 2,
        "balance_total": 10_000,
        "currency": "CNY",
        "already_imported": False,
        "rejected": [],
        "warnings": [
            {"row": 2, "field": "id_number", "reason": reason},
            {"row": 3, "field": "id_number", "reason": reason},
        ],
        "id_check_digit_mismatch": 2,
    }
    again = cli("subscribers", "import", path, "--now", NOW)
    assert again.exit_code == 0
    assert again.stdout.startswith("already imported, nothing changed: 2 customers, 2 lines")


def test_import_text_output_lists_the_warnings(cli, supply):
    result = cli("subscribers", "import", str(FIXTURES / "subscribers.csv"), "--now", NOW)
    assert result.exit_code == 0
    assert "imported: 2 customers, 2 lines, opening balances 100.00 CNY" in result.stdout
    assert "subscribers.csv:2: id_number: warning:" in result.stderr
    assert "110105194912310022" not in result.output  # an ID number is never echoed


def test_a_refused_file_lists_every_bad_row_and_exits_1(cli, supply, session, tmp_path):
    lines = (FIXTURES / "subscribers.csv").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join(
            [
                lines[0],
                lines[1].replace("100.00", "5000.00"),
                lines[2].replace("LITE30", "GONE").replace("li.na@", "li.na@@"),
            ]
        ),
        encoding="utf-8",
    )
    result = cli("subscribers", "import", str(bad), "--json", "--now", NOW)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(r["row"], r["field"]) for r in report["rejected"]] == [
        (2, "balance"),
        (3, "email"),
        (3, "plan_code"),
    ]
    assert "cap of 936.00" in report["rejected"][0]["reason"]
    assert (report["customers"], report["lines"], report["rows"]) == (0, 0, 2)
    assert f"{bad}:2: balance: " in result.stderr
    assert "2 of 2 rows refused; nothing imported." in result.stderr.splitlines()[-1]
    assert session.exec(select(Customer)).all() == []


def test_an_unreadable_file_is_a_clear_refusal(cli, tmp_path):
    missing = cli("subscribers", "import", str(tmp_path / "none.csv"))
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    result = cli("subscribers", "import", str(empty))
    assert result.exit_code == 1
    assert "the file is empty" in result.stderr
    assert "Traceback" not in result.output


def test_line_show_gives_the_period_containing_now(cli, imported):
    assert show(cli, "--now", NOW) == {
        "msisdn": MSISDN,
        "status": "active",
        "plan": "LITE30",
        "period_start": "2026-10-01T00:00:00+08:00",
        "period_end": "2026-10-31T00:00:00+08:00",
        "remaining": {"data_kb": 10_485_760, "voice_s": 12_000, "sms": 100},
        "balance": 10_000,
        "currency": "CNY",
    }
    second = cli("line", "show", "+8617012340002", "--json", "--now", NOW)
    data = json.loads(second.stdout)
    assert (data["period_start"], data["period_end"], data["balance"]) == (
        "2026-10-05T09:30:00+08:00",
        "2026-11-04T09:30:00+08:00",
        0,
    )


@pytest.fixture
def two_periods(imported, session):
    """The first line renewed on 31 October (+08), with usage in its first period."""
    line = session.exec(select(Line).where(Line.msisdn == MSISDN)).one()
    plan = session.exec(select(Plan).where(Plan.code == "LITE30")).one()
    first = session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).one()
    first.data_kb_used, first.voice_s_used, first.sms_used = 1024, 60, 3
    session.add(first)
    open_period(
        session,
        line=line,
        plan=plan,
        start=first.end,
        now=datetime(2026, 10, 30, 16, tzinfo=UTC),
    )
    session.flush()


@pytest.mark.parametrize(
    ("args", "start", "data_kb"),
    [
        (["--now", "2026-10-30T23:59:59+08:00"], "2026-10-01T00:00:00+08:00", 10_485_760 - 1024),
        (["--now", "2026-10-31T00:00:00+08:00"], "2026-10-31T00:00:00+08:00", 10_485_760),
        (["--now", "2026-11-05T00:00:00Z"], "2026-10-31T00:00:00+08:00", 10_485_760),
        # After every period: the latest one.
        (["--now", "2027-03-01T00:00:00+08:00"], "2026-10-31T00:00:00+08:00", 10_485_760),
        # Before the first period, without --at: the latest one too.
        (["--now", "2026-09-01T00:00:00+08:00"], "2026-10-31T00:00:00+08:00", 10_485_760),
        # --at chooses the period, whatever the clock says.
        (
            ["--at", "2026-10-15T00:00:00+08:00", "--now", "2026-11-05T00:00:00Z"],
            "2026-10-01T00:00:00+08:00",
            10_485_760 - 1024,
        ),
        (["--at", "2026-10-31T00:00:00+08:00"], "2026-10-31T00:00:00+08:00", 10_485_760),
    ],
)
def test_line_show_picks_the_period(cli, two_periods, args, start, data_kb):
    data = show(cli, *args)
    assert data["period_start"] == start
    assert data["remaining"]["data_kb"] == data_kb
    if start == "2026-10-01T00:00:00+08:00":
        assert data["remaining"] == {"data_kb": data_kb, "voice_s": 12_000 - 60, "sms": 97}
        assert data["period_end"] == "2026-10-31T00:00:00+08:00"
    else:
        assert data["period_end"] == "2026-11-30T00:00:00+08:00"


def test_line_show_at_a_time_without_a_period_shows_none(cli, two_periods):
    data = show(cli, "--at", "2026-09-30T23:59:59+08:00")
    assert (data["period_start"], data["period_end"], data["remaining"]) == (None, None, None)
    assert (data["status"], data["plan"], data["balance"]) == ("active", "LITE30", 10_000)


def test_a_line_without_periods_shows_none(cli, supply, session):
    plan = session.exec(select(Plan).where(Plan.code == "LITE30")).one()
    customer = Customer(ref="C-0100", created_at=datetime(2026, 10, 1, tzinfo=UTC))
    session.add(customer)
    session.flush()
    open_line(
        session,
        customer_id=customer.id or 0,
        msisdn="+8617012340100",
        plan_id=plan.id or 0,
        status="pending",
        now=datetime(2026, 10, 1, tzinfo=UTC),
    )
    session.flush()
    data = json.loads(cli("line", "show", "+8617012340100", "--json").stdout)
    assert data == {
        "msisdn": "+8617012340100",
        "status": "pending",
        "plan": "LITE30",
        "period_start": None,
        "period_end": None,
        "remaining": None,
        "balance": 0,
        "currency": "CNY",
    }


def test_line_show_text_output(cli, imported):
    result = cli("line", "show", MSISDN, "--now", NOW)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{MSISDN}: active, plan LITE30",
        "period 2026-10-01T00:00:00+08:00 to 2026-10-31T00:00:00+08:00",
        "remaining: data 10485760 KB, voice 12000 s, SMS 100",
        "balance 100.00 CNY",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+8617012349999"], "No line with number +8617012349999."),
        (["nonsense"], "No line with number nonsense."),
        ([MSISDN, "--at", "yesterday"], "is not an ISO 8601 time"),
        ([MSISDN, "--now", "2026-10-01T00:00:00"], "has no UTC offset"),
    ],
)
def test_line_show_refusals_exit_1(cli, imported, args, message):
    result = cli("line", "show", *args, "--json")
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_demo_load_imports_the_sample_subscribers_for_the_demo_logins(cli, session):
    first = json.loads(cli("demo", "load", "--size", "0", "--json").stdout)
    second = json.loads(cli("demo", "load", "--size", "0", "--json").stdout)
    assert (first["lines_imported"], second["lines_imported"]) == (2, 0)
    assert (first["sims_imported"], second["sims_imported"]) == (22, 0)
    # The two sample SIMs went to the imported lines; the store still has stock.
    in_stock = session.exec(select(Sim.kind).where(Sim.status == "in_stock")).all()
    assert sorted(set(in_stock)) == ["esim", "physical"] and len(in_stock) == 20
    customers = session.exec(select(Customer).order_by(Customer.ref)).all()
    assert [c.ref for c in customers] == ["C-0001", "C-0002"]
    for customer in customers:
        account = session.get(SubscriberAccount, customer.subscriber_account_id)
        assert account is not None and account.email == customer.email
    assert show(cli)["status"] == "active"
    # C-0001 has its opening balance, C-0002 the demo's cash payment.
    for ref in ("C-0001", "C-0002"):
        balance = json.loads(cli("ledger", "balance", ref, "--json").stdout)
        assert balance["balance"] == 10_000
    assert json.loads(cli("ledger", "check", "--json").stdout)["ok"] is True
