"""The finance console: customer ledgers, adjustments, payments, refunds, vouchers."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlmodel import col, func, select

from app.core.audit import Actor, AuditEntry
from app.ledger.balances import customer_balance
from app.ledger.models import JournalEntry
from app.ledger.movements import adjust_balance
from app.payments import refunds as payment_refunds
from app.payments import stripe_payments, vouchers
from app.payments.models import Payment, Refund, Voucher, VoucherAttempt
from app.payments.services import MoneyPolicy
from app.subscribers import services as subscribers
from tests.conftest import csrf_token
from tests.factories import NOW, login_staff, make_staff

REF = "C-0001"
PAGE = f"/console/customers/{REF}"
ACTOR = Actor.system("test")
POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)
# A customer without lines may prepay 24 × the reference fee of 50.00.
CAP = 24 * 5000
TOKEN_RE = re.compile(r'name="adjust-token"[^>]*value="([^"]+)"')


@pytest.fixture
def customer(session):
    found = subscribers.create_customer(
        session, ref=REF, name="Li Lei", email="li@example.com", now=NOW
    )
    session.flush()
    return found


def sign_in(client, session, role):
    email = f"{role}@example.com"
    make_staff(session, role=role, email=email)
    login_staff(client, email)
    return client


@pytest.fixture
def finance(client, session):
    return sign_in(client, session, "finance")


@pytest.fixture
def care(client, session):
    return sign_in(client, session, "care")


@pytest.fixture
def auditor(client, session):
    return sign_in(client, session, "auditor")


def balance(session, customer) -> int:
    session.expire_all()
    return customer_balance(session, customer_id=customer.id)


def give(session, customer, amount: int, key: str = "test:give") -> None:
    adjust_balance(
        session,
        customer_id=customer.id,
        amount_minor=amount,
        reason="opening balance",
        idempotency_key=key,
        actor=ACTOR,
        now=NOW,
        currency="CNY",
        **POLICY.cap_kwargs(),
    )
    session.flush()


def adjust(client, amount: str, reason: str = "goodwill", token: str | None = None):
    page = client.get(PAGE).get_data(as_text=True)
    match = TOKEN_RE.search(page)
    assert match, "no adjustment form on the page"
    return client.post(
        f"{PAGE}/adjust",
        data={
            "adjust-amount": amount,
            "adjust-reason": reason,
            "adjust-token": token or match.group(1),
            "csrf_token": csrf_token(client, PAGE),
        },
    )


FORM_TOKENS_RE = re.compile(r'name="([a-z]+-token)"[^>]*value="([^"]+)"')


def post(client, path: str, data: dict[str, str], page: str = PAGE):
    """Post a form as the browser would: with the page's CSRF and double-submit tokens."""
    tokens = dict(FORM_TOKENS_RE.findall(client.get(page).get_data(as_text=True)))
    return client.post(path, data={**tokens, **data, "csrf_token": csrf_token(client, page)})


def make_batch(session, count: int = 2, value: int = 5000):
    batch, pairs = vouchers.create_voucher_batch(
        session,
        name="Launch",
        value_minor=value,
        count=count,
        expires_at=NOW + timedelta(days=3650),
        currency="CNY",
        actor=ACTOR,
        now=NOW,
    )
    session.flush()
    return batch, pairs


# -- roles --------------------------------------------------------------------------------


def test_finance_adjusts_with_a_reason_and_it_is_audited(finance, session, customer):
    response = adjust(finance, "12.50", reason="compensation for outage")
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    assert balance(session, customer) == 1250
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "ledger.adjust")).one()
    assert audit.details["reason"] == "compensation for outage"
    page = finance.get(PAGE).get_data(as_text=True)
    assert "compensation for outage" in page
    assert 'data-running="1250"' in page


def test_care_views_but_cannot_adjust(care, session, customer):
    page = care.get(PAGE)
    assert page.status_code == 200
    assert 'name="adjust-amount"' not in page.get_data(as_text=True)
    assert 'name="voucher-pin"' in page.get_data(as_text=True)
    response = post(care, f"{PAGE}/adjust", {"adjust-amount": "5.00", "adjust-reason": "x"})
    assert response.status_code == 403
    assert post(care, f"{PAGE}/payments", {"payment-amount": "5.00"}).status_code == 403
    assert care.get("/console/refunds").status_code == 403
    assert balance(session, customer) == 0


