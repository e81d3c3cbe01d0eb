"""Self-care money pages: top-up by card (local Stripe server) and voucher, the
return page after Checkout, receipts — each subscriber sees only their own."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, func, select

from app.core.audit import Actor
from app.ledger.balances import customer_balance
from app.payments.models import Payment, Voucher, VoucherAttempt
from app.payments.vouchers import VoucherPolicy, create_voucher_batch
from app.subscribers.models import Customer
from app.subscribers.services import create_customer, ensure_customer_for_account
from tests.conftest import csrf_token
from tests.factories import NOW, PASSWORD, make_subscriber
from tests.stripe_server import sign

CAP_MINOR = 24 * 5000  # PREPAY_CAP_MONTHS × PREPAY_REFERENCE_MONTHLY (defaults)
WRONG_PIN = "0000 0000 0000 0000"


def login(client, email: str) -> None:
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(client, "/login")},
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def subscriber(session):
    account = make_subscriber(session)
    session.commit()
    return account


@pytest.fixture
def signed_in(client, subscriber):
    login(client, subscriber.email)
    return subscriber


def customer_of(session, account) -> Customer | None:
    session.expire_all()
    return session.exec(
        select(Customer).where(Customer.subscriber_account_id == account.id)
    ).first()


def post_topup(client, **data):
    return client.post(
        "/account/topup", data={**data, "csrf_token": csrf_token(client, "/account/topup")}
    )


def post_event(client, body: bytes):
    return client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
    )


def make_vouchers(session, *, count: int = 1, value: int = 5000) -> list[tuple[str, str]]:
    # The pages use the real clock, so the vouchers must be valid now.
    now = datetime.now(UTC)
    _batch, pairs = create_voucher_batch(
        session,
        name="Store test",
        value_minor=value,
        count=count,
        expires_at=now + timedelta(days=30),
        currency="CNY",
        actor=Actor.system("test"),
        now=now,
    )
    session.commit()
    return pairs


def pay_by_card(client, session, stripe_on, amount: str = "50.00") -> Payment:
    response = post_topup(client, amount=amount)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(stripe_on.base_url)
    session.expire_all()
    return session.exec(select(Payment).order_by(col(Payment.id).desc())).first()


def webhook_paid(client, stripe_on, payment: Payment) -> None:
    paid = stripe_on.pay(payment.stripe_session_id)
    response = post_event(client, stripe_on.event("checkout.session.completed", paid))
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/account/topup",
        "/account/topup/return?payment=1",
        "/account/receipts",
        "/account/receipts/1",
    ],
)
def test_money_pages_require_a_signed_in_subscriber(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_topup_page_shows_balance_and_cap_for_a_new_subscriber(client, session, signed_in):
    page = client.get("/account/topup")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "1,200.00" in text  # the cap, and all of it still allowed
    assert customer_of(session, signed_in) is None  # nothing is created by looking


def test_without_stripe_only_the_voucher_form_is_offered(client, session, signed_in):
    text = client.get("/account/topup").get_data(as_text=True)
    assert 'name="serial"' in text and 'name="pin"' in text
    assert 'name="amount"' not in text
    assert "Card payment is not available" in text
    refused = post_topup(client, amount="50.00")
    assert refused.status_code == 503
    assert session.exec(select(func.count()).select_from(Payment)).one() == 0


def test_card_topup_redirects_to_checkout_and_the_webhook_books_it(
    client, session, stripe_on, signed_in
):
    text = client.get("/account/topup").get_data(as_text=True)
    assert 'name="amount"' in text

    payment = pay_by_card(client, session, stripe_on)
    customer = customer_of(session, signed_in)
    assert customer is not None and re.fullmatch(r"C-\d{4,}", customer.ref)
    assert customer.email == signed_in.email
    assert payment.customer_id == customer.id
    assert payment.status == "pending" and payment.amount_minor == 5000
    [call] = stripe_on.calls("POST", "/v1/checkout/sessions")
    assert call["success_url"] == f"http://localhost/account/topup/return?payment={payment.id}"
    assert call["locale"] == "en"

    waiting = client.get(f"/account/topup/return?payment={payment.id}")
    assert waiting.status_code == 200
    assert "Your balance will update in a moment" in waiting.get_data(as_text=True)
    assert customer_balance(session, customer_id=customer.id) == 0

    webhook_paid(client, stripe_on, payment)
    done = client.get(f"/account/topup/return?payment={payment.id}").get_data(as_text=True)
    assert "Paid" in done and 'data-status="succeeded"' in done
    assert re.search(r"data-balance>[^<]*50\.00<", done)

    receipts = client.get("/account/receipts").get_data(as_text=True)
    assert f"/account/receipts/{payment.id}" in receipts
    assert "card (Stripe)" in receipts and "50.00" in receipts

    receipt = client.get(f"/account/receipts/{payment.id}")
    assert receipt.status_code == 200
    text = receipt.get_data(as_text=True)
    assert customer.ref in text and "10100-1234" in text and "50.00" in text
    assert "Refunded" not in text


def test_second_top_up_keeps_the_same_customer(client, session, stripe_on, signed_in):
    first = pay_by_card(client, session, stripe_on, "10.00")
    second = pay_by_card(client, session, stripe_on, "20.00")
    assert first.customer_id == second.customer_id
    assert (
        session.exec(
            select(func.count())
            .select_from(Customer)
            .where(Customer.subscriber_account_id == signed_in.id)
        ).one()
        == 1
    )


def test_card_topup_above_the_cap_names_the_allowed_amount(client, session, stripe_on, signed_in):
    response = post_topup(client, amount="1200.01")
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "the largest amount allowed now is 1200.00" in text
    assert 'aria-invalid="true"' in text  # shown beside the amount
    assert stripe_on.calls("POST", "/v1/checkout/sessions") == []
    assert session.exec(select(func.count()).select_from(Payment)).one() == 0


@pytest.mark.parametrize("amount", ["abc", "-5.00", "5.001", "1e3", "99999999999.00", ""])
def test_bad_amount_is_shown_on_the_form(client, session, stripe_on, signed_in, amount):
    response = post_topup(client, amount=amount)
    assert response.status_code == 422
    assert "field-error" in response.get_data(as_text=True)
    assert stripe_on.requests == []


def test_zero_amount_is_refused(client, session, stripe_on, signed_in):
    response = post_topup(client, amount="0.00")
    assert response.status_code == 422
    assert "more than zero" in response.get_data(as_text=True)
    assert session.exec(select(func.count()).select_from(Payment)).one() == 0


def test_stripe_down_is_shown_as_a_form_message(client, session, stripe_on, signed_in):
    stripe_on.fail_next = 3  # the SDK tries three times
    response = post_topup(client, amount="50.00")
    assert response.status_code == 502
    assert 'class="error"' in response.get_data(as_text=True)
    session.expire_all()
    assert session.exec(select(Payment)).one().status == "created"


def test_another_subscriber_cannot_see_the_payment(app, client, session, stripe_on, signed_in):
    payment = pay_by_card(client, session, stripe_on)
    webhook_paid(client, stripe_on, payment)
    other = make_subscriber(session)
    session.commit()
    other_client = app.test_client()
    other_client.set_cookie("mvno_lang", "en")
    login(other_client, other.email)
    assert other_client.get(f"/account/receipts/{payment.id}").status_code == 404
    assert other_client.get(f"/account/topup/return?payment={payment.id}").status_code == 404
    assert f"/account/receipts/{payment.id}" not in other_client.get("/account/receipts").get_data(
        as_text=True
    )
    # They got a customer of their own once they topped up, and still no access.
    pay_by_card(other_client, session, stripe_on, "10.00")
    assert other_client.get(f"/account/receipts/{payment.id}").status_code == 404


@pytest.mark.parametrize("query", ["", "?payment=abc", "?payment=0", "?payment=99999999999"])
def test_return_page_without_a_valid_payment_is_a_404(client, signed_in, query):
    assert client.get(f"/account/topup/return{query}").status_code == 404


def test_receipt_of_an_unpaid_payment_is_a_404(client, session, stripe_on, signed_in):
    payment = pay_by_card(client, session, stripe_on)
    assert client.get(f"/account/receipts/{payment.id}").status_code == 404


def test_paid_above_the_cap_shows_the_refunded_part_on_the_receipt(
    client, session, stripe_on, signed_in
):
    payment = pay_by_card(client, session, stripe_on, "1000.00")
    # Meanwhile a voucher fills most of the room under the cap.
    [(serial, pin)] = make_vouchers(session, value=50000)
    assert post_topup(client, serial=serial, pin=pin).status_code == 303
    webhook_paid(client, stripe_on, payment)
    text = client.get(f"/account/receipts/{payment.id}").get_data(as_text=True)
    assert "Refunded (above the prepayment cap)" in text
    assert "300.00" in text  # 1000 + 500 − 1200


def test_voucher_redemption_credits_the_balance_and_is_a_receipt(client, session, signed_in):
    [(serial, pin)] = make_vouchers(session)
    response = post_topup(client, serial=serial, pin=pin)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Voucher redeemed" in page and "50.00" in page
    customer = customer_of(session, signed_in)
    assert customer_balance(session, customer_id=customer.id) == 5000
    receipts = client.get("/account/receipts").get_data(as_text=True)
    assert serial in receipts and "voucher" in receipts


def test_used_voucher_is_refused_on_the_form(client, session, signed_in):
    [(serial, pin)] = make_vouchers(session)
    assert post_topup(client, serial=serial, pin=pin).status_code == 303
    again = post_topup(client, serial=serial, pin=pin)
    assert again.status_code == 409
    assert "already been used" in again.get_data(as_text=True)


def test_voucher_above_the_cap_is_refused_and_stays_available(client, session, signed_in):
    [(serial, pin)] = make_vouchers(session, value=CAP_MINOR + 100)
    response = post_topup(client, serial=serial, pin=pin)
    assert response.status_code == 409
    assert "1200.00" in response.get_data(as_text=True)
    session.expire_all()
    assert session.exec(select(Voucher).where(Voucher.serial == serial)).one().status == "available"


def test_wrong_pins_are_committed_and_lock_out_even_the_right_pin(client, session, signed_in):
    [(serial, pin)] = make_vouchers(session)
    limit = VoucherPolicy().max_failures
    for _ in range(limit):
        response = post_topup(client, serial=serial, pin=WRONG_PIN)
        assert response.status_code == 422
        assert "Wrong voucher serial or PIN" in response.get_data(as_text=True)
    session.expire_all()
    failures = session.exec(
        select(func.count())
        .select_from(VoucherAttempt)
        .where(col(VoucherAttempt.success).is_(False))
    ).one()
    assert failures == limit
    locked = post_topup(client, serial=serial, pin=pin)
    assert locked.status_code == 429
    assert "Too many failed voucher attempts" in locked.get_data(as_text=True)
    customer = customer_of(session, signed_in)
    assert customer_balance(session, customer_id=customer.id) == 0
    assert session.exec(select(Voucher).where(Voucher.serial == serial)).one().status == "available"


def test_voucher_form_needs_serial_and_pin(client, session, signed_in):
    response = post_topup(client, serial="", pin="1234")
    assert response.status_code == 422
    assert session.exec(select(func.count()).select_from(VoucherAttempt)).one() == 0


def test_account_page_links_to_top_up_and_receipts(client, signed_in):
    text = client.get("/account").get_data(as_text=True)
    assert 'href="/account/topup"' in text and 'href="/account/receipts"' in text


@pytest.mark.parametrize("path", ["/account/topup", "/account/receipts", "/account"])
def test_money_pages_render_in_chinese(zh_client, subscriber, path):
    login(zh_client, subscriber.email)
    response = zh_client.get(path)
    assert response.status_code == 200
    assert 'lang="zh-Hans"' in response.get_data(as_text=True)


def test_chinese_checkout_asks_stripe_for_chinese(zh_client, session, stripe_on, subscriber):
    login(zh_client, subscriber.email)
    pay_by_card(zh_client, session, stripe_on)
    [call] = stripe_on.calls("POST", "/v1/checkout/sessions")
    assert call["locale"] == "zh"


# -- ensure_customer_for_account ---------------------------------------------------------


def test_ensure_customer_is_idempotent_per_login(session, subscriber):
    first = ensure_customer_for_account(
        session, account_id=subscriber.id, email=subscriber.email, now=NOW
    )
    again = ensure_customer_for_account(
        session, account_id=subscriber.id, email=subscriber.email, now=NOW
    )
    assert first.id == again.id and first.subscriber_account_id == subscriber.id


def test_ensure_customer_skips_a_ref_taken_by_hand(session, subscriber):
    by_hand = create_customer(session, ref="C-HAND", now=NOW)
    # The ref the next number would get is already taken by hand.
    taken = f"C-{by_hand.id + 1:04d}"
    by_hand.ref = taken
    session.add(by_hand)
    session.flush()
    customer = ensure_customer_for_account(
        session, account_id=subscriber.id, email=subscriber.email, now=NOW
    )
    assert customer.ref == f"C-{by_hand.id + 2:04d}"


def test_one_customer_per_login_is_enforced_by_the_database(session, subscriber):
    from sqlalchemy.exc import IntegrityError

    ensure_customer_for_account(session, account_id=subscriber.id, email="", now=NOW)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(Customer(ref="C-TWIN", subscriber_account_id=subscriber.id, created_at=NOW))
        session.flush()
