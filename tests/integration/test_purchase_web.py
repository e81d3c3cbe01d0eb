"""Buying a plan in the store through the Flask test client (zh_Hans and en),
the console's store orders, the orders API and a card purchase through the
local Stripe server."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, func, select

from app.core.audit import Actor
from app.ledger.balances import customer_balance
from app.ledger.movements import credit_customer
from app.payments.vouchers import create_voucher_batch
from app.provisioning import services as outbox
from app.subscribers.models import Customer, Line, PurchaseOrder
from numbering.models import PhoneNumber, Sim
from tests.conftest import csrf_token
from tests.factories import PASSWORD, login_staff, make_api_key, make_staff, make_subscriber
from tests.stripe_server import sign
from tests.unit.subscribers.helpers import FIRST, World, make_world

VALID_RIC = "11010519491231002X"
BAD_RIC = "110105194912310022"  # the check digit should be X
_sims = itertools.count(1)
_emails = itertools.count(1)
_numbers = itertools.count(0)


def real_now() -> datetime:
    # The pages read the real clock.
    return datetime.now(UTC)


@pytest.fixture
def world(session: Session) -> World:
    world = make_world(session, code="SHOP")
    session.commit()
    return world


def add_sims(session: Session, world: World, kind: str, count: int = 1) -> None:
    assert world.host.id is not None
    for _ in range(count):
        n = next(_sims)
        session.add(
            Sim(
                iccid=f"89860177{n:011d}",
                imsi=f"46007{n:010d}",
                kind=kind,
                lpa=f"LPA:1$smdp.example.com$WEB-{n}" if kind == "esim" else None,
                host_id=world.host.id,
                status="in_stock",
                created_at=real_now(),
                status_changed_at=real_now(),
            )
        )
    session.commit()


def vouchers(session: Session, value: int, count: int = 1) -> list[tuple[str, str]]:
    _batch, pairs = create_voucher_batch(
        session,
        name="purchase test",
        value_minor=value,
        count=count,
        expires_at=real_now() + timedelta(days=30),
        currency="CNY",
        actor=Actor.system("test"),
        now=real_now(),
    )
    session.commit()
    return pairs


def free_msisdn() -> str:
    return f"+{FIRST + 100 + next(_numbers) % 100}"


ANY_CSRF_RE = re.compile(r'name="[a-z-]*csrf_token"[^>]*?value="([^"]+)"')


def page_token(client: Any, path: str) -> str:
    """The session's CSRF token from a page (a prefixed form names it `<prefix>-csrf_token`)."""
    response = client.get(path)
    match = ANY_CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {response.status_code})"
    return match.group(1)


def post(client: Any, path: str, form_page: str, *, prefix: str = "", **data: Any) -> Any:
    field = f"{prefix}-csrf_token" if prefix else "csrf_token"
    return client.post(path, data={**data, field: page_token(client, form_page)})


