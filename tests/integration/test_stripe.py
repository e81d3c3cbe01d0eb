"""Stripe Checkout, webhooks and refunds: the real SDK against the local server.

Webhooks are signed with Stripe's real scheme and posted to the app; the
chaos cases (duplicated, reordered, tampered, stale, unknown) must leave the
ledger exactly right.
"""

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import col, func, select

from app.core.audit import Actor
from app.core.db import Database
from app.ledger.accounts import system_balance
from app.ledger.balances import customer_balance
from app.ledger.checks import check_ledger
from app.ledger.errors import CapExceeded
from app.ledger.models import JournalEntry
from app.payments import refunds as payment_refunds
from app.payments import stripe_payments
from app.payments.errors import PaymentProviderError
from app.payments.models import Payment, Refund, StripeEvent
from app.payments.services import MoneyPolicy, check_payments, record_offline_payment
from app.payments.stripe_gateway import StripeGateway
from tests.factories import NOW
from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET, sign
from tests.unit.ledger.helpers import make_customer

POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)
CAP = 24 * 5000
ACTOR = Actor.system("test")


@pytest.fixture
def gateway(stripe_on):
    return StripeGateway(
        secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, api_base=stripe_on.base_url
    )


def checkout(db: Database, gateway, customer_id: int, amount: int) -> Payment:
    return stripe_payments.begin_checkout(
        db,
        gateway,
        customer_id=customer_id,
        amount_minor=amount,
        purpose="topup",
        actor=ACTOR,
        now=NOW,
        policy=POLICY,
        urls=lambda pid: (f"https://shop.example/ok/{pid}", f"https://shop.example/no/{pid}"),
        description="Top-up",
    )


def paid_checkout(db, gateway, client, stripe_on, customer, amount: int) -> Payment:
    """A card top-up that the customer paid and whose webhook arrived."""
    payment = checkout(db, gateway, customer.id, amount)
    paid = stripe_on.pay(payment.stripe_session_id)
    assert (
        post_event(client, stripe_on.event("checkout.session.completed", paid)).status_code == 200
    )
    return payment


def staff_refund(session, customer, amount: int, note: str = "customer asked") -> list[Refund]:
    refunds = payment_refunds.request_refund(
        session,
        customer_id=customer.id,
        amount_minor=amount,
        reason="staff",
        note=note,
        actor=ACTOR,
        now=NOW,
        currency="CNY",
    )
    session.commit()
    return refunds


def post_event(client, body: bytes, *, signature: str | None = None):
    return client.post(
        "/webhooks/stripe",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": signature if signature is not None else sign(body),
        },
    )


def balance(session, customer) -> int:
    return customer_balance(session, customer_id=customer.id)


def payable(session) -> int:
    return system_balance(session, kind="refunds_payable", currency="CNY")


def entries(session) -> int:
    return session.exec(select(func.count()).select_from(JournalEntry)).one()


@pytest.fixture
def customer(session):
    customer = make_customer(session)
    session.commit()
    return customer


def test_checkout_creates_our_payment_first_and_uses_its_id_as_idempotency_key(
    db, session, gateway, stripe_on, customer
):
    payment = checkout(db, gateway, customer.id, 5000)
    assert payment.status == "pending"
    assert payment.stripe_session_id.startswith("cs_test_")
    assert payment.checkout_url.startswith(stripe_on.base_url)
    [call] = stripe_on.calls("POST", "/v1/checkout/sessions")
    assert call["client_reference_id"] == str(payment.id)
    assert call["metadata"]["payment_id"] == str(payment.id)
    assert call["line_items"]["0"]["price_data"] == {
        "currency": "cny",
        "unit_amount": "5000",
        "product_data": {"name": "Top-up"},
    }
    assert "mvno-payment-" + str(payment.id) in stripe_on.idempotent
    # No money yet: only the webhook books it.
    assert balance(session, customer) == 0


def test_checkout_above_the_cap_is_refused_before_stripe_is_called(
    db, session, gateway, stripe_on, customer
):
    with pytest.raises(CapExceeded) as refused:
        checkout(db, gateway, customer.id, CAP + 1)
    assert "1200.00" in refused.value.message
    assert stripe_on.requests == []
    assert session.exec(select(func.count()).select_from(Payment)).one() == 0


