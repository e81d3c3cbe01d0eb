"""Pages that call Stripe hold no database lock meanwhile: on an app whose units of
work really commit (a database of its own, no shared test connection).

On SQLite a request session holding the write lock would make the service's
own units of work wait out the 30 s busy timeout and fail; these requests
must answer at once.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlmodel import select

from app.core.audit import Actor
from app.payments.models import Payment, Refund
from app.payments.refunds import request_refund
from app.payments.services import MoneyPolicy
from app.payments.stripe_gateway import StripeGateway
from app.payments.stripe_payments import begin_checkout
from tests.conftest import csrf_token
from tests.factories import NOW, PASSWORD, make_api_key, make_subscriber
from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET, sign
from tests.unit.ledger.helpers import make_customer

POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)
ACTOR = Actor.system("test")
QUICK_SECONDS = 10


@pytest.fixture
def own_app(backend: str, tmp_path: Any, stripe_server: Any) -> Any:
    """An app on a database of its own, with Stripe configured against the local server."""
    from app import create_app
    from tests.concurrency import fresh_database
    from tests.conftest import make_settings

    for database in fresh_database(backend, tmp_path, "money_locks", pool_size=4):
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


def test_the_card_top_up_holds_no_database_lock_while_stripe_is_called(own_app) -> None:
    db = own_app.extensions["mvno.db"]
    with db.transaction() as session:
        account = make_subscriber(session)
    client = own_app.test_client()
    client.set_cookie("mvno_lang", "en")
    login = client.post(
        "/login",
        data={
            "email": account.email,
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert login.status_code == 302
    started = time.monotonic()
    response = client.post(
        "/account/topup",
        data={"amount": "50.00", "csrf_token": csrf_token(client, "/account/topup")},
    )
    assert time.monotonic() - started < QUICK_SECONDS
    assert response.status_code == 303
    with db.transaction(write=False) as session:
        payment = session.exec(select(Payment)).one()
        assert payment.status == "pending" and payment.amount_minor == 5000
        assert response.headers["Location"] == payment.checkout_url


def test_sending_a_refund_by_api_holds_no_database_lock_while_stripe_is_called(
    own_app, stripe_server
) -> None:
    db = own_app.extensions["mvno.db"]
    gateway = StripeGateway(
        secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, api_base=stripe_server.base_url
    )
    with db.transaction() as session:
        customer = make_customer(session)
        _key, token = make_api_key(session, role="finance")
    assert customer.id is not None
    payment = begin_checkout(
        db,
        gateway,
        customer_id=customer.id,
        amount_minor=5000,
        purpose="topup",
        actor=ACTOR,
        now=NOW,
        policy=POLICY,
        urls=lambda pid: (f"https://shop.example/ok/{pid}", f"https://shop.example/no/{pid}"),
        description="Top-up",
    )
    assert payment.stripe_session_id is not None
    client = own_app.test_client()
    body = stripe_server.event(
        "checkout.session.completed", stripe_server.pay(payment.stripe_session_id)
    )
    paid = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
    )
    assert paid.status_code == 200
    with db.transaction() as session:
        (refund,) = request_refund(
            session,
            customer_id=customer.id,
            amount_minor=2000,
            reason="staff",
            note="customer asked",
            actor=ACTOR,
            now=NOW,
            currency="CNY",
        )
    started = time.monotonic()
    response = client.post(
        f"/api/v1/refunds/{refund.id}/send", headers={"Authorization": f"Bearer {token}"}
    )
    assert time.monotonic() - started < QUICK_SECONDS
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["customer_ref"] == customer.ref
    with db.transaction(write=False) as session:
        sent = session.get(Refund, refund.id)
        assert sent is not None and sent.status != "pending" and sent.stripe_refund_id