def test_auditor_is_read_only(auditor, session, customer):
    give(session, customer, 1000)
    page = auditor.get(PAGE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'name="adjust-amount"' not in text and 'name="voucher-pin"' not in text
    for path, data in [
        (f"{PAGE}/adjust", {"adjust-amount": "5.00", "adjust-reason": "x"}),
        (f"{PAGE}/payments", {"payment-amount": "5.00"}),
        (f"{PAGE}/refunds", {"refund-amount": "5.00", "refund-note": "x"}),
        (f"{PAGE}/vouchers", {"voucher-serial": "V1", "voucher-pin": "1"}),
        ("/console/vouchers", {"name": "x"}),
    ]:
        assert post(auditor, path, data).status_code == 403, path
    assert auditor.get("/console/payments").status_code == 200
    assert balance(session, customer) == 1000


# -- adjustments --------------------------------------------------------------------------


def test_adjustment_without_a_reason_is_refused_beside_the_field(finance, session, customer):
    response = adjust(finance, "5.00", reason="  ")
    assert response.status_code == 422
    assert 'id="adjust-reason"' in response.get_data(as_text=True)
    assert "reason is required" in response.get_data(as_text=True)
    assert balance(session, customer) == 0
    assert session.exec(select(func.count()).select_from(JournalEntry)).one() == 0


@pytest.mark.parametrize("amount", ["abc", "1.005", "0", "99999999999.00"])
def test_bad_adjustment_amounts_are_refused(finance, session, customer, amount):
    response = adjust(finance, amount)
    assert response.status_code == 422
    assert balance(session, customer) == 0


def test_negative_adjustment_below_zero_is_refused(finance, session, customer):
    give(session, customer, 500)
    response = adjust(finance, "-10.00", reason="wrong top-up")
    assert response.status_code == 422
    assert "The balance 5.00 is less than 10.00." in response.get_data(as_text=True)
    assert balance(session, customer) == 500
    assert adjust(finance, "-5.00", reason="wrong top-up").status_code == 302
    assert balance(session, customer) == 0


def test_cap_refusal_names_the_largest_amount_allowed(finance, session, customer):
    give(session, customer, 20_000)
    response = adjust(finance, "1100.00")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "the largest amount allowed now is 1000.00" in text
    assert balance(session, customer) == 20_000


def test_double_submit_with_the_same_token_posts_once(finance, session, customer):
    token = TOKEN_RE.search(finance.get(PAGE).get_data(as_text=True)).group(1)
    assert adjust(finance, "7.00", token=token).status_code == 302
    assert adjust(finance, "7.00", token=token).status_code == 302
    assert balance(session, customer) == 700
    keys = session.exec(
        select(JournalEntry.idempotency_key).where(
            col(JournalEntry.idempotency_key).startswith("adjust:")
        )
    ).all()
    assert keys == [f"adjust:{token}"]


def test_each_page_view_gets_a_fresh_token(finance, customer):
    first = TOKEN_RE.search(finance.get(PAGE).get_data(as_text=True)).group(1)
    second = TOKEN_RE.search(finance.get(PAGE).get_data(as_text=True)).group(1)
    assert first != second and len(first) >= 16


def test_history_is_paged_newest_first_with_running_balance(finance, session, customer):
    for n in range(55):
        give(session, customer, 100, key=f"test:many:{n}")
    first = finance.get(PAGE).get_data(as_text=True)
    assert first.count("data-entry=") == 50
    assert re.findall(r'data-running="(\d+)"', first)[:2] == ["5500", "5400"]
    second = finance.get(f"{PAGE}?page=2").get_data(as_text=True)
    assert second.count("data-entry=") == 5
    assert re.findall(r'data-running="(\d+)"', second)[-1] == "100"
    assert finance.get(f"{PAGE}?page=99999999999999999999").status_code == 200


# -- payments -----------------------------------------------------------------------------


def test_offline_payment_is_recorded_once(finance, session, customer):
    data = {
        "payment-method": "bank_transfer",
        "payment-amount": "50.00",
        "payment-reference": "ICBC-778",
        "payment-memo": "March",
    }
    assert post(finance, f"{PAGE}/payments", data).status_code == 302
    assert post(finance, f"{PAGE}/payments", data).status_code == 302
    assert balance(session, customer) == 5000
    [payment] = session.exec(select(Payment)).all()
    assert (payment.method, payment.reference, payment.status) == (
        "bank_transfer",
        "ICBC-778",
        "succeeded",
    )
    listing = finance.get("/console/payments?method=bank_transfer").get_data(as_text=True)
    assert "ICBC-778" in listing and "bank transfer" in listing and REF in listing
    assert "ICBC-778" not in finance.get("/console/payments?method=cash").get_data(as_text=True)


def test_offline_payment_reference_reused_with_another_amount_is_refused(
    finance, session, customer
):
    data = {"payment-method": "cash", "payment-amount": "50.00", "payment-reference": "R-1"}
    assert post(finance, f"{PAGE}/payments", data).status_code == 302
    response = post(finance, f"{PAGE}/payments", {**data, "payment-amount": "60.00"})
    assert response.status_code == 422
    assert "already recorded" in response.get_data(as_text=True)
    assert balance(session, customer) == 5000


def test_offline_payment_above_the_cap_is_refused(finance, session, customer):
    data = {"payment-method": "cash", "payment-amount": "1300.00", "payment-reference": "R-2"}
    response = post(finance, f"{PAGE}/payments", data)
    assert response.status_code == 422
    assert "1200.00" in response.get_data(as_text=True)
    assert session.exec(select(Payment)).all() == []


# -- refunds ------------------------------------------------------------------------------


def test_staff_refund_lowers_the_balance_and_joins_the_queue(finance, session, customer):
    give(session, customer, 10_000)
    data = {"refund-amount": "30.00", "refund-note": "moving abroad"}
    assert post(finance, f"{PAGE}/refunds", data).status_code == 302
    assert balance(session, customer) == 7_000
    [refund] = session.exec(select(Refund)).all()
    assert (refund.reason, refund.status, refund.amount_minor, refund.payment_id) == (
        "staff",
        "pending",
        3_000,
        None,
    )
    queue = finance.get("/console/refunds").get_data(as_text=True)
    assert f'data-refund="{refund.id}"' in queue and "Paid by hand" in queue


def test_staff_refund_submitted_twice_refunds_once(finance, session, customer):
    give(session, customer, 10_000)
    html = finance.get(PAGE).get_data(as_text=True)
    token = dict(FORM_TOKENS_RE.findall(html))["refund-token"]
    data = {"refund-amount": "30.00", "refund-note": "moving abroad", "refund-token": token}
    assert post(finance, f"{PAGE}/refunds", data).status_code == 302
    assert post(finance, f"{PAGE}/refunds", data).status_code == 302
    assert balance(session, customer) == 7_000
    assert len(session.exec(select(Refund)).all()) == 1


def test_staff_refund_needs_a_note_and_the_balance(finance, session, customer):
    give(session, customer, 1_000)
    response = post(finance, f"{PAGE}/refunds", {"refund-amount": "5.00", "refund-note": ""})
    assert response.status_code == 422
    response = post(finance, f"{PAGE}/refunds", {"refund-amount": "50.00", "refund-note": "x"})
    assert response.status_code == 422
    assert "less than" in response.get_data(as_text=True)
    assert balance(session, customer) == 1_000
    assert session.exec(select(Refund)).all() == []


def test_refund_paid_by_hand(finance, session, customer):
    give(session, customer, 10_000)
    [refund] = payment_refunds.request_refund(
        session,
        customer_id=customer.id,
        amount_minor=2_000,
        reason="staff",
        note="closing",
        actor=ACTOR,
        now=NOW,
        currency="CNY",
    )
    session.flush()
    path = f"/console/refunds/{refund.id}/paid"
    refused = post(finance, path, {"note": ""}, page="/console/refunds")
    assert refused.status_code == 302
    session.expire_all()
    assert session.get(Refund, refund.id).status == "pending"
    assert "note is required" in finance.get("/console/refunds").get_data(as_text=True)
    done = post(finance, path, {"note": "cash at the shop"}, page="/console/refunds")
    assert done.status_code == 302
    session.expire_all()
    stored = session.get(Refund, refund.id)
    assert stored.status == "paid_offline" and "cash at the shop" in stored.note
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "refund.paid_offline")).one()
    assert f'data-refund="{refund.id}"' not in finance.get("/console/refunds").get_data(
        as_text=True
    )
    assert "paid by hand" in finance.get("/console/refunds?status=paid_offline").get_data(
        as_text=True
    )