def test_stripe_down_leaves_a_created_payment_that_can_be_opened_again(
    db, session, gateway, stripe_on, customer
):
    stripe_on.fail_next = 3  # the SDK tries three times (two retries)
    with pytest.raises(PaymentProviderError):
        checkout(db, gateway, customer.id, 5000)
    payment = session.exec(select(Payment)).one()
    assert payment.status == "created" and payment.stripe_session_id is None
    again = stripe_payments.open_checkout(
        db,
        gateway,
        payment_id=payment.id,
        success_url="https://shop.example/ok",
        cancel_url="https://shop.example/no",
        description="Top-up",
    )
    assert again.status == "pending" and again.stripe_session_id


def test_crash_after_stripe_call_before_commit_gets_the_same_session(
    db, session, gateway, stripe_on, customer, monkeypatch
):
    """The session is created at Stripe, then we die before storing it; a retry reuses it."""
    payment = stripe_payments.create_stripe_payment(
        session,
        customer_id=customer.id,
        amount_minor=5000,
        purpose="topup",
        actor=ACTOR,
        now=NOW,
        policy=POLICY,
    )
    session.commit()
    real_transaction = Database.transaction
    calls = {"n": 0}

    def crash_on_store(self, *, write=True):
        if write:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("worker killed")
        return real_transaction(self, write=write)

    monkeypatch.setattr(Database, "transaction", crash_on_store)
    kwargs = dict(success_url="https://s/ok", cancel_url="https://s/no", description="Top-up")
    with pytest.raises(RuntimeError):
        stripe_payments.open_checkout(db, gateway, payment_id=payment.id, **kwargs)
    opened = stripe_payments.open_checkout(db, gateway, payment_id=payment.id, **kwargs)
    assert len(stripe_on.calls("POST", "/v1/checkout/sessions")) == 2
    assert len(stripe_on.sessions) == 1  # Stripe replayed the first answer
    assert opened.stripe_session_id == next(iter(stripe_on.sessions))


def test_paid_webhook_credits_once_even_when_delivered_again(
    db, session, client, gateway, stripe_on, customer
):
    payment = checkout(db, gateway, customer.id, 5000)
    paid = stripe_on.pay(payment.stripe_session_id)
    body = stripe_on.event("checkout.session.completed", paid)
    first = post_event(client, body)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json()["outcome"] == f"payment {payment.id} succeeded"
    again = post_event(client, body)
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    # The same fact in a new event (Stripe may send both) is also harmless.
    other = post_event(client, stripe_on.event("checkout.session.completed", paid))
    assert other.status_code == 200
    session.expire_all()
    assert balance(session, customer) == 5000
    stored = session.get(Payment, payment.id)
    assert stored.status == "succeeded" and stored.credited_minor == 5000
    assert stored.stripe_payment_intent_id == paid["payment_intent"]
    assert session.exec(select(func.count()).select_from(StripeEvent)).one() == 2
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok


def test_paid_webhook_before_we_stored_the_session_id_still_finds_the_payment(
    db, session, client, gateway, stripe_on, customer
):
    payment = stripe_payments.create_stripe_payment(
        session,
        customer_id=customer.id,
        amount_minor=3000,
        purpose="topup",
        actor=ACTOR,
        now=NOW,
        policy=POLICY,
    )
    session.commit()
    created = gateway.create_checkout_session(
        payment_id=payment.id,
        amount_minor=3000,
        currency="CNY",
        description="Top-up",
        customer_ref=customer.ref,
        customer_email=None,
        success_url="https://s/ok",
        cancel_url="https://s/no",
    )
    paid = stripe_on.pay(created.id)
    assert (
        post_event(client, stripe_on.event("checkout.session.completed", paid)).status_code == 200
    )
    session.expire_all()
    assert session.get(Payment, payment.id).status == "succeeded"
    assert balance(session, customer) == 3000


