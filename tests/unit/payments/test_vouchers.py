"""Voucher batches and redemption, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete
from sqlmodel import col, func, select

from app.core.audit import Actor, AuditEntry
from app.core.db import Database
from app.core.errors import InvalidInput
from app.ledger.balances import customer_balance
from app.ledger.errors import CapExceeded
from app.ledger.models import JournalEntry, LedgerAccount, LedgerActivity, Posting
from app.ledger.movements import credit_customer
from app.payments import vouchers
from app.payments.errors import (
    VoucherAlreadyRedeemed,
    VoucherExpired,
    VoucherInvalid,
    VoucherLocked,
    VoucherVoid,
)
from app.payments.models import Voucher, VoucherAttempt, VoucherBatch
from app.subscribers.models import Customer
from tests.factories import NOW
from tests.unit.ledger.helpers import MONTHS, REFERENCE, make_customer

ACTOR = Actor.system("test")
POLICY = vouchers.VoucherPolicy(max_failures=5, lockout_minutes=30, max_failures_per_ip=20)
WRONG_PIN = "0000 0000 0000 0000"


def make_batch(session, *, count=2, value=5000, expires_at=None):
    return vouchers.create_voucher_batch(
        session,
        name="Launch 50",
        value_minor=value,
        count=count,
        expires_at=expires_at or NOW + timedelta(days=365),
        currency="CNY",
        actor=ACTOR,
        now=NOW,
    )


def redeem(session, customer_id, serial, pin, *, ip="198.51.100.1", now=NOW, policy=POLICY):
    return vouchers.redeem_voucher(
        session,
        customer_id=customer_id,
        serial=serial,
        pin=pin,
        ip=ip,
        actor=ACTOR,
        now=now,
        cap_months=MONTHS,
        reference_monthly_minor=REFERENCE,
        policy=policy,
    )


def balance(session, customer):
    return customer_balance(session, customer_id=customer.id)


def failures(session):
    return session.exec(
        select(func.count())
        .select_from(VoucherAttempt)
        .where(col(VoucherAttempt.success).is_(False))
    ).one()


def voucher(session, serial):
    return session.exec(select(Voucher).where(Voucher.serial == serial)).one()


# -- batches -------------------------------------------------------------------------


def test_batch_creates_count_vouchers_and_stores_no_pin_in_clear(session):
    batch, pairs = make_batch(session, count=3)
    assert batch.count == 3 and len(pairs) == 3
    assert len({serial for serial, _ in pairs}) == 3
    for serial, pin in pairs:
        assert serial.startswith("V")
        groups = pin.split(" ")
        assert len(groups) == 4 and all(len(g) == 4 and g.isdigit() for g in groups)
        row = voucher(session, serial)
        assert row.status == "available"
        digits = pin.replace(" ", "")
        assert digits not in row.pin_hash and pin not in row.pin_hash
        assert len(row.pin_salt) == 32 and len(row.pin_hash) == 64
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.action == "voucher.batch_create")
    ).one()
    text = repr(audit.details)
    assert all(pin.replace(" ", "") not in text.replace(" ", "") for _, pin in pairs)
    assert vouchers.list_batches(session)[0].id == batch.id


@pytest.mark.parametrize(("count", "value"), [(0, 5000), (10_001, 5000), (1, 0), (1, -100)])
def test_batch_with_a_bad_count_or_value_is_refused(session, count, value):
    with pytest.raises(InvalidInput):
        make_batch(session, count=count, value=value)


def test_batch_value_must_be_positive_in_the_database(session):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(
            VoucherBatch(
                name="x",
                value_minor=0,
                currency="CNY",
                count=1,
                expires_at=NOW,
                created_at=NOW,
            )
        )
        session.flush()


# -- redeeming -----------------------------------------------------------------------


def test_redeem_credits_the_balance_once(session):
    customer = make_customer(session)
    _, [(serial, pin), _] = make_batch(session)
    entry = redeem(session, customer.id, serial, pin)
    assert balance(session, customer) == 5000
    row = voucher(session, serial)
    assert row.status == "redeemed" and row.journal_entry_id == entry.id
    assert row.redeemed_by_customer_id == customer.id and row.redeemed_at == NOW
    assert entry.idempotency_key == f"voucher:{row.id}"
    with pytest.raises(VoucherAlreadyRedeemed):
        redeem(session, customer.id, serial, pin)
    assert balance(session, customer) == 5000


def test_serial_and_pin_are_accepted_with_spaces_dashes_and_lower_case(session):
    customer = make_customer(session)
    _, [(serial, pin), _] = make_batch(session)
    redeem(session, customer.id, f" {serial.lower()} ", pin.replace(" ", "-"))
    assert balance(session, customer) == 5000


def test_wrong_pin_and_unknown_serial_are_refused_alike_and_counted(session):
    customer = make_customer(session)
    _, [(serial, _pin), _] = make_batch(session)
    with pytest.raises(VoucherInvalid) as wrong:
        redeem(session, customer.id, serial, WRONG_PIN)
    with pytest.raises(VoucherInvalid) as unknown:
        redeem(session, customer.id, "V999999", WRONG_PIN)
    assert wrong.value.message == unknown.value.message
    assert failures(session) == 2
    assert voucher(session, serial).status == "available"
    assert balance(session, customer) == 0


def test_lockout_after_max_failures_refuses_even_the_right_pin_until_the_window_ends(session):
    customer = make_customer(session)
    _, [(serial, pin), _] = make_batch(session)
    for i in range(POLICY.max_failures):
        with pytest.raises(VoucherInvalid):
            redeem(session, customer.id, serial, WRONG_PIN, now=NOW + timedelta(seconds=i))
    with pytest.raises(VoucherLocked):
        redeem(session, customer.id, serial, pin, now=NOW + timedelta(minutes=1))
    assert voucher(session, serial).status == "available"
    later = NOW + timedelta(minutes=POLICY.lockout_minutes + 1)
    redeem(session, customer.id, serial, pin, now=later)
    assert balance(session, customer) == 5000


def test_an_address_is_locked_whichever_customers_it_acts_for(session):
    policy = vouchers.VoucherPolicy(max_failures=5, lockout_minutes=30, max_failures_per_ip=3)
    _, [(serial, pin), _] = make_batch(session)
    for _ in range(3):
        other = make_customer(session)
        with pytest.raises(VoucherInvalid):
            redeem(session, other.id, serial, WRONG_PIN, ip="203.0.113.9", policy=policy)
    fresh = make_customer(session)
    with pytest.raises(VoucherLocked):
        redeem(session, fresh.id, serial, pin, ip="203.0.113.9", policy=policy)
    redeem(session, fresh.id, serial, pin, ip="203.0.113.10", policy=policy)
    assert balance(session, fresh) == 5000


def test_expired_voucher_is_refused(session):
    customer = make_customer(session)
    _, [(serial, pin)] = make_batch(session, count=1, expires_at=NOW + timedelta(days=1))
    with pytest.raises(VoucherExpired):
        redeem(session, customer.id, serial, pin, now=NOW + timedelta(days=1))
    assert voucher(session, serial).status == "available"


def test_void_voucher_is_refused(session):
    customer = make_customer(session)
    _, [(serial, pin)] = make_batch(session, count=1)
    vouchers.void_voucher(session, serial=serial, actor=ACTOR, now=NOW)
    with pytest.raises(VoucherVoid):
        redeem(session, customer.id, serial, pin)
    assert balance(session, customer) == 0


def test_cap_refusal_leaves_the_voucher_available(session):
    customer = make_customer(session)
    cap = MONTHS * REFERENCE
    credit_customer(
        session,
        customer_id=customer.id,
        amount_minor=cap - 1000,
        source_kind="cash_offline",
        idempotency_key="fill",
        actor=ACTOR,
        now=NOW,
        cap_months=MONTHS,
        reference_monthly_minor=REFERENCE,
        currency="CNY",
    )
    _, [(serial, pin)] = make_batch(session, count=1)
    with pytest.raises(CapExceeded):
        redeem(session, customer.id, serial, pin)
    row = voucher(session, serial)
    assert row.status == "available" and row.journal_entry_id is None
    assert balance(session, customer) == cap - 1000


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_redemptions_of_one_voucher_credit_it_once(app):
    """8 threads redeem the same voucher on separate committed connections."""
    database = Database(app.extensions["mvno.db"].url)
    ref = "C-VCONC"
    try:
        with database.transaction() as session:
            customer = make_customer(session, ref=ref)
            customer_id = customer.id
            _, [(serial, pin)] = make_batch(session, count=1)
        errors: list[BaseException] = []
        outcomes: list[str] = []
        barrier = threading.Barrier(8)

        def writer() -> None:
            try:
                barrier.wait(30)
                with database.transaction() as session:
                    redeem(session, customer_id, serial, pin)
                outcomes.append("ok")
            except VoucherAlreadyRedeemed:
                outcomes.append("refused")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert sorted(outcomes) == ["ok"] + ["refused"] * 7
        with database.transaction(write=False) as session:
            assert customer_balance(session, customer_id=customer_id) == 5000
            entries = session.exec(select(func.count()).select_from(JournalEntry)).one()
            assert entries == 1
            assert voucher(session, serial).status == "redeemed"
    finally:
        with database.transaction() as session:
            remove_committed(session, ref)
        database.dispose()


def remove_committed(session, ref):
    """Undo what the concurrency test committed."""
    session.execute(delete(VoucherAttempt))
    session.execute(delete(Voucher))
    session.execute(delete(VoucherBatch))
    session.execute(delete(Posting))
    session.execute(delete(JournalEntry))
    session.execute(delete(LedgerActivity))
    session.execute(delete(LedgerAccount))
    session.execute(
        delete(AuditEntry).where(
            col(AuditEntry.action).in_(["ledger.credit", "voucher.redeem", "voucher.batch_create"])
        )
    )
    session.execute(delete(Customer).where(col(Customer.ref) == ref))
