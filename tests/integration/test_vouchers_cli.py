"""`mvno vouchers create` (DESIGN §13)."""

import json

import pytest
from sqlmodel import func, select

from app.payments.models import Voucher


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


ARGS = ("vouchers", "create", "--name", "Launch", "--count", "3")
EXPIRES = ("--expires", "2027-12-31T23:59:59+08:00", "--now", "2026-11-01T08:00:00+00:00")


def test_create_json_prints_the_batch_and_each_serial_and_pin(cli, session):
    result = cli(*ARGS, "--value", "50.00", *EXPIRES, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"batch_id", "vouchers"}
    assert isinstance(data["batch_id"], int)
    assert len(data["vouchers"]) == 3
    assert all(set(v) == {"serial", "pin"} for v in data["vouchers"])
    assert session.exec(select(func.count()).select_from(Voucher)).one() == 3


def test_create_prints_csv_by_default(cli):
    result = cli(*ARGS, "--value", "50.00", *EXPIRES)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "serial,pin" and len(lines) == 4


@pytest.mark.parametrize("value", ["abc", "0", "-5.00"])
def test_bad_value_exits_1_on_one_line(cli, session, value):
    result = cli(*ARGS, "--value", value, *EXPIRES)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert session.exec(select(func.count()).select_from(Voucher)).one() == 0