def choose_number(client: Any, world: World, msisdn: str | None = None) -> str:
    msisdn = msisdn or free_msisdn()
    page = client.get(f"/buy/{world.plan.code}?q={msisdn[-3:]}")
    assert page.status_code == 200
    assert msisdn in page.get_data(as_text=True)
    response = post(
        client, f"/buy/{world.plan.code}/hold", f"/buy/{world.plan.code}", msisdn=msisdn
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/buy/checkout")
    return msisdn


def register(client: Any) -> str:
    email = f"buyer{next(_emails)}@example.com"
    response = post(
        client,
        "/buy/register",
        "/buy/checkout",
        prefix="reg",
        **{
            "reg-email": email,
            "reg-display_name": "Buyer",
            "reg-password": PASSWORD,
            "reg-confirm": PASSWORD,
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return email


def give_identity(client: Any, id_number: str = VALID_RIC, id_type: str = "cn_ric") -> Any:
    return post(
        client,
        "/buy/identity",
        "/buy/checkout",
        name="张三",
        id_type=id_type,
        id_number=id_number,
    )


def place(client: Any, kind: str = "esim") -> Any:
    return post(client, "/buy/place", "/buy/checkout", sim_kind=kind)


def order_ref(response: Any) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.search(r"/orders/(O-\d{6})$", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def order_row(session: Session, ref: str) -> PurchaseOrder:
    session.expire_all()
    return session.exec(select(PurchaseOrder).where(PurchaseOrder.ref == ref)).one()


def pay_with_voucher(client: Any, ref: str, pair: tuple[str, str]) -> Any:
    return post(client, f"/orders/{ref}/voucher", f"/orders/{ref}", serial=pair[0], pin=pair[1])


def deliver(app: Any, db: Any) -> dict[str, int]:
    settings = app.extensions["mvno.settings"]
    return outbox.deliver_pending(db, now=real_now(), settings=settings).as_dict()


def buy_until_order(client: Any, world: World, kind: str = "esim") -> tuple[str, str]:
    msisdn = choose_number(client, world)
    register(client)
    assert give_identity(client).status_code == 303
    return msisdn, order_ref(place(client, kind))


# -- the whole purchase -------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_a_new_subscriber_buys_an_esim_with_a_voucher_and_the_line_becomes_active(
    app, db, session, world, lang, client, zh_client
) -> None:
    browser = zh_client if lang == "zh_Hans" else client
    add_sims(session, world, "esim")
    index = browser.get("/").get_data(as_text=True)
    assert f'data-buy="{world.plan.code}"' in index
    msisdn = choose_number(browser, world)

    checkout = browser.get("/buy/checkout").get_data(as_text=True)
    assert msisdn in checkout and "data-hold-until" in checkout
    assert 'id="buy-register"' in checkout and 'id="buy-login"' in checkout
    register(browser)

    # Signed in, the cart is still there; real name next.
    checkout = browser.get("/buy/checkout").get_data(as_text=True)
    assert msisdn in checkout and 'id="buy-identity"' in checkout
    refused = give_identity(browser, BAD_RIC)
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert 'id="id_number"' in text and 'class="field-error"' in text
    if lang == "en":
        assert "This is not a valid Chinese resident ID number." in text
    else:
        # The page is Chinese; the new message's translation comes with the catalogs.
        assert '<html lang="zh-Hans">' in text
    assert give_identity(browser).status_code == 303
    checkout = browser.get("/buy/checkout").get_data(as_text=True)
    assert VALID_RIC not in checkout and 'id="buy-place"' in checkout

    ref = order_ref(place(browser))
    order = order_row(session, ref)
    assert (order.status, order.msisdn, order.sim_kind) == ("awaiting_payment", msisdn, "esim")
    page = browser.get(f"/orders/{ref}").get_data(as_text=True)
    assert "data-hold-until" in page and 'id="order-voucher"' in page

    [pair] = vouchers(session, order.total_minor + 1000)
    response = pay_with_voucher(browser, ref, pair)
    assert response.status_code == 303
    order = order_row(session, ref)
    assert order.status == "paid" and order.payment_method == "voucher"
    assert customer_balance(session, customer_id=order.customer_id) == 1000
    page = browser.get(f"/orders/{ref}").get_data(as_text=True)
    assert "data-pending" in page and 'http-equiv="refresh"' in page
    assert browser.get(f"/orders/{ref}/status.json").get_json()["line_status"] == "pending"

    assert deliver(app, db)["delivered"] == 1
    page = browser.get(f"/orders/{ref}").get_data(as_text=True)
    assert "data-active" in page and 'http-equiv="refresh"' not in page
    assert 'data-meter="data"' in page and "<svg" in page and "LPA:1$smdp.example.com$WEB-" in page
    status = browser.get(f"/orders/{ref}/status.json").get_json()
    assert (status["status"], status["line_status"]) == ("paid", "active")
    orders_page = browser.get("/orders").get_data(as_text=True)
    assert ref in orders_page and 'data-status="paid"' in orders_page
    customer = session.get(Customer, order.customer_id)
    assert customer is not None and customer.id_number_masked
    assert customer.id_number_masked in page and VALID_RIC not in page


def test_signing_in_during_the_purchase_keeps_the_cart(client, session, world) -> None:
    add_sims(session, world, "physical")
    account = make_subscriber(session)
    session.commit()
    msisdn = choose_number(client, world)
    response = post(
        client,
        "/buy/login",
        "/buy/checkout",
        prefix="login",
        **{"login-email": account.email, "login-password": PASSWORD},
    )
    assert response.status_code == 303
    assert msisdn in client.get("/buy/checkout").get_data(as_text=True)
    wrong = post(
        client,
        "/buy/login",
        "/buy/checkout",
        prefix="login",
        **{"login-email": account.email, "login-password": "wrong password!"},
    )
    # Already signed in: the form still answers, and the wrong password is refused.
    assert wrong.status_code == 401


def test_no_sim_in_stock_is_a_clear_message_and_nothing_is_charged(client, session, world) -> None:
    add_sims(session, world, "physical")
    choose_number(client, world)
    register(client)
    give_identity(client)
    checkout = client.get("/buy/checkout").get_data(as_text=True)
    assert 'data-no-stock="esim"' in checkout
    response = place(client, "esim")
    assert response.status_code == 409
    assert "no eSIM is available for this plan right now" in response.get_data(as_text=True)
    assert session.exec(select(func.count()).select_from(PurchaseOrder)).one() == 0


def test_a_voucher_short_of_the_total_tops_up_and_the_order_waits(client, session, world) -> None:
    add_sims(session, world, "esim")
    _msisdn, ref = buy_until_order(client, world)
    order = order_row(session, ref)
    [pair] = vouchers(session, order.total_minor - 500)
    response = pay_with_voucher(client, ref, pair)
    assert response.status_code == 303
    page = client.get(f"/orders/{ref}").get_data(as_text=True)
    assert "more is needed for this order" in page
    order = order_row(session, ref)
    assert order.status == "awaiting_payment"
    assert customer_balance(session, customer_id=order.customer_id) == (order.total_minor - 500)
    # Topped up elsewhere, the buyer pays from the balance.
    credit_customer(
        session,
        customer_id=order.customer_id,
        amount_minor=500,
        source_kind="adjustments",
        idempotency_key=f"top-{ref}",
        actor=Actor.system("test"),
        now=real_now(),
        currency="CNY",
        cap_months=24,
        reference_monthly_minor=5000,
    )
    session.commit()
    page = client.get(f"/orders/{ref}").get_data(as_text=True)
    assert "data-pay-balance" in page
    response = post(client, f"/orders/{ref}/pay-balance", f"/orders/{ref}")
    assert response.status_code == 303
    assert order_row(session, ref).status == "paid"
    assert order_row(session, ref).payment_method == "balance"


def test_a_wrong_voucher_pin_is_refused_beside_the_form(client, session, world) -> None:
    add_sims(session, world, "esim")
    _msisdn, ref = buy_until_order(client, world)
    [(serial, _pin)] = vouchers(session, 100_000)
    response = pay_with_voucher(client, ref, (serial, "0000 0000 0000 0000"))
    assert response.status_code == 422
    assert "Wrong voucher serial or PIN." in response.get_data(as_text=True)
    assert order_row(session, ref).status == "awaiting_payment"


def test_cancelling_releases_the_number(client, session, world) -> None:
    add_sims(session, world, "esim")
    msisdn, ref = buy_until_order(client, world)
    response = post(client, f"/orders/{ref}/cancel", f"/orders/{ref}")
    assert response.status_code == 303
    assert order_row(session, ref).status == "cancelled"
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == msisdn)).one()
    assert number.status == "available"
    assert "data-cancelled" in client.get(f"/orders/{ref}").get_data(as_text=True)


def test_an_order_whose_hold_ran_out_shows_expired_and_cannot_be_paid(
    client, session, world
) -> None:
    add_sims(session, world, "esim")
    _msisdn, ref = buy_until_order(client, world)
    order = order_row(session, ref)
    order.hold_until = real_now() - timedelta(seconds=1)
    session.add(order)
    session.commit()
    assert "data-expired" in client.get(f"/orders/{ref}").get_data(as_text=True)
    [pair] = vouchers(session, order.total_minor)
    response = pay_with_voucher(client, ref, pair)
    assert response.status_code == 303
    assert order_row(session, ref).status == "expired"
    assert "can no longer be paid" in client.get(f"/orders/{ref}").get_data(as_text=True)


def test_someone_elses_order_is_not_found(app, client, session, world) -> None:
    add_sims(session, world, "esim")
    _msisdn, ref = buy_until_order(client, world)
    other = app.test_client()
    other.set_cookie("mvno_lang", "en")
    account = make_subscriber(session)
    session.commit()
    post(other, "/login", "/login", email=account.email, password=PASSWORD)
    assert other.get(f"/orders/{ref}").status_code == 404
    assert other.get(f"/orders/{ref}/status.json").status_code == 404
    assert post(other, f"/orders/{ref}/cancel", "/account/topup").status_code == 404
    assert other.get("/orders/" + "X" * 300).status_code == 404


def test_pages_need_a_cart_or_a_login(client) -> None:
    assert client.get("/buy/checkout").status_code == 302
    assert client.get("/orders").status_code == 302
    assert client.get("/buy/NOSUCHPLAN").status_code == 404


def test_a_bad_search_pattern_is_a_message_not_an_error(client, world) -> None:
    page = client.get(f"/buy/{world.plan.code}?q=12ab")
    assert page.status_code == 200
    assert "The pattern must be up to" in page.get_data(as_text=True)


# -- pay at a store: console and API ------------------------------------------------------


def test_pay_at_store_then_finance_records_the_cash_in_the_console(
    app, client, session, world
) -> None:
    add_sims(session, world, "physical")
    _msisdn, ref = buy_until_order(client, world, kind="physical")
    response = post(client, f"/orders/{ref}/pay-at-store", f"/orders/{ref}")
    assert response.status_code == 303
    order = order_row(session, ref)
    assert order.payment_method == "store"
    assert order.hold_until > real_now() + timedelta(hours=23)

    care, finance = make_staff(session, role="care"), make_staff(session, role="finance")
    session.commit()
    care_client = app.test_client()
    login_staff(care_client, care.email)
    listing = care_client.get("/console/orders?status=awaiting_payment").get_data(as_text=True)
    assert ref in listing and "Record payment and complete" not in listing
    refused = care_client.post(
        f"/console/orders/{ref}/store-payment",
        data={
            "method": "cash",
            "reference": "R-1",
            "csrf_token": csrf_token(care_client, "/console/orders"),
        },
    )
    assert refused.status_code == 403

    staff = app.test_client()
    login_staff(staff, finance.email)
    response = staff.post(
        f"/console/orders/{ref}/store-payment",
        data={
            "method": "cash",
            "reference": "R-1",
            "csrf_token": csrf_token(staff, "/console/orders"),
        },
    )
    assert response.status_code == 303
    order = order_row(session, ref)
    assert order.status == "paid" and order.payment_method == "store"
    line = session.get(Line, order.line_id)
    assert line is not None and line.status == "pending"
    assert customer_balance(session, customer_id=order.customer_id) == 0
    empty = staff.post(
        f"/console/orders/{ref}/store-payment",
        data={
            "method": "cash",
            "reference": "",
            "csrf_token": csrf_token(staff, "/console/orders"),
        },
    )
    assert empty.status_code == 303  # a message, and the paid order is unchanged
    assert order_row(session, ref).entry_id == order.entry_id


def test_orders_api_lists_records_store_payment_and_completes(client, session, world) -> None:
    add_sims(session, world, "physical", count=2)
    _m1, ref = buy_until_order(client, world, kind="physical")
    _key, token = make_api_key(session, role="finance")
    _care_key, care_token = make_api_key(session, role="care", name="care")
    session.commit()
    api = {"Authorization": f"Bearer {token}"}

    listing = client.get("/api/v1/orders?status=awaiting_payment", headers=api)
    assert listing.status_code == 200
    assert [o["ref"] for o in listing.get_json()["items"]] == [ref]
    one = client.get(f"/api/v1/orders/{ref}", headers=api).get_json()
    assert one["status"] == "awaiting_payment" and one["shortfall_minor"] == one["total_minor"]
    assert client.get("/api/v1/orders/O-999999", headers=api).status_code == 404
    assert client.get("/api/v1/orders?status=lost", headers=api).status_code == 422

    refused = client.post(
        f"/api/v1/orders/{ref}/store-payment",
        json={"method": "cash", "reference": "R-API"},
        headers={"Authorization": f"Bearer {care_token}"},
    )
    assert refused.status_code == 403
    bad = client.post(
        f"/api/v1/orders/{ref}/store-payment",
        json={"method": "gold", "reference": "x"},
        headers=api,
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "method"
    unpaid = client.post(f"/api/v1/orders/{ref}/complete", headers=api)
    assert unpaid.status_code == 409 and unpaid.get_json()["error"]["code"] == "order_unpaid"

    paid = client.post(
        f"/api/v1/orders/{ref}/store-payment",
        json={"method": "cash", "reference": "R-API"},
        headers=api,
    )
    assert paid.status_code == 200, paid.get_json()
    body = paid.get_json()
    assert (body["status"], body["payment_method"], body["line_status"]) == (
        "paid",
        "store",
        "pending",
    )
    again = client.post(f"/api/v1/orders/{ref}/complete", headers=api)
    assert again.status_code == 200 and again.get_json()["paid_at"] == body["paid_at"]


# -- a card purchase through the local Stripe server ----------------------------------------


def test_a_card_purchase_completes_the_order_on_the_signed_webhook(
    client, session, world, stripe_on
) -> None:
    add_sims(session, world, "esim")
    _msisdn, ref = buy_until_order(client, world)
    page = client.get(f"/orders/{ref}").get_data(as_text=True)
    assert 'id="order-card"' in page and "data-no-card" not in page
    response = post(client, f"/orders/{ref}/card", f"/orders/{ref}")
    assert response.status_code == 303
    order = order_row(session, ref)
    assert order.payment_id is not None and order.payment_method == "stripe"
    from app.payments.models import Payment

    payment = session.get(Payment, order.payment_id)
    assert payment is not None and payment.purpose == "purchase"
    assert payment.amount_minor == order.total_minor
    assert response.headers["Location"] == payment.checkout_url
    waiting = client.get(f"/orders/{ref}").get_data(as_text=True)
    assert "data-card-pending" in waiting and 'http-equiv="refresh"' in waiting

    paid = stripe_on.pay(payment.stripe_session_id)
    body = stripe_on.event("checkout.session.completed", paid)
    hook = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
    )
    assert hook.status_code == 200
    order = order_row(session, ref)
    assert order.status == "paid" and order.payment_method == "stripe"
    assert customer_balance(session, customer_id=order.customer_id) == 0
    # A redelivery changes nothing.
    again = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
    )
    assert again.status_code == 200
    assert session.exec(select(func.count()).select_from(Line)).one() == 1