def test_expiry_after_payment_does_not_undo_it_and_payment_after_expiry_still_counts(
    db, session, client, gateway, stripe_on, customer
):
    first = checkout(db, gateway, customer.id, 1000)
    second = checkout(db, gateway, customer.id, 2000)
    paid_first = stripe_on.pay(first.stripe_session_id)
    post_event(client, stripe_on.event("checkout.session.completed", paid_first))
    post_event(client, stripe_on.event("checkout.session.expired", paid_first))
    # Reordered: the expiry of the second arrives before its (late) payment.
    open_second = dict(stripe_on.sessions[second.stripe_session_id], status="expired")
    post_event(client, stripe_on.event("checkout.session.expired", open_second))
    session.expire_all()
    assert session.get(Payment, second.id).status == "expired"
    paid_second = stripe_on.pay(second.stripe_session_id)
    post_event(client, stripe_on.event("checkout.session.completed", paid_second))
    session.expire_all()
    assert session.get(Payment, first.id).status == "succeeded"
    assert session.get(Payment, second.id).status == "succeeded"
    assert balance(session, customer) == 3000


def test_unpaid_completion_waits_for_the_async_result(
    db, session, client, gateway, stripe_on, customer
):
    payment = checkout(db, gateway, customer.id, 1500)
    unpaid = dict(stripe_on.sessions[payment.stripe_session_id], status="complete")
    response = post_event(client, stripe_on.event("checkout.session.completed", unpaid))
    assert response.get_json()["outcome"] == "waiting for payment"
    failed = post_event(client, stripe_on.event("checkout.session.async_payment_failed", unpaid))
    assert failed.get_json()["outcome"] == f"payment {payment.id} failed"
    session.expire_all()
    assert balance(session, customer) == 0


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "t=1,v1=deadbeef",
        "garbage",
        sign(b"something else"),
        "STALE",
        "WRONG_SECRET",
    ],
    ids=["missing", "bad-mac", "garbage", "other-body", "stale", "wrong-secret"],
)
def test_tampered_or_stale_events_are_refused_and_change_nothing(
    db, session, client, gateway, stripe_on, customer, signature
):
    payment = checkout(db, gateway, customer.id, 5000)
    body = stripe_on.event("checkout.session.completed", stripe_on.pay(payment.stripe_session_id))
    if signature == "STALE":
        signature = sign(body, timestamp=int(time.time()) - 301)
    elif signature == "WRONG_SECRET":
        signature = sign(body, secret="whsec_other")
    response = post_event(client, body, signature=signature)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "webhook_invalid"
    session.expire_all()
    assert balance(session, customer) == 0
    assert session.exec(select(func.count()).select_from(StripeEvent)).one() == 0


def test_a_tampered_amount_fails_the_signature(db, session, client, gateway, stripe_on, customer):
    payment = checkout(db, gateway, customer.id, 5000)
    body = stripe_on.event("checkout.session.completed", stripe_on.pay(payment.stripe_session_id))
    signature = sign(body)
    tampered = body.replace(b'"amount_total": 5000', b'"amount_total": 9999')
    assert tampered != body
    assert post_event(client, tampered, signature=signature).status_code == 400
    session.expire_all()
    assert balance(session, customer) == 0


def test_unknown_types_and_unknown_objects_answer_200_and_change_nothing(
    session, client, stripe_on, customer
):
    before = entries(session)
    unknown = post_event(client, stripe_on.event("customer.created", {"id": "cus_1"}))
    assert unknown.status_code == 200 and unknown.get_json()["outcome"] == "ignored"
    stranger = {"id": "cs_test_unknown", "payment_status": "paid", "metadata": {}}
    orphan = post_event(client, stripe_on.event("checkout.session.completed", stranger))
    assert orphan.status_code == 200 and orphan.get_json()["outcome"] == "no matching payment"
    for body in (b"not json", b"[]", json.dumps({"id": "evt_x", "type": "x"}).encode()):
        assert post_event(client, body).status_code == 400
    session.expire_all()
    assert entries(session) == before


def test_webhook_is_off_when_stripe_is_not_configured(client, stripe_server):
    body = stripe_server.event("checkout.session.completed", {"id": "cs_1"})
    assert post_event(client, body).status_code == 404