def test_card_refund_cannot_be_sent_without_stripe(finance, session, customer):
    payment = Payment(
        customer_id=customer.id,
        method="stripe",
        status="succeeded",
        amount_minor=5_000,
        credited_minor=5_000,
        currency="CNY",
        stripe_payment_intent_id="pi_test_1",
        created_at=NOW,
    )
    session.add(payment)
    give(session, customer, 5_000)
    [refund] = payment_refunds.request_refund(
        session,
        customer_id=customer.id,
        amount_minor=1_000,
        reason="staff",
        note="x",
        actor=ACTOR,
        now=NOW,
        currency="CNY",
    )
    session.flush()
    assert refund.payment_id == payment.id
    queue = finance.get("/console/refunds").get_data(as_text=True)
    assert "Cannot be sent: Stripe is not configured." in queue
    response = post(finance, f"/console/refunds/{refund.id}/send", {}, page="/console/refunds")
    assert response.status_code == 302
    assert "Stripe is not configured" in finance.get("/console/refunds").get_data(as_text=True)
    session.expire_all()
    assert session.get(Refund, refund.id).status == "pending"
    # A pending card refund may be on its way; it is not paid by hand.
    refused = post(
        finance, f"/console/refunds/{refund.id}/paid", {"note": "x"}, page="/console/refunds"
    )
    assert refused.status_code == 302
    session.expire_all()
    assert session.get(Refund, refund.id).status == "pending"


