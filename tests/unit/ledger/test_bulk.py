"""`post_entries`: many entries at once, with post_entry's rules (DESIGN §5)."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from app.core.audit import Actor
from app.core.errors import InvalidInput
from app.ledger.accounts import customer_account_ids, get_or_create_account, system_account_id
from app.ledger.balances import customer_balance
from app.ledger.checks import check_ledger
from app.ledger.errors import IdempotencyConflict
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.ledger.posting import BulkEntry, find_entry, post_entries
from tests.factories import NOW
from tests.unit.ledger.helpers import MONTHS, REFERENCE, make_customer

ACTOR = Actor.system("test")


def _count(session, model):
    return session.exec(select(func.count()).select_from(model)).one()


def _customers(session, n):
    customers = [make_customer(session, ref=f"C-B{i:03d}") for i in range(n)]
    ids = customer_account_ids(session, customer_ids=[c.id for c in customers], currency="CNY")
    return customers, ids


def _credit(key, account, source, amount):
    return BulkEntry("credit.adjustments", key, ((source, -amount), (account, amount)))


def _debit(key, account, revenue, amount):
    return BulkEntry("charge.revenue_plans", key, ((account, -amount), (revenue, amount)))


def test_posts_many_entries_and_keeps_the_ledger_balanced(session):
    customers, ids = _customers(session, 30)
    source = system_account_id(session, kind="adjustments", currency="CNY")
    result = post_entries(
        session,
        entries=[
            _credit(f"k{c.id}", ids[c.id], source, 100 * (i + 1)) for i, c in enumerate(customers)
        ],
        actor=ACTOR,
        now=NOW,
    )
    assert len(result.posted) == 30 and not result.refused and not result.replayed
    for i, c in enumerate(customers):
        assert customer_balance(session, customer_id=c.id) == 100 * (i + 1)
        account = session.get(LedgerAccount, ids[c.id])
        assert account.balance_minor == 100 * (i + 1)  # cached balance follows
    assert _count(session, Posting) == 60
    check = check_ledger(session, cap_months=MONTHS, reference_monthly_minor=REFERENCE)
    assert check.ok, check.problems


def test_debits_are_decided_in_order_against_running_balances(session):
    (customer,), ids = _customers(session, 1)
    account = ids[customer.id]
    source = system_account_id(session, kind="adjustments", currency="CNY")
    revenue = system_account_id(session, kind="revenue_plans", currency="CNY")
    result = post_entries(
        session,
        entries=[
            _credit("in", account, source, 1000),
            _debit("d1", account, revenue, 600),
            _debit("d2", account, revenue, 600),  # 400 left: refused
            _debit("d3", account, revenue, 400),  # exactly what is left: posted
        ],
        actor=ACTOR,
        now=NOW,
    )
    assert set(result.posted) == {"in", "d1", "d3"}
    assert result.refused == {"d2": "insufficient_balance"}
    assert customer_balance(session, customer_id=customer.id) == 0
    assert find_entry(session, "d2") is None
    assert _count(session, Posting) == 6


def test_a_refused_debit_sees_the_balance_already_in_the_database(session):
    (customer,), ids = _customers(session, 1)
    source = system_account_id(session, kind="adjustments", currency="CNY")
    revenue = system_account_id(session, kind="revenue_plans", currency="CNY")
    post_entries(
        session, entries=[_credit("in", ids[customer.id], source, 500)], actor=ACTOR, now=NOW
    )
    result = post_entries(
        session, entries=[_debit("d", ids[customer.id], revenue, 501)], actor=ACTOR, now=NOW
    )
    assert result.refused == {"d": "insufficient_balance"} and not result.posted


def test_replays_are_reported_and_post_nothing(session):
    (customer,), ids = _customers(session, 1)
    source = system_account_id(session, kind="adjustments", currency="CNY")
    first = post_entries(
        session, entries=[_credit("k", ids[customer.id], source, 700)], actor=ACTOR, now=NOW
    )
    # Another shard of the same system account is the same payload.
    other = system_account_id(session, kind="adjustments", currency="CNY")
    again = post_entries(
        session, entries=[_credit("k", ids[customer.id], other, 700)], actor=ACTOR, now=NOW
    )
    assert again.replayed == first.posted and not again.posted
    assert customer_balance(session, customer_id=customer.id) == 700
    assert _count(session, JournalEntry) == 1


def test_same_key_with_another_payload_is_a_conflict(session):
    (customer,), ids = _customers(session, 1)
    source = system_account_id(session, kind="adjustments", currency="CNY")
    post_entries(
        session, entries=[_credit("k", ids[customer.id], source, 700)], actor=ACTOR, now=NOW
    )
    with pytest.raises(IdempotencyConflict):
        post_entries(
            session, entries=[_credit("k", ids[customer.id], source, 701)], actor=ACTOR, now=NOW
        )


@pytest.mark.parametrize(
    "postings",
    [(), ((1, 5), (2, -4)), ((1, 0), (2, 0))],
    ids=["empty", "unbalanced", "zero"],
)
def test_bad_entries_are_refused_before_anything_is_written(session, postings):
    (customer,), ids = _customers(session, 1)
    source = system_account_id(session, kind="adjustments", currency="CNY")
    good = _credit("good", ids[customer.id], source, 100)
    with pytest.raises(InvalidInput):
        post_entries(session, entries=[good, BulkEntry("x", "bad", postings)], actor=ACTOR, now=NOW)
    assert _count(session, JournalEntry) == 0


def test_a_key_twice_in_one_call_is_refused(session):
    (customer,), ids = _customers(session, 1)
    source = system_account_id(session, kind="adjustments", currency="CNY")
    entry = _credit("k", ids[customer.id], source, 100)
    with pytest.raises(InvalidInput):
        post_entries(session, entries=[entry, entry], actor=ACTOR, now=NOW)


def test_unknown_accounts_are_refused(session):
    with pytest.raises(InvalidInput):
        post_entries(
            session,
            entries=[BulkEntry("x", "k", ((987654, 5), (987655, -5)))],
            actor=ACTOR,
            now=NOW,
        )


def test_customer_account_ids_creates_missing_accounts_once(session):
    customers, ids = _customers(session, 3)
    again = customer_account_ids(session, customer_ids=[c.id for c in customers], currency="CNY")
    assert again == ids
    assert _count(session, LedgerAccount) == 3
    single = get_or_create_account(
        session, kind="customer_prepaid", customer_id=customers[0].id, currency="CNY"
    )
    assert single.id == ids[customers[0].id]