def test_money_above_the_cap_is_credited_up_to_it_and_the_excess_refunded(
    db, session, client, gateway, stripe_on, customer
):
    payment = checkout(db, gateway, customer.id, 100_000)
    # Meanwhile the balance grew (a voucher, another payment): 30,000 of room is left.
    record_offline_payment(
        session,
        customer_id=customer.id,
        amount_minor=90_000,
        method="cash",
        reference="R-1",
        actor=ACTOR,
        now=NOW,
        policy=POLICY,
    )
    session.commit()
    paid = stripe_on.pay(payment.stripe_session_id)
    assert (
        post_event(client, stripe_on.event("checkout.session.completed", paid)).status_code == 200
    )
    session.expire_all()
    assert balance(session, customer) == CAP
    stored = session.get(Payment, payment.id)
    assert (stored.amount_minor, stored.credited_minor) == (100_000, 30_000)
    [refund] = session.exec(select(Refund)).all()
    assert (refund.reason, refund.status, refund.amount_minor) == ("cap_excess", "pending", 70_000)
    assert payable(session) == 70_000

    sent = payment_refunds.send_pending_refunds(db, gateway, now=NOW)
    assert sent == 1
    [call] = stripe_on.calls("POST", "/v1/refunds")
    assert call == {
        "payment_intent": paid["payment_intent"],
        "amount": "70000",
        "metadata": {"refund_id": str(refund.id)},
    }
    session.expire_all()
    refund = session.get(Refund, refund.id)
    assert refund.status == "succeeded" and refund.stripe_refund_id.startswith("re_test_")
    assert payable(session) == 0
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok


def test_crash_between_refund_call_and_commit_does_not_refund_twice(
    db, session, client, gateway, stripe_on, customer, monkeypatch
):
    paid_checkout(db, gateway, client, stripe_on, customer, 10_000)
    [refund] = staff_refund(session, customer, 4_000, "customer asked")
    real_apply = payment_refunds.apply_remote_refund

    def die(*args, **kwargs):
        raise RuntimeError("worker killed after Stripe answered")

    monkeypatch.setattr(payment_refunds, "apply_remote_refund", die)
    with pytest.raises(RuntimeError):
        payment_refunds.send_refund(db, gateway, refund_id=refund.id, now=NOW)
    monkeypatch.setattr(payment_refunds, "apply_remote_refund", real_apply)
    session.expire_all()
    assert session.get(Refund, refund.id).status == "pending"
    payment_refunds.send_refund(db, gateway, refund_id=refund.id, now=NOW)
    assert len(stripe_on.calls("POST", "/v1/refunds")) == 2
    assert len(stripe_on.refunds) == 1  # one refund at Stripe
    session.expire_all()
    assert session.get(Refund, refund.id).status == "succeeded"
    assert balance(session, customer) == 6_000
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok


def test_pending_refund_is_settled_by_webhook_even_out_of_order(
    db, session, client, gateway, stripe_on, customer
):
    paid_checkout(db, gateway, client, stripe_on, customer, 10_000)
    [refund] = staff_refund(session, customer, 2_500, "double top-up")
    stripe_on.refund_status = "pending"
    payment_refunds.send_refund(db, gateway, refund_id=refund.id, now=NOW)
    session.expire_all()
    assert session.get(Refund, refund.id).status == "processing"
    remote_id = next(iter(stripe_on.refunds))
    succeeded = stripe_on.set_refund(remote_id, "succeeded")
    pending = dict(succeeded, status="pending")
    # The success arrives first, the older "pending" after it: the refund stays done.
    post_event(client, stripe_on.event("refund.updated", succeeded))
    post_event(client, stripe_on.event("refund.updated", pending))
    session.expire_all()
    assert session.get(Refund, refund.id).status == "succeeded"
    assert payable(session) == 0
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok


def test_failed_refund_stays_payable_until_retried_or_paid_by_hand(
    db, session, client, gateway, stripe_on, customer
):
    paid_checkout(db, gateway, client, stripe_on, customer, 10_000)
    [refund] = staff_refund(session, customer, 10_000, "closing account")
    stripe_on.refund_status = "failed"
    stripe_on.refund_failure_reason = "expired_or_canceled_card"
    payment_refunds.send_refund(db, gateway, refund_id=refund.id, now=NOW)
    session.expire_all()
    failed = session.get(Refund, refund.id)
    assert failed.status == "failed" and failed.last_error == "expired_or_canceled_card"
    assert payable(session) == 10_000  # still owed to the customer

    payment_refunds.retry_refund(session, refund_id=refund.id, actor=ACTOR, now=NOW)
    session.commit()
    stripe_on.refund_status = "succeeded"
    payment_refunds.send_refund(db, gateway, refund_id=refund.id, now=NOW)
    keys = [k for k in stripe_on.idempotent if k.startswith(f"mvno-refund-{refund.id}-")]
    assert sorted(keys) == [f"mvno-refund-{refund.id}-1", f"mvno-refund-{refund.id}-2"]
    session.expire_all()
    assert session.get(Refund, refund.id).status == "succeeded"
    assert payable(session) == 0
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok


