"""`mvno topup`, `mvno ledger balance` and `mvno ledger check` (DESIGN §13)."""

import json

import pytest
from sqlalchemy import text
from sqlmodel import func, select

from app.ledger.models import JournalEntry
from tests.unit.ledger.helpers import lite30_plan, make_customer, make_line

MSISDN = "+8617012340001"


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


@pytest.fixture
def customer(session):
    customer = make_customer(session, ref="C-0042")
    make_line(session, customer=customer, plan=lite30_plan(session), msisdn=MSISDN)
    session.commit()
    return customer


def entries(session):
    return session.exec(select(func.count()).select_from(JournalEntry)).one()


def test_topup_prints_the_entry_and_the_new_balance(cli, customer):
    result = cli("topup", MSISDN, "50.00", "--ref", "RCPT-1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"entry_id", "balance", "currency"}
    assert data["balance"] == 5000 and data["currency"] == "CNY"
    assert isinstance(data["entry_id"], int)


def test_topup_replayed_with_the_same_ref_changes_nothing(cli, customer, session):
    first = json.loads(cli("topup", MSISDN, "50.00", "--ref", "RCPT-1", "--json").stdout)
    second = cli("topup", MSISDN, "50.00", "--ref", "RCPT-1", "--json")
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout) == first
    assert entries(session) == 1


def test_topup_with_a_used_ref_and_another_amount_is_refused(cli, customer, session):
    cli("topup", MSISDN, "50.00", "--ref", "RCPT-1")
    result = cli("topup", MSISDN, "60.00", "--ref", "RCPT-1")
    assert result.exit_code == 1
    assert "already recorded for another payment" in result.stderr
    assert entries(session) == 1


def test_topup_past_the_cap_exits_1_on_one_line_and_changes_nothing(cli, customer, session):
    cli("topup", MSISDN, "820.00", "--ref", "RCPT-1")
    result = cli("topup", MSISDN, "120.00", "--ref", "RCPT-2", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "116.00" in result.stderr
    assert entries(session) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("+8617099999999", "10.00"), "No line"),
        ((MSISDN, "ten"), "bad amount"),
        ((MSISDN, "10.001"), "bad amount"),
        ((MSISDN, "0"), "more than zero"),
    ],
)
def test_topup_refusals_exit_1_and_change_nothing(cli, customer, session, args, message):
    result = cli("topup", *args, "--ref", "RCPT-X")
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert entries(session) == 0


@pytest.mark.parametrize("target", [MSISDN, "C-0042"])
def test_ledger_balance_by_number_or_customer_ref(cli, customer, target):
    cli("topup", MSISDN, "50.00", "--ref", "RCPT-1")
    result = cli("ledger", "balance", target, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "customer_ref": "C-0042",
        "balance": 5000,
        "cap": 93600,
        "currency": "CNY",
    }


def test_ledger_balance_of_an_unknown_customer_exits_1(cli, customer):
    result = cli("ledger", "balance", "C-9999")
    assert result.exit_code == 1
    assert "No customer C-9999" in result.stderr


def test_ledger_check_is_ok_then_fails_on_a_tampered_balance(cli, customer, session):
    cli("topup", MSISDN, "50.00", "--ref", "RCPT-1")
    result = cli("ledger", "check", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "entries": 1, "postings": 2, "problems": []}
    session.execute(
        text("UPDATE ledger_account SET balance_minor = 1 WHERE kind = 'customer_prepaid'")
    )
    session.commit()
    result = cli("ledger", "check", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert set(data) == {"ok", "entries", "postings", "problems"}
    assert "cached balance 1" in data["problems"][0]


def test_topup_records_a_payment_with_its_method_and_reference(cli, customer, session):
    from app.payments.models import Payment

    result = cli("topup", MSISDN, "20.00", "--ref", "BANK-77", "--method", "bank_transfer")
    assert result.exit_code == 0, result.stderr
    payment = session.exec(select(Payment)).one()
    assert (payment.method, payment.reference, payment.amount_minor, payment.status) == (
        "bank_transfer",
        "BANK-77",
        2000,
        "succeeded",
    )
    # The same bank reference under another method is another payment.
    assert cli("topup", MSISDN, "20.00", "--ref", "BANK-77").exit_code == 0
    assert entries(session) == 2


def test_refunds_send_needs_stripe(cli):
    result = cli("refunds", "send")
    assert result.exit_code == 1
    assert "Stripe is not configured" in result.stderr


def test_balance_and_liability_as_of_a_past_time(cli, customer):
    cli("topup", MSISDN, "10.00", "--ref", "A", "--now", "2026-11-01T10:00:00+08:00")
    cli("topup", MSISDN, "5.00", "--ref", "B", "--now", "2026-11-03T10:00:00+08:00")
    between = "2026-11-02T00:00:00+08:00"
    then = json.loads(cli("ledger", "balance", MSISDN, "--at", between, "--json").stdout)
    assert then["balance"] == 1000
    now = json.loads(cli("ledger", "balance", MSISDN, "--json").stdout)
    assert now["balance"] == 1500
    before = json.loads(
        cli("ledger", "liability", "--at", "2026-10-31T00:00:00+08:00", "--json").stdout
    )
    assert before == {"liability": 0, "at": "2026-10-30T16:00:00+00:00", "currency": "CNY"}
    assert json.loads(cli("ledger", "liability", "--json").stdout)["liability"] == 1500
    refused = cli("ledger", "balance", MSISDN, "--at", "yesterday")
    assert refused.exit_code == 1 and refused.stderr.startswith("mvno:")
