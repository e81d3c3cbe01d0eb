"""The prepaid ledger's rules (DESIGN §5), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, text
from sqlmodel import col, func, select

from app.core.audit import Actor, AuditEntry
from app.core.db import Database
from app.core.errors import InvalidInput
from app.ledger.accounts import SYSTEM_SHARDS, get_or_create_account, system_balance
from app.ledger.balances import book_liability, customer_balance
from app.ledger.cap import prepaid_cap_minor
from app.ledger.checks import check_ledger
from app.ledger.errors import CapExceeded, IdempotencyConflict, InsufficientBalance
from app.ledger.models import JournalEntry, LedgerAccount, LedgerActivity, Posting
from app.ledger.movements import credit_customer
from app.ledger.posting import post_entry
from app.subscribers.models import Customer
from tests.factories import NOW
from tests.unit.ledger.helpers import MONTHS, REFERENCE, lite30_plan, make_customer, make_line

ACTOR = Actor.system("test")


def count(session, model):
    return session.exec(select(func.count()).select_from(model)).one()


def accounts(session, customer):
    mine = get_or_create_account(
        session, kind="customer_prepaid", customer_id=customer.id, currency="CNY"
    )
    cash = get_or_create_account(session, kind="cash_offline", currency="CNY")
    return mine, cash


def credit(session, customer, amount, key, *, now=NOW):
    return credit_customer(
        session,
        customer_id=customer.id,
        amount_minor=amount,
        source_kind="cash_offline",
        idempotency_key=key,
        actor=ACTOR,
        now=now,
        cap_months=MONTHS,
        reference_monthly_minor=REFERENCE,
        currency="CNY",
    )


def check(session):
    return check_ledger(session, cap_months=MONTHS, reference_monthly_minor=REFERENCE)


# -- posting -------------------------------------------------------------------------


def test_balanced_entry_updates_cached_balances(session):
    customer = make_customer(session)
    mine, cash = accounts(session, customer)
    entry = post_entry(
        session,
        kind="test",
        idempotency_key="k1",
        postings=[(cash.id, -1500), (mine.id, 1500)],
        actor=ACTOR,
        now=NOW,
    )
    assert entry.id is not None
    assert mine.balance_minor == 1500 and cash.balance_minor == -1500
    assert customer_balance(session, customer_id=customer.id) == 1500
    assert check(session).ok


@pytest.mark.parametrize(
    ("postings", "message"),
    [
        ([], "needs postings"),
        ([("cash", -100), ("mine", 99)], "sum to -1"),
        ([("cash", 0), ("mine", 0)], "zero"),
        ([("cash", -100), ("mine", 100), ("mine", 0)], "zero"),
    ],
)
def test_empty_zero_or_unbalanced_postings_are_refused(session, postings, message):
    customer = make_customer(session)
    mine, cash = accounts(session, customer)
    ids = {"mine": mine.id, "cash": cash.id}
    with pytest.raises(InvalidInput, match=message):
        post_entry(
            session,
            kind="test",
            idempotency_key="bad",
            postings=[(ids[name], amount) for name, amount in postings],
            actor=ACTOR,
            now=NOW,
        )
    assert count(session, JournalEntry) == 0
    assert count(session, Posting) == 0


def test_same_key_and_payload_returns_the_first_entry_and_changes_nothing(session):
    customer = make_customer(session)
    first = credit(session, customer, 2000, "pay-1")
    again = credit(session, customer, 2000, "pay-1", now=NOW + timedelta(hours=1))
    assert again.id == first.id
    assert count(session, Posting) == 2
    assert customer_balance(session, customer_id=customer.id) == 2000


def test_same_key_with_a_different_payload_is_a_409_conflict(session):
    customer = make_customer(session)
    credit(session, customer, 2000, "pay-1")
    with pytest.raises(IdempotencyConflict) as caught:
        credit(session, customer, 2500, "pay-1")
    assert caught.value.http_status == 409
    assert customer_balance(session, customer_id=customer.id) == 2000
    assert count(session, Posting) == 2


def test_prepaid_balance_may_not_go_below_zero_unless_allowed(session):
    customer = make_customer(session)
    mine, _ = accounts(session, customer)
    revenue = get_or_create_account(session, kind="revenue_usage", currency="CNY")
    credit(session, customer, 1000, "pay-1")
    charge = [(mine.id, -1500), (revenue.id, 1500)]
    with pytest.raises(InsufficientBalance):
        post_entry(
            session, kind="usage", idempotency_key="u1", postings=charge, actor=ACTOR, now=NOW
        )
    assert customer_balance(session, customer_id=customer.id) == 1000
    post_entry(
        session,
        kind="usage",
        idempotency_key="u1",
        postings=charge,
        actor=ACTOR,
        now=NOW,
        allow_negative=frozenset({mine.id}),
    )
    assert customer_balance(session, customer_id=customer.id) == -500
    assert check(session).ok


def test_system_accounts_are_unique_despite_a_null_customer(session):
    first = get_or_create_account(session, kind="cash_offline", currency="CNY")
    second = get_or_create_account(session, kind="cash_offline", currency="CNY")
    assert first.id == second.id
    # All shards are made with the first, and never again.
    assert count(session, LedgerAccount) == SYSTEM_SHARDS
    other = get_or_create_account(session, kind="cash_offline", currency="CNY", shard=3)
    assert other.scope == "system:3" and other.id != first.id
    assert count(session, LedgerAccount) == SYSTEM_SHARDS
    with pytest.raises(InvalidInput):
        get_or_create_account(session, kind="cash_offline", currency="CNY", shard=SYSTEM_SHARDS)


def test_system_balance_sums_the_shards_and_replays_match_across_shards(session):
    customer = make_customer(session)
    for n in range(20):
        credit(session, customer, 100, f"pay-{n}")
    cash = session.exec(select(LedgerAccount).where(LedgerAccount.kind == "cash_offline")).all()
    assert len(cash) == SYSTEM_SHARDS
    # 20 credits spread over the shards (all on one would be 1 chance in 8**19).
    assert sum(1 for account in cash if account.balance_minor) > 1
    assert system_balance(session, kind="cash_offline", currency="CNY") == -2000
    # Each replay picks a shard again at random; it still returns the first entry.
    first = credit(session, customer, 100, "pay-0")
    for _ in range(10):
        assert credit(session, customer, 100, "pay-0").id == first.id
    assert customer_balance(session, customer_id=customer.id) == 2000
    assert check(session).ok


def test_zero_posting_is_refused_by_the_database(session):
    customer = make_customer(session)
    credit(session, customer, 100, "pay-1")
    with pytest.raises(Exception, match="amount_not_zero"):
        with session.begin_nested():
            session.execute(
                text("UPDATE posting SET amount_minor = 0 WHERE id = (SELECT MIN(id) FROM posting)")
            )


# -- cap -----------------------------------------------------------------------------


def test_cap_without_lines_is_months_times_the_reference_fee(session):
    customer = make_customer(session)
    cap = prepaid_cap_minor(
        session, customer_id=customer.id, settings_months=MONTHS, reference_monthly_minor=REFERENCE
    )
    assert cap == 24 * 5000


def test_cap_comes_from_the_monthly_fees_of_lines_that_are_not_final(session):
    customer = make_customer(session)
    plan = lite30_plan(session)
    make_line(session, customer=customer, plan=plan, msisdn="+8617012340001")
    make_line(session, customer=customer, plan=plan, msisdn="+8617012340002", status="terminated")
    cap = prepaid_cap_minor(
        session, customer_id=customer.id, settings_months=MONTHS, reference_monthly_minor=REFERENCE
    )
    assert cap == 24 * 3900 == 93600


def test_credit_past_the_cap_names_the_largest_amount_allowed_and_changes_nothing(session):
    customer = make_customer(session)
    plan = lite30_plan(session)
    make_line(session, customer=customer, plan=plan, msisdn="+8617012340001")
    credit(session, customer, 82000, "pay-1")
    with pytest.raises(CapExceeded) as caught:
        credit(session, customer, 12000, "pay-2")
    assert caught.value.http_status == 409
    assert "116.00" in caught.value.message
    assert caught.value.params["allowed_minor"] == 11600
    assert customer_balance(session, customer_id=customer.id) == 82000
    assert count(session, JournalEntry) == 1
    assert credit(session, customer, 11600, "pay-3").id is not None
    assert customer_balance(session, customer_id=customer.id) == 93600


@pytest.mark.parametrize("amount", [0, -100])
def test_credit_of_nothing_or_less_is_refused(session, amount):
    customer = make_customer(session)
    with pytest.raises(InvalidInput):
        credit(session, customer, amount, "pay-1")
    assert count(session, JournalEntry) == 0


# -- reading -------------------------------------------------------------------------


def test_balance_and_liability_as_of_a_past_time(session):
    customer = make_customer(session)
    other = make_customer(session)
    credit(session, customer, 1000, "a", now=NOW)
    credit(session, customer, 2000, "b", now=NOW + timedelta(days=2))
    credit(session, other, 500, "c", now=NOW + timedelta(days=1))
    day = NOW + timedelta(days=1)
    assert customer_balance(session, customer_id=customer.id, at=day) == 1000
    assert customer_balance(session, customer_id=customer.id) == 3000
    assert book_liability(session, at=day) == 1500
    assert book_liability(session) == 3500
    assert book_liability(session, at=NOW - timedelta(seconds=1)) == 0


def test_check_finds_a_tampered_cached_balance(session):
    customer = make_customer(session)
    mine, _ = accounts(session, customer)
    credit(session, customer, 1000, "a")
    assert check(session).ok
    session.execute(
        text("UPDATE ledger_account SET balance_minor = 999 WHERE id = :id"), {"id": mine.id}
    )
    session.expire_all()
    result = check(session)
    assert not result.ok
    assert result.entries == 1 and result.postings == 2
    assert any("cached balance 999" in problem for problem in result.problems)


def test_check_names_a_customer_above_the_cap(session):
    customer = make_customer(session, ref="C-9001")
    credit(session, customer, 5000, "a")
    result = check_ledger(session, cap_months=1, reference_monthly_minor=4000)
    assert not result.ok
    assert result.problems == ["customer C-9001: prepaid balance 50.00 above its cap 40.00"]


# -- properties ----------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    operations=st.lists(
        st.tuples(
            st.sampled_from(["credit", "debit", "replay"]),
            st.integers(min_value=1, max_value=40000),
        ),
        max_size=12,
    )
)
def test_random_credits_debits_and_replays_keep_the_invariants(session, operations):
    with session.begin_nested() as savepoint:
        customer = make_customer(session)
        mine, _ = accounts(session, customer)
        revenue = get_or_create_account(session, kind="revenue_plans", currency="CNY")
        expected = 0
        done: list[tuple[str, int]] = []
        for n, (op, amount) in enumerate(operations):
            if op == "credit":
                try:
                    credit(session, customer, amount, f"c{n}")
                    expected += amount
                    done.append((f"c{n}", amount))
                except CapExceeded as exc:
                    assert expected + amount > MONTHS * REFERENCE
                    assert exc.params["allowed_minor"] == MONTHS * REFERENCE - expected
            elif op == "debit":
                try:
                    post_entry(
                        session,
                        kind="plan",
                        idempotency_key=f"d{n}",
                        postings=[(mine.id, -amount), (revenue.id, amount)],
                        actor=ACTOR,
                        now=NOW,
                    )
                    expected -= amount
                except InsufficientBalance:
                    assert amount > expected
            elif done:
                key, previous = done[n % len(done)]
                credit(session, customer, previous, key)
            balance = customer_balance(session, customer_id=customer.id)
            assert balance == expected
            assert 0 <= balance <= MONTHS * REFERENCE
        assert check(session).ok
        savepoint.rollback()


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_credits_neither_drift_nor_pass_the_cap(app):
    """8 writers × 25 credits on separate committed connections."""
    database = Database(app.extensions["mvno.db"].url)
    ref = "C-CONC"
    try:
        with database.transaction() as session:
            customer = make_customer(session, ref=ref)
            customer_id = customer.id
        errors: list[BaseException] = []
        accepted = [0] * 8

        def writer(w: int) -> None:
            try:
                for i in range(25):
                    try:
                        with database.transaction() as session:
                            credit_customer(
                                session,
                                customer_id=customer_id,
                                amount_minor=700,
                                source_kind="cash_offline",
                                idempotency_key=f"conc-{w}-{i}",
                                actor=ACTOR,
                                now=NOW,
                                cap_months=MONTHS,
                                reference_monthly_minor=REFERENCE,
                                currency="CNY",
                            )
                        accepted[w] += 700
                    except CapExceeded:
                        pass
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        with database.transaction(write=False) as session:
            balance = customer_balance(session, customer_id=customer_id)
            summed = customer_balance(session, customer_id=customer_id, at=NOW)
            result = check(session)
        # 200 × 7.00 = 1400.00 is asked for; the cap of 1200.00 lets 171 through.
        assert balance == summed == sum(accepted) == 171 * 700
        assert balance <= MONTHS * REFERENCE
        assert result.ok, result.problems
    finally:
        with database.transaction() as session:
            remove_committed_ledger(session, ref)
        database.dispose()


def remove_committed_ledger(session, ref):
    """Undo what a concurrency test committed (the trigger allows deleting whole entries)."""
    session.execute(delete(Posting))
    session.execute(delete(JournalEntry))
    session.execute(delete(LedgerActivity))
    session.execute(delete(LedgerAccount))
    session.execute(delete(AuditEntry).where(col(AuditEntry.action) == "ledger.credit"))
    session.execute(delete(Customer).where(col(Customer.ref) == ref))


def test_unbalanced_entries_are_refused_by_the_database_on_postgres_only(session, is_postgres):
    """PostgreSQL's deferred trigger refuses an entry that does not sum to zero; SQLite has
    no deferred constraints, so there only post_entry (and `mvno ledger check`) guard it."""
    customer = make_customer(session)
    mine, _ = accounts(session, customer)
    entry = credit(session, customer, 100, "a")
    if not is_postgres:
        session.add(Posting(entry_id=entry.id, account_id=mine.id, amount_minor=5))
        session.flush()
        assert f"entry {entry.id} postings sum to 5, not zero" in check(session).problems
        return
    with pytest.raises(Exception, match="sum to 5"):
        with session.begin_nested():
            session.execute(text("SET CONSTRAINTS trg_posting_entry_balanced IMMEDIATE"))
            session.add(Posting(entry_id=entry.id, account_id=mine.id, amount_minor=5))
            session.flush()
