"""The cap the ledger enforces is the policy registered from above (DESIGN §2, §5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.audit import Actor
from app.core.events import load_handlers
from app.ledger.balances import customer_balance
from app.ledger.cap import CapTerms, cap_policy, prepaid_cap_minor, set_cap_policy
from app.ledger.checks import check_ledger
from app.ledger.errors import CapExceeded
from app.ledger.movements import credit_customer, receive_money
from tests.factories import NOW
from tests.unit.ledger.helpers import MONTHS, REFERENCE, make_customer

ACTOR = Actor.system("test")
SMALL_CAP = 1000
ROOT = Path(__file__).resolve().parents[3]


def small_caps(session, customer_ids, terms: CapTerms):
    return {customer_id: SMALL_CAP for customer_id in customer_ids}


def swap_in(policy):
    """Register `policy`, returning the real one: the handlers load first, so their
    registration cannot replace `policy` afterwards."""
    load_handlers()
    return set_cap_policy(policy)


@pytest.fixture
def small_cap_policy():
    previous = swap_in(small_caps)
    try:
        yield
    finally:
        set_cap_policy(previous)


def credit(session, customer, amount, key):
    return credit_customer(
        session,
        customer_id=customer.id,
        amount_minor=amount,
        source_kind="cash_offline",
        idempotency_key=key,
        actor=ACTOR,
        now=NOW,
        cap_months=MONTHS,
        reference_monthly_minor=REFERENCE,
        currency="CNY",
    )


def test_registered_policy_is_the_cap_the_ledger_enforces(session, small_cap_policy):
    customer = make_customer(session)
    # Far below the default cap (24 × 50.00) and above the registered one.
    with pytest.raises(CapExceeded) as caught:
        credit(session, customer, SMALL_CAP + 1, "small-1")
    assert caught.value.params["allowed_minor"] == SMALL_CAP
    assert customer_balance(session, customer_id=customer.id) == 0
    credit(session, customer, SMALL_CAP, "small-2")
    assert customer_balance(session, customer_id=customer.id) == SMALL_CAP
    cap = prepaid_cap_minor(
        session, customer_id=customer.id, settings_months=MONTHS, reference_monthly_minor=REFERENCE
    )
    assert cap == SMALL_CAP


def test_money_that_arrives_is_credited_up_to_the_registered_cap(session, small_cap_policy):
    customer = make_customer(session)
    receipt = receive_money(
        session,
        customer_id=customer.id,
        amount_minor=SMALL_CAP + 250,
        source_kind="cash_stripe",
        idempotency_key="arrived-1",
        actor=ACTOR,
        now=NOW,
        cap_months=MONTHS,
        reference_monthly_minor=REFERENCE,
        currency="CNY",
    )
    assert (receipt.credited_minor, receipt.excess_minor) == (SMALL_CAP, 250)


def test_check_reports_a_balance_above_the_registered_cap(session):
    customer = make_customer(session)
    credit(session, customer, SMALL_CAP + 1, "before-1")
    previous = swap_in(small_caps)
    try:
        result = check_ledger(session, cap_months=MONTHS, reference_monthly_minor=REFERENCE)
    finally:
        set_cap_policy(previous)
    expected = f"customer {customer.ref}: prepaid balance 10.01 above its cap 10.00"
    assert result.problems == [expected]


def test_no_registered_policy_is_a_programming_error():
    previous = swap_in(None)
    try:
        with pytest.raises(RuntimeError):
            cap_policy()
    finally:
        set_cap_policy(previous)


def test_default_policy_is_registered_without_importing_subscribers():
    # A fresh interpreter that imports only the ledger: the first use of the
    # policy loads the handlers, which register the subscribers' line fees and,
    # on the floor above, the exit's policy that wraps them.
    code = (
        "import sys\n"
        "from app.ledger.cap import cap_policy\n"
        "assert not any(m.startswith('app.subscribers') for m in sys.modules), 'imported early'\n"
        "policy = cap_policy()\n"
        "print(policy.__module__, policy.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["app.exit.cap", "exit_caps"]
