"""JSON API of the money side: balances, ledger, adjustments, payments, refunds, vouchers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from app.core.audit import Actor
from app.core.clock import utcnow
from app.ledger.models import JournalEntry
from app.payments import stripe_payments
from app.payments.models import Refund, VoucherAttempt
from app.payments.services import MoneyPolicy
from app.payments.stripe_gateway import StripeGateway
from tests.factories import make_api_key
from tests.integration.test_stripe import post_event
from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET
from tests.unit.ledger.helpers import make_customer

# No lines: the cap is 24 months of the 50.00 reference fee.
CAP = 24 * 5000


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def customer(session):
    customer = make_customer(session)
    session.commit()
    return customer


@pytest.fixture
def tokens(session):
    made = {role: make_api_key(session, role=role)[1] for role in ("admin", "finance", "care")}
    made["auditor"] = make_api_key(session, role="auditor")[1]
    made["wholesale"] = make_api_key(session, role="wholesale")[1]
    session.commit()
    return made


@pytest.fixture
def api(client, tokens):
    """Call the API as a role: api("finance", "post", path, json=...)."""

    def call(role, method, path, **kwargs):
        return getattr(client, method)(f"/api/v1{path}", headers=bearer(tokens[role]), **kwargs)

    return call


def pay(api, ref, amount, reference="R-1", method="cash"):
    return api(
        "finance",
        "post",
        f"/customers/{ref}/payments",
        json={"method": method, "amount_minor": amount, "reference": reference},
    )


def future(days=30):
    return (utcnow() + timedelta(days=days)).isoformat()


def make_batch(api, count=3, value=1000):
    response = api(
        "finance",
        "post",
        "/voucher-batches",
        json={"name": "Spring", "value_minor": value, "count": count, "expires_at": future()},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# -- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "allowed"),
    [
        ("care", "get", "/customers/{ref}/balance", None, True),
        ("auditor", "get", "/customers/{ref}/ledger", None, True),
        ("wholesale", "get", "/customers/{ref}/balance", None, False),
        ("care", "post", "/customers/{ref}/adjustments", "adjust", False),
        ("auditor", "post", "/customers/{ref}/adjustments", "adjust", False),
        ("finance", "post", "/customers/{ref}/adjustments", "adjust", True),
        ("auditor", "get", "/payments", None, True),
        ("auditor", "post", "/customers/{ref}/payments", "payment", False),
        ("care", "post", "/customers/{ref}/payments", "payment", False),
        ("auditor", "get", "/refunds", None, True),
        ("care", "post", "/customers/{ref}/refunds", "refund", False),
        ("auditor", "get", "/voucher-batches", None, True),
        ("auditor", "post", "/voucher-batches", "batch", False),
        ("care", "post", "/vouchers/V00000100001/void", None, False),
        ("auditor", "post", "/customers/{ref}/voucher-redemptions", "redeem", False),
        ("care", "post", "/customers/{ref}/voucher-redemptions", "redeem", True),
    ],
)
def test_each_role_reaches_only_what_it_may(
    api, session, customer, role, method, path, body, allowed
):
    bodies = {
        None: None,
        "adjust": {"amount_minor": 100, "reason": "goodwill", "idempotency_key": "k-1"},
        "payment": {"method": "cash", "amount_minor": 100, "reference": "R-9"},
        "refund": {"amount_minor": 100, "note": "asked"},
        "batch": {"name": "B", "value_minor": 100, "count": 1, "expires_at": future()},
        "redeem": {"serial": "V00000100001", "pin": "1234"},
    }
    response = api(role, method, path.format(ref=customer.ref), json=bodies[body])
    if allowed:
        assert response.status_code != 403, response.get_json()
    else:
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "permission_denied"
    if not allowed and method == "post":
        assert session.exec(select(func.count()).select_from(JournalEntry)).one() == 0


# -- balance and ledger -------------------------------------------------------------------------


def test_balance_shows_cap_and_headroom(api, customer):
    assert pay(api, customer.ref, 2000).status_code == 201
    body = api("care", "get", f"/customers/{customer.ref}/balance").get_json()
    assert body == {
        "customer_ref": customer.ref,
        "balance_minor": 2000,
        "cap_minor": CAP,
        "headroom_minor": CAP - 2000,
        "currency": "CNY",
    }


@pytest.mark.parametrize("ref", ["C-NOPE", "x" * 300, "C-%01"])
def test_unknown_customer_is_404_everywhere(api, ref):
    for method, path, body in [
        ("get", "balance", None),
        ("get", "ledger", None),
        ("post", "adjustments", {"amount_minor": 1, "reason": "r", "idempotency_key": "k"}),
        ("post", "payments", {"method": "cash", "amount_minor": 1, "reference": "R"}),
        ("post", "refunds", {"amount_minor": 1, "note": "n"}),
        ("post", "voucher-redemptions", {"serial": "V1", "pin": "1"}),
    ]:
        response = api("admin", method, f"/customers/{ref}/{path}", json=body)
        assert response.status_code == 404, (path, response.get_json())
        assert response.get_json()["error"]["code"] == "customer_not_found"


def test_ledger_lists_entries_newest_first_with_running_balance(api, customer):
    pay(api, customer.ref, 3000, reference="R-1")
    api(
        "finance",
        "post",
        f"/customers/{customer.ref}/adjustments",
        json={"amount_minor": -500, "reason": "duplicate fee", "idempotency_key": "fix-1"},
    )
    pay(api, customer.ref, 1000, reference="R-2")
    body = api("auditor", "get", f"/customers/{customer.ref}/ledger").get_json()
    assert body["total"] == 3 and body["currency"] == "CNY"
    assert [(r["amount_minor"], r["balance_minor"]) for r in body["items"]] == [
        (1000, 3500),
        (-500, 2500),
        (3000, 3000),
    ]
    assert body["items"][1]["memo"] == "duplicate fee"
    assert body["items"][0]["at"].endswith("+00:00")
    page2 = api("auditor", "get", f"/customers/{customer.ref}/ledger?per_page=1&page=2").get_json()
    assert [r["balance_minor"] for r in page2["items"]] == [2500]
    assert (page2["page"], page2["per_page"], page2["total"]) == (2, 1, 3)


@pytest.mark.parametrize("query", ["per_page=0", "per_page=201", "page=0", "page=x", "sort=at"])
def test_ledger_refuses_bad_paging(api, customer, query):
    response = api("admin", "get", f"/customers/{customer.ref}/ledger?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_input"


# -- adjustments ----------------------------------------------------------------------------


def adjust(api, ref, amount, key="adj-1", reason="goodwill", role="finance"):
    return api(
        role,
        "post",
        f"/customers/{ref}/adjustments",
        json={"amount_minor": amount, "reason": reason, "idempotency_key": key},
    )


def test_adjustment_credits_and_replays_to_the_same_entry(api, session, customer):
    first = adjust(api, customer.ref, 700)
    assert first.status_code == 201
    body = first.get_json()
    assert body["amount_minor"] == 700 and body["balance_minor"] == 700
    assert body["currency"] == "CNY" and body["kind"] == "credit.adjustments"
    again = adjust(api, customer.ref, 700)
    assert again.status_code == 201
    assert again.get_json()["entry_id"] == body["entry_id"]
    assert again.get_json()["balance_minor"] == 700
    assert session.exec(select(func.count()).select_from(JournalEntry)).one() == 1


def test_adjustment_key_reused_for_another_amount_or_reason_is_409(api, customer):
    assert adjust(api, customer.ref, 700).status_code == 201
    for amount, reason in ((701, "goodwill"), (-700, "goodwill"), (700, "other reason")):
        response = adjust(api, customer.ref, amount, reason=reason)
        assert response.status_code == 409
        assert response.get_json()["error"] == {
            "code": "idempotency_conflict",
            "message": response.get_json()["error"]["message"],
            "field": "idempotency_key",
        }
    assert (
        api("admin", "get", f"/customers/{customer.ref}/balance").get_json()["balance_minor"] == 700
    )


def test_adjustment_refusals(api, customer):
    adjust(api, customer.ref, 100, key="a")
    below = adjust(api, customer.ref, -101, key="b")
    assert below.status_code == 409
    assert below.get_json()["error"]["code"] == "insufficient_balance"
    above = adjust(api, customer.ref, CAP, key="c")
    assert above.status_code == 409
    assert above.get_json()["error"]["code"] == "prepay_cap_exceeded"
    assert "1199.00" in above.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount_minor": 0, "reason": "r", "idempotency_key": "k"}, "amount_minor"),
        ({"amount_minor": 1.5, "reason": "r", "idempotency_key": "k"}, "amount_minor"),
        ({"amount_minor": "100", "reason": "r", "idempotency_key": "k"}, "amount_minor"),
        ({"amount_minor": 10**9 + 1, "reason": "r", "idempotency_key": "k"}, "amount_minor"),
        ({"amount_minor": -(10**9) - 1, "reason": "r", "idempotency_key": "k"}, "amount_minor"),
        ({"amount_minor": 10**12, "reason": "r", "idempotency_key": "k"}, "amount_minor"),
        ({"amount_minor": 1, "reason": "   ", "idempotency_key": "k"}, "reason"),
        ({"amount_minor": 1, "reason": "a\nb", "idempotency_key": "k"}, "reason"),
        ({"amount_minor": 1, "idempotency_key": "k"}, "reason"),
        ({"amount_minor": 1, "reason": "r"}, "idempotency_key"),
        ({"amount_minor": 1, "reason": "r", "idempotency_key": "has space"}, "idempotency_key"),
        ({"amount_minor": 1, "reason": "r", "idempotency_key": "k" * 191}, "idempotency_key"),
        ({"amount_minor": 1, "reason": "r", "idempotency_key": "k", "x": 1}, "x"),
    ],
)
def test_adjustment_input_is_validated(api, customer, payload, field):
    response = api("admin", "post", f"/customers/{customer.ref}/adjustments", json=payload)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


# -- payments -------------------------------------------------------------------------------


def test_offline_payment_is_recorded_and_replayed_by_reference(api, customer):
    response = pay(api, customer.ref, 5000, reference="BANK-77", method="bank_transfer")
    assert response.status_code == 201
    body = response.get_json()
    assert body["customer_ref"] == customer.ref
    assert (body["method"], body["status"], body["amount_minor"], body["credited_minor"]) == (
        "bank_transfer",
        "succeeded",
        5000,
        5000,
    )
    assert body["currency"] == "CNY" and body["created_at"].endswith("+00:00")
    again = pay(api, customer.ref, 5000, reference="BANK-77", method="bank_transfer")
    assert again.status_code == 201 and again.get_json()["id"] == body["id"]
    other = pay(api, customer.ref, 4000, reference="BANK-77", method="bank_transfer")
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "payment_conflict"
    balance = api("admin", "get", f"/customers/{customer.ref}/balance").get_json()
    assert balance["balance_minor"] == 5000


def test_payment_above_the_cap_names_the_largest_amount_allowed(api, session, customer):
    pay(api, customer.ref, 100_000, reference="R-1")
    response = pay(api, customer.ref, 30_000, reference="R-2")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "prepay_cap_exceeded" and error["field"] == "amount"
    assert "200.00" in error["message"]
    listed = api("admin", "get", f"/payments?customer={customer.ref}").get_json()
    assert [p["reference"] for p in listed["items"]] == ["R-1"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"method": "stripe", "amount_minor": 1, "reference": "R"}, "method"),
        ({"method": "cash", "amount_minor": 0, "reference": "R"}, "amount_minor"),
        ({"method": "cash", "amount_minor": -5, "reference": "R"}, "amount_minor"),
        ({"method": "cash", "amount_minor": 1, "reference": ""}, "reference"),
        ({"method": "cash", "amount_minor": 1, "reference": "R" * 201}, "reference"),
        ({"method": "cash", "amount_minor": 1, "reference": "R", "memo": "\x07"}, "memo"),
    ],
)
def test_payment_input_is_validated(api, customer, payload, field):
    response = api("admin", "post", f"/customers/{customer.ref}/payments", json=payload)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


def test_payments_are_listed_newest_first_and_filtered(api, session, customer):
    other = make_customer(session)
    session.commit()
    pay(api, customer.ref, 100, reference="A", method="cash")
    pay(api, other.ref, 200, reference="B", method="bank_transfer")
    pay(api, customer.ref, 300, reference="C", method="bank_transfer")
    everything = api("auditor", "get", "/payments").get_json()
    assert [p["reference"] for p in everything["items"]] == ["C", "B", "A"]
    assert everything["total"] == 3
    mine = api("auditor", "get", f"/payments?customer={customer.ref}&method=bank_transfer")
    assert [p["reference"] for p in mine.get_json()["items"]] == ["C"]
    assert api("auditor", "get", "/payments?status=failed").get_json()["items"] == []
    assert api("auditor", "get", "/payments?customer=C-NOPE").status_code == 404
    assert api("auditor", "get", "/payments?status=paid").status_code == 422
    assert api("auditor", "get", "/payments?per_page=1000").status_code == 422


# -- refunds --------------------------------------------------------------------------------


def test_staff_refund_without_card_payments_is_paid_by_hand(api, customer):
    pay(api, customer.ref, 5000)
    response = api(
        "finance",
        "post",
        f"/customers/{customer.ref}/refunds",
        json={"amount_minor": 1200, "note": "moving away"},
    )
    assert response.status_code == 201
    [refund] = response.get_json()["items"]
    assert (refund["status"], refund["reason"], refund["payment_id"]) == ("pending", "staff", None)
    assert refund["amount_minor"] == 1200 and refund["customer_ref"] == customer.ref
    balance = api("admin", "get", f"/customers/{customer.ref}/balance").get_json()
    assert balance["balance_minor"] == 3800

    retry = api("finance", "post", f"/refunds/{refund['id']}/retry")
    assert retry.status_code == 409 and retry.get_json()["error"]["code"] == "refund_state"
    send = api("finance", "post", f"/refunds/{refund['id']}/send")
    assert send.status_code == 503
    assert send.get_json()["error"]["code"] == "stripe_not_configured"

    paid = api(
        "finance", "post", f"/refunds/{refund['id']}/paid-offline", json={"note": "cash at shop"}
    )
    assert paid.status_code == 200
    assert paid.get_json()["status"] == "paid_offline"
    assert "cash at shop" in paid.get_json()["note"]
    twice = api("finance", "post", f"/refunds/{refund['id']}/paid-offline", json={"note": "again"})
    assert twice.status_code == 409

    listed = api("auditor", "get", f"/refunds?customer={customer.ref}&status=paid_offline")
    assert [r["id"] for r in listed.get_json()["items"]] == [refund["id"]]
    assert api("auditor", "get", "/refunds?status=pending").get_json()["total"] == 0


def test_staff_refund_with_a_key_is_made_once(api, customer):
    pay(api, customer.ref, 5000)
    body = {"amount_minor": 1000, "note": "double click", "idempotency_key": "req-1"}
    path = f"/customers/{customer.ref}/refunds"
    first = api("finance", "post", path, json=body)
    again = api("finance", "post", path, json=body)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["items"] == again.get_json()["items"]
    balance = api("admin", "get", f"/customers/{customer.ref}/balance").get_json()
    assert balance["balance_minor"] == 4000
    other = api("finance", "post", path, json={**body, "amount_minor": 999})
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_conflict"


def test_refund_refusals(api, customer):
    pay(api, customer.ref, 500)
    too_much = api(
        "finance",
        "post",
        f"/customers/{customer.ref}/refunds",
        json={"amount_minor": 501, "note": "n"},
    )
    assert too_much.status_code == 409
    assert too_much.get_json()["error"]["code"] == "insufficient_balance"
    no_note = api(
        "finance",
        "post",
        f"/customers/{customer.ref}/refunds",
        json={"amount_minor": 1, "note": " "},
    )
    assert no_note.status_code == 422 and no_note.get_json()["error"]["field"] == "note"
    for action in ("retry", "send"):
        missing = api("finance", "post", f"/refunds/999999/{action}")
        assert missing.status_code == 404
        assert missing.get_json()["error"]["code"] == "refund_not_found"
    missing = api("finance", "post", "/refunds/999999/paid-offline", json={"note": "n"})
    assert missing.status_code == 404
    assert api("finance", "post", "/refunds/0/retry").status_code == 404
    assert api("finance", "post", f"/refunds/{2**31}/retry").status_code == 404


def test_card_refund_is_sent_to_stripe_failed_retried_and_sent_again(
    api, client, db, session, customer, stripe_on
):
    gateway = StripeGateway(
        secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, api_base=stripe_on.base_url
    )
    policy = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)
    payment = stripe_payments.begin_checkout(
        db,
        gateway,
        customer_id=customer.id,
        amount_minor=8000,
        purpose="topup",
        actor=Actor.system("test"),
        now=utcnow(),
        policy=policy,
        urls=lambda pid: (f"https://shop.example/ok/{pid}", f"https://shop.example/no/{pid}"),
        description="Top-up",
    )
    post_event(
        client,
        stripe_on.event("checkout.session.completed", stripe_on.pay(payment.stripe_session_id)),
    )
    response = api(
        "finance",
        "post",
        f"/customers/{customer.ref}/refunds",
        json={"amount_minor": 3000, "note": "n"},
    )
    [refund] = response.get_json()["items"]
    assert refund["payment_id"] == payment.id

    stripe_on.refund_status = "failed"
    failed = api("finance", "post", f"/refunds/{refund['id']}/send")
    assert failed.status_code == 200, failed.get_json()
    assert failed.get_json()["status"] == "failed"
    retried = api("finance", "post", f"/refunds/{refund['id']}/retry")
    assert retried.status_code == 200
    assert (retried.get_json()["status"], retried.get_json()["attempts"]) == ("pending", 2)

    stripe_on.refund_status = "succeeded"
    sent = api("finance", "post", f"/refunds/{refund['id']}/send")
    assert sent.status_code == 200
    assert sent.get_json()["status"] == "succeeded"
    assert sent.get_json()["stripe_refund_id"].startswith("re_test_")
    # Sending a finished refund again changes nothing and calls nobody.
    calls = len(stripe_on.calls("POST", "/v1/refunds"))
    assert (
        api("finance", "post", f"/refunds/{refund['id']}/send").get_json()["status"] == "succeeded"
    )
    assert len(stripe_on.calls("POST", "/v1/refunds")) == calls
    session.expire_all()
    assert session.get(Refund, refund["id"]).status == "succeeded"


# -- vouchers -------------------------------------------------------------------------------


def test_batch_shows_pins_once_and_never_again(api):
    created = make_batch(api, count=3, value=1500)
    assert created["count"] == 3 and created["value_minor"] == 1500
    assert created["counts"] == {"available": 3}
    assert created["expires_at"].endswith("+00:00")
    pins = [v["pin"] for v in created["vouchers"]]
    assert len(pins) == 3 and all(len(p.replace(" ", "")) == 16 for p in pins)

    listed = api("auditor", "get", "/voucher-batches")
    detail = api("auditor", "get", f"/voucher-batches/{created['id']}")
    assert detail.status_code == 200
    assert [v["serial"] for v in detail.get_json()["vouchers"]] == [
        v["serial"] for v in created["vouchers"]
    ]
    assert [b["id"] for b in listed.get_json()["items"]] == [created["id"]]
    for response in (listed, detail):
        text = response.get_data(as_text=True)
        assert "pin" not in text.lower()
        assert not any(p in text or p.replace(" ", "") in text for p in pins)
    assert api("auditor", "get", "/voucher-batches/999999").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": 10_001}, "count"),
        ({"value_minor": 0}, "value_minor"),
        ({"name": ""}, "name"),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"expires_at": "9999-12-31T23:59:59-23:59"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
    ],
)
def test_batch_input_is_validated(api, change, field):
    payload = {"name": "B", "value_minor": 100, "count": 1, "expires_at": future(), **change}
    response = api("finance", "post", "/voucher-batches", json=payload)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field


def test_redeeming_a_voucher_credits_once(api, customer):
    created = make_batch(api, count=2, value=1500)
    first = created["vouchers"][0]
    response = api(
        "care",
        "post",
        f"/customers/{customer.ref}/voucher-redemptions",
        json={"serial": first["serial"], "pin": first["pin"]},
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["amount_minor"], body["balance_minor"], body["serial"]) == (
        1500,
        1500,
        first["serial"],
    )
    again = api(
        "care",
        "post",
        f"/customers/{customer.ref}/voucher-redemptions",
        json={"serial": first["serial"], "pin": first["pin"]},
    )
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "voucher_redeemed"
    detail = api("admin", "get", f"/voucher-batches/{created['id']}").get_json()
    assert detail["counts"] == {"available": 1, "redeemed": 1}
    assert detail["vouchers"][0]["redeemed_by_customer_ref"] == customer.ref


def test_void_voucher(api, customer):
    created = make_batch(api, count=2)
    used, spare = created["vouchers"]
    api(
        "care",
        "post",
        f"/customers/{customer.ref}/voucher-redemptions",
        json={"serial": used["serial"], "pin": used["pin"]},
    )
    voided = api("finance", "post", f"/vouchers/{spare['serial']}/void")
    assert voided.status_code == 200
    assert voided.get_json()["status"] == "void"
    assert api("finance", "post", f"/vouchers/{spare['serial']}/void").status_code == 200
    refused = api(
        "care",
        "post",
        f"/customers/{customer.ref}/voucher-redemptions",
        json={"serial": spare["serial"], "pin": spare["pin"]},
    )
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "voucher_void"
    redeemed = api("finance", "post", f"/vouchers/{used['serial']}/void")
    assert redeemed.status_code == 409
    for serial in ("V99999999999", "bad%01serial", "x" * 41):
        missing = api("finance", "post", f"/vouchers/{serial}/void")
        assert missing.status_code == 404
        assert missing.get_json()["error"]["code"] == "voucher_not_found"


def test_wrong_pins_are_kept_and_lock_the_customer_out(api, session, customer):
    created = make_batch(api, count=1)
    [voucher] = created["vouchers"]
    path = f"/customers/{customer.ref}/voucher-redemptions"
    for _ in range(5):
        wrong = api("care", "post", path, json={"serial": voucher["serial"], "pin": "0000"})
        assert wrong.status_code == 422
        assert wrong.get_json()["error"]["code"] == "voucher_invalid"
    # Each failure was committed although the request answered with an error.
    failures = select(func.count()).select_from(VoucherAttempt)
    assert session.exec(failures.where(VoucherAttempt.customer_id == customer.id)).one() == 5
    right = api("care", "post", path, json={"serial": voucher["serial"], "pin": voucher["pin"]})
    assert right.status_code == 429
    assert right.get_json()["error"]["code"] == "voucher_locked"
    balance = api("care", "get", f"/customers/{customer.ref}/balance").get_json()
    assert balance["balance_minor"] == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"serial": "V1"},
        {"pin": "1234"},
        {"serial": "V1<script>", "pin": "1"},
        {"serial": "V1", "pin": "x" * 41},
        {"serial": "V1", "pin": 1234},
    ],
)
def test_redemption_input_is_validated(api, customer, payload):
    response = api("care", "post", f"/customers/{customer.ref}/voucher-redemptions", json=payload)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_input"