def test_send_now_refunds_a_card_payment_at_stripe(finance, session, db, customer, stripe_on):
    from app.payments.stripe_gateway import StripeGateway
    from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET, sign

    gateway = StripeGateway(
        secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, api_base=stripe_on.base_url
    )
    session.commit()
    payment = stripe_payments.begin_checkout(
        db,
        gateway,
        customer_id=customer.id,
        amount_minor=5_000,
        purpose="topup",
        actor=ACTOR,
        now=NOW,
        policy=POLICY,
        urls=lambda pid: (f"https://shop.example/ok/{pid}", f"https://shop.example/no/{pid}"),
        description="Top-up",
    )
    body = stripe_on.event("checkout.session.completed", stripe_on.pay(payment.stripe_session_id))
    webhook = finance.post(
        "/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
    )
    assert webhook.status_code == 200
    data = {"refund-amount": "20.00", "refund-note": "changed plan"}
    assert post(finance, f"{PAGE}/refunds", data).status_code == 302
    session.expire_all()
    [refund] = session.exec(select(Refund)).all()
    assert refund.payment_id == payment.id
    assert "Send now" in finance.get("/console/refunds").get_data(as_text=True)
    sent = post(finance, f"/console/refunds/{refund.id}/send", {}, page="/console/refunds")
    assert sent.status_code == 302
    session.expire_all()
    stored = session.get(Refund, refund.id)
    assert stored.status == "succeeded" and stored.stripe_refund_id
    assert len(stripe_on.calls("POST", "/v1/refunds")) == 1
    assert balance(session, customer) == 3_000


def test_retry_only_a_failed_card_refund(finance, session, customer):
    give(session, customer, 5_000)
    [refund] = payment_refunds.request_refund(
        session,
        customer_id=customer.id,
        amount_minor=1_000,
        reason="staff",
        note="x",
        actor=ACTOR,
        now=NOW,
        currency="CNY",
    )
    session.flush()
    response = post(finance, f"/console/refunds/{refund.id}/retry", {}, page="/console/refunds")
    assert response.status_code == 302
    assert "Only a failed card refund" in finance.get("/console/refunds").get_data(as_text=True)


# -- vouchers -----------------------------------------------------------------------------


def batch_form(fmt: str) -> dict[str, str]:
    return {
        "name": "Spring",
        "value": "50.00",
        "count": "3",
        "expires_at": "2099-12-31",
        "format": fmt,
    }


def assert_no_pin_stored(session, pins: list[str]) -> None:
    session.expire_all()
    stored = json.dumps(
        [[v.serial, v.pin_salt, v.pin_hash] for v in session.exec(select(Voucher))]
        + [a.details for a in session.exec(select(AuditEntry))]
    )
    for pin in pins:
        assert pin.replace(" ", "") not in stored.replace(" ", "")


def test_voucher_batch_shows_the_pins_once(finance, session):
    response = post(finance, "/console/vouchers", batch_form("html"), page="/console/vouchers")
    assert response.status_code == 200, response.get_data(as_text=True)[:3000]
    text = response.get_data(as_text=True)
    pins = re.findall(r"data-pin>([\d ]+)<", text)
    assert len(pins) == 3 and all(len(p.replace(" ", "")) == 16 for p in pins)
    assert "only time these PINs are shown" in text
    assert_no_pin_stored(session, pins)
    listing = finance.get("/console/vouchers").get_data(as_text=True)
    assert "Spring" in listing and 'data-count="available">3<' in listing
    assert not any(pin in listing for pin in pins)