def test_card_payment_is_offered_only_when_stripe_is_configured(client, session, world) -> None:
    add_sims(session, world, "esim")
    _msisdn, ref = buy_until_order(client, world)
    assert "data-no-card" in client.get(f"/orders/{ref}").get_data(as_text=True)
    response = post(client, f"/orders/{ref}/card", f"/orders/{ref}")
    assert response.status_code == 303
    assert "not configured" in client.get(f"/orders/{ref}").get_data(as_text=True)


def test_the_scheduler_job_expires_orders_whose_hold_ran_out(client, db, session, world) -> None:
    from app.jobs import JOBS, run_job

    add_sims(session, world, "esim")
    msisdn, ref = buy_until_order(client, world)
    order = order_row(session, ref)
    order.hold_until = real_now() - timedelta(seconds=1)
    session.add(order)
    session.commit()
    job = next(job for job in JOBS if job.id == "expire_purchase_orders")
    assert run_job(db, job, now=real_now()) == 1
    assert order_row(session, ref).status == "expired"
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == msisdn)).one()
    assert number.status == "available"
    assert run_job(db, job, now=real_now()) == 0


@pytest.fixture
def own_app(backend: str, tmp_path: Any, stripe_server: Any) -> Any:
    """An app on a database of its own whose units of work really commit (no shared
    test connection), with Stripe configured against the local server."""
    from app import create_app
    from tests.concurrency import fresh_database
    from tests.conftest import make_settings
    from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET

    for database in fresh_database(backend, tmp_path, "card", pool_size=4):
        flask_app = create_app(
            make_settings(
                database.url,
                tmp_path / "instance",
                STRIPE_SECRET_KEY=SECRET_KEY,
                STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                STRIPE_API_BASE=stripe_server.base_url,
            )
        )
        flask_app.config["TESTING"] = True
        stripe_server.reset()
        yield flask_app
        flask_app.extensions["mvno.db"].dispose()


def test_the_card_button_holds_no_database_lock_while_stripe_is_called(own_app) -> None:
    import time

    db = own_app.extensions["mvno.db"]
    with db.transaction() as session:
        world = make_world(session, code="CARD")
        add_sims(session, world, "esim")
    client = own_app.test_client()
    client.set_cookie("mvno_lang", "en")
    _msisdn, ref = buy_until_order(client, world)
    started = time.monotonic()
    response = post(client, f"/orders/{ref}/card", f"/orders/{ref}")
    # On SQLite a request session holding the write lock would make the
    # checkout's own units of work wait out the 30 s busy timeout and fail.
    assert time.monotonic() - started < 10
    assert response.status_code == 303
    with db.transaction(write=False) as session:
        order = order_row(session, ref)
        assert order.payment_id is not None and order.payment_method == "stripe"
        from app.payments.models import Payment

        payment = session.get(Payment, order.payment_id)
        assert payment is not None and payment.status == "pending"
        assert response.headers["Location"] == payment.checkout_url
