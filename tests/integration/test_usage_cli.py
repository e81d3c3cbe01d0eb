"""`mvno cdr import`, `cdr reprocess`, `settlement export` and `settlement reconcile` (DESIGN §13).

On the example files: the example usage of the example lines settles to
exactly the example invoice.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BEFORE = "--now=2026-09-01T00:00:00+08:00"
AFTER = "--now=2026-11-02T00:00:00+08:00"


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args))

    return invoke


@pytest.fixture
def loaded(cli):
    """The example catalog, SIMs and subscribers, as an operator loads them."""
    for args in (
        ("catalog", "load", str(FIXTURES / "catalog.toml"), BEFORE),
        ("sims", "import", str(FIXTURES / "sims.csv"), "--host", "HOSTA", BEFORE),
        ("subscribers", "import", str(FIXTURES / "subscribers.csv"), BEFORE),
    ):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    return cli


def test_cdr_import_json_and_the_same_file_again(loaded):
    cdr = str(FIXTURES / "cdr.csv")
    first = loaded("cdr", "import", cdr, "--host", "HOSTA", "--json", AFTER)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {
        "file": cdr,
        "rows": 4,
        "charged": 4,
        "duplicates": 0,
        "rejected": 0,
        "already_imported": False,
    }
    again = loaded("cdr", "import", cdr, "--host", "HOSTA", "--json", AFTER)
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {**json.loads(first.stdout), "already_imported": True}
    shown = loaded("line", "show", "+8617012340001", "--json", "--now=2026-10-10T00:00:00+08:00")
    remaining = json.loads(shown.stdout)["remaining"]
    # 10 GB less 50 MB; 200 minutes less one 61 s call billed as 2 minutes; 100 SMS less 1
    assert remaining == {"data_kb": 10_240 * 1024 - 51_200, "voice_s": 12_000 - 120, "sms": 99}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nothing,useful\n1,2\n", "header does not fit"),
        ("record_id,msisdn,service,start_time,quantity\n", "no rows"),
    ],
)
def test_cdr_import_refuses_an_unreadable_file(loaded, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    result = loaded("cdr", "import", str(path), "--host", "HOSTA", AFTER)
    assert result.exit_code == 1
    assert message in result.stderr and "nothing imported" in result.stderr


def test_cdr_import_refusals(loaded, tmp_path):
    missing = loaded("cdr", "import", str(tmp_path / "nope.csv"), "--host", "HOSTA")
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    unknown = loaded("cdr", "import", str(FIXTURES / "cdr.csv"), "--host", "NOPE")
    assert unknown.exit_code == 1 and "NOPE" in unknown.stderr


def test_rejects_are_kept_and_reprocessed(loaded, tmp_path):
    path = tmp_path / "early.csv"
    path.write_text(
        "record_id,msisdn,service,start_time,quantity\n"
        "E1,+8617012340002,sms,2026-10-02T00:00:00+08:00,1\n",  # before its line's first period
        encoding="utf-8",
    )
    result = loaded("cdr", "import", str(path), "--host", "HOSTA", "--json", AFTER)
    assert json.loads(result.stdout)["rejected"] == 1
    retried = loaded("cdr", "reprocess", "--host", "HOSTA", "--json", AFTER)
    assert retried.exit_code == 0
    assert json.loads(retried.stdout) | {"file_id": None} == {
        "host": "HOSTA",
        "file_id": None,
        "tried": 1,
        "charged": 0,
        "duplicates": 0,
        "still_rejected": 1,
    }


def test_the_example_usage_settles_to_the_example_invoice(loaded, tmp_path):
    loaded("cdr", "import", str(FIXTURES / "cdr.csv"), "--host", "HOSTA", AFTER)
    out = tmp_path / "out"
    result = loaded(
        "settlement",
        "export",
        "--host",
        "HOSTA",
        "--month",
        "2026-10",
        "--out",
        str(out),
        "--json",
        AFTER,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["total"] == 100_259 and summary["currency"] == "CNY"
    ours = list(csv.reader(io.StringIO((out / "settlement_HOSTA_2026-10.csv").read_text())))
    invoice = list(csv.reader(io.StringIO((FIXTURES / "host_invoice.csv").read_text())))
    assert [row[:8] for row in ours] == invoice
    assert [row[8] for row in ours] == ["compliant"] + ["true"] * 5
    assert (out / "settlement_HOSTA_2026-10.json").is_file()

    matched = loaded(
        "settlement",
        "reconcile",
        "--host",
        "HOSTA",
        "--month",
        "2026-10",
        "--invoice",
        str(FIXTURES / "host_invoice.csv"),
        "--out",
        str(out),
        "--json",
        AFTER,
    )
    assert matched.exit_code == 0, matched.output
    assert json.loads(matched.stdout)["discrepancies"] == 0


def test_reconcile_reports_differences_and_exits_0(loaded, tmp_path):
    loaded("cdr", "import", str(FIXTURES / "cdr.csv"), "--host", "HOSTA", AFTER)
    invoice = tmp_path / "invoice.csv"
    text = (FIXTURES / "host_invoice.csv").read_text()
    invoice.write_text(
        text.replace("voice,seconds,61,0.0400,0.04", "voice,seconds,6100,0.0400,4.07")
    )
    result = loaded(
        "settlement",
        "reconcile",
        "--host",
        "HOSTA",
        "--month",
        "2026-10",
        "--invoice",
        str(invoice),
        "--out",
        str(tmp_path),
        "--json",
        AFTER,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["discrepancies"] == 1
    report = (tmp_path / "reconciliation_HOSTA_2026-10.csv").read_text().splitlines()
    assert report[2].startswith("HOSTA,2026-10,voice,seconds,61,6100,6039,")
    assert report[2].endswith(",discrepancy")


def test_settlement_refusals(loaded, tmp_path):
    bad_month = loaded(
        "settlement", "export", "--host", "HOSTA", "--month", "2026/10", "--out", str(tmp_path)
    )
    assert bad_month.exit_code == 1 and "YYYY-MM" in bad_month.stderr
    bad_invoice = tmp_path / "bad.csv"
    bad_invoice.write_text("host,period\nHOSTA,2026-10\n")
    refused = loaded(
        "settlement",
        "reconcile",
        "--host",
        "HOSTA",
        "--month",
        "2026-10",
        "--invoice",
        str(bad_invoice),
        "--out",
        str(tmp_path),
    )
    assert refused.exit_code == 1 and "invoice was refused" in refused.stderr
    assert not (tmp_path / "reconciliation_HOSTA_2026-10.csv").exists()