def test_lost_webhook_is_caught_up_by_polling(db, session, client, gateway, stripe_on, customer):
    paid_checkout(db, gateway, client, stripe_on, customer, 5_000)
    [refund] = staff_refund(session, customer, 5_000, "n")
    stripe_on.refund_status = "pending"
    payment_refunds.send_refund(db, gateway, refund_id=refund.id, now=NOW)
    stripe_on.set_refund(next(iter(stripe_on.refunds)), "succeeded")
    assert payment_refunds.sync_processing_refunds(db, gateway, now=NOW) == 1
    session.expire_all()
    assert session.get(Refund, refund.id).status == "succeeded"


def test_staff_refund_goes_back_to_card_payments_newest_first_then_by_hand(
    db, session, client, gateway, stripe_on, customer
):
    first = checkout(db, gateway, customer.id, 3_000)
    second = checkout(db, gateway, customer.id, 2_000)
    for payment in (first, second):
        paid = stripe_on.pay(payment.stripe_session_id)
        post_event(client, stripe_on.event("checkout.session.completed", paid))
    record_offline_payment(
        session,
        customer_id=customer.id,
        amount_minor=1_000,
        method="bank_transfer",
        reference="BANK-9",
        actor=ACTOR,
        now=NOW,
        policy=POLICY,
    )
    refunds = payment_refunds.request_refund(
        session,
        customer_id=customer.id,
        amount_minor=5_500,
        reason="staff",
        note="leaving",
        actor=ACTOR,
        now=NOW,
        currency="CNY",
    )
    assert [(r.payment_id, r.amount_minor) for r in refunds] == [
        (second.id, 2_000),
        (first.id, 3_000),
        (None, 500),
    ]
    assert balance(session, customer) == 500
    by_hand = refunds[-1]
    payment_refunds.mark_refund_paid_offline(
        session, refund_id=by_hand.id, note="cash at the counter", actor=ACTOR, now=NOW
    )
    assert by_hand.status == "paid_offline"
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok
    assert (
        session.exec(
            select(func.count()).select_from(Refund).where(col(Refund.status) == "pending")
        ).one()
        == 2
    )


def test_the_scheduler_job_sends_queued_refunds(
    app, db, session, client, gateway, stripe_on, customer
):
    from app.jobs import JOBS, run_job

    paid_checkout(db, gateway, client, stripe_on, customer, 4_000)
    [refund] = staff_refund(session, customer, 1_000, "n")
    job = next(job for job in JOBS if job.id == "send_refunds")
    settings = app.extensions["mvno.settings"]
    assert run_job(db, job, now=NOW, settings=settings) == {"sent": 1, "checked": 0}
    assert run_job(db, job, now=NOW, settings=settings) == {"sent": 0, "checked": 0}
    session.expire_all()
    assert session.get(Refund, refund.id).status == "succeeded"


def test_ledger_check_sees_refunds_payable_out_of_step_with_the_refunds(
    app, db, session, client, gateway, stripe_on, customer
):
    paid_checkout(db, gateway, client, stripe_on, customer, 4_000)
    [refund] = staff_refund(session, customer, 1_000, "n")
    assert check_payments(session) == []
    payment_refunds.send_refund(db, gateway, refund_id=refund.id, now=NOW)
    session.expire_all()
    assert check_payments(session) == []
    # Someone edits a row by hand: the refund looks unpaid again.
    session.get(Refund, refund.id).status = "failed"
    session.flush()
    assert check_payments(session) == ["refunds payable CNY is 0 but unpaid refunds sum to 1000"]
    result = app.test_cli_runner().invoke(args=["ledger", "check", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        "refunds payable CNY is 0 but unpaid refunds sum to 1000"
    ]