def test_voucher_batch_csv_download(finance, session):
    response = post(finance, "/console/vouchers", batch_form("csv"), page="/console/vouchers")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "serial,pin" and len(lines) == 4
    serials = [line.split(",")[0] for line in lines[1:]]
    assert session.exec(select(func.count()).select_from(Voucher)).one() == 3
    assert sorted(serials) == sorted(session.exec(select(Voucher.serial)).all())
    assert_no_pin_stored(session, [line.split(",")[1] for line in lines[1:]])


@pytest.mark.parametrize(
    ("field", "value"), [("count", "10001"), ("count", "0"), ("value", "-1"), ("name", "")]
)
def test_bad_voucher_batch_is_refused(finance, session, field, value):
    data = {**batch_form("html"), field: value}
    response = post(finance, "/console/vouchers", data, page="/console/vouchers")
    assert response.status_code == 422
    assert session.exec(select(func.count()).select_from(Voucher)).one() == 0


def test_care_redeems_a_voucher_for_the_customer(care, session, customer):
    _batch, [(serial, pin), _other] = make_batch(session)
    data = {"voucher-serial": serial, "voucher-pin": pin}
    assert post(care, f"{PAGE}/vouchers", data).status_code == 302
    assert balance(session, customer) == 5000
    assert session.exec(select(Voucher.status).where(Voucher.serial == serial)).one() == "redeemed"
    again = post(care, f"{PAGE}/vouchers", data)
    assert again.status_code == 422
    assert "already been used" in again.get_data(as_text=True)
    assert balance(session, customer) == 5000


def test_wrong_pin_is_counted_towards_the_lockout(care, session, customer):
    _batch, [(serial, pin), _other] = make_batch(session)
    for attempt in range(5):
        response = post(care, f"{PAGE}/vouchers", {"voucher-serial": serial, "voucher-pin": "1"})
        assert response.status_code == 422
        assert "Wrong voucher serial or PIN." in response.get_data(as_text=True)
        session.expire_all()
        failures = session.exec(
            select(func.count())
            .select_from(VoucherAttempt)
            .where(
                VoucherAttempt.customer_id == customer.id, col(VoucherAttempt.success).is_(False)
            )
        ).one()
        assert failures == attempt + 1
    locked = post(care, f"{PAGE}/vouchers", {"voucher-serial": serial, "voucher-pin": pin})
    assert locked.status_code == 422
    assert "Too many failed voucher attempts" in locked.get_data(as_text=True)
    assert balance(session, customer) == 0


def test_voucher_above_the_cap_is_refused_and_stays_available(care, session, customer):
    give(session, customer, CAP - 1000)
    _batch, [(serial, pin), _other] = make_batch(session)
    response = post(care, f"{PAGE}/vouchers", {"voucher-serial": serial, "voucher-pin": pin})
    assert response.status_code == 422
    assert "the largest amount allowed now is 10.00" in response.get_data(as_text=True)
    session.expire_all()
    assert session.exec(select(Voucher.status).where(Voucher.serial == serial)).one() == "available"
    assert session.exec(select(VoucherAttempt)).all() == []


def test_void_a_voucher(finance, session, customer):
    batch, [(serial, pin), _other] = make_batch(session)
    page = f"/console/vouchers/{batch.id}"
    listing = finance.get(page).get_data(as_text=True)
    assert serial in listing and pin not in listing
    response = post(finance, f"{page}/{serial}/void", {}, page=page)
    assert response.status_code == 302
    session.expire_all()
    assert session.exec(select(Voucher.status).where(Voucher.serial == serial)).one() == "void"
    assert 'data-count="void">1<' in finance.get(page).get_data(as_text=True)
    redeemed = post(finance, f"{PAGE}/vouchers", {"voucher-serial": serial, "voucher-pin": pin})
    assert "cancelled" in redeemed.get_data(as_text=True)
    assert balance(session, customer) == 0


def test_customer_search(finance, session, customer):
    by_email = finance.get("/console/customers?q=li%40example").get_data(as_text=True)
    assert f'data-customer="{REF}"' in by_email
    assert f'data-customer="{REF}"' in finance.get("/console/customers?q=c-000").get_data(
        as_text=True
    )
    assert f'data-customer="{REF}"' not in finance.get("/console/customers?q=%25zz").get_data(
        as_text=True
    )
    assert finance.get("/console/customers/C-9999").status_code == 404
