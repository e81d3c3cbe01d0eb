"""The forms say each text limit: a `maxlength` on the input, and one character more is
refused beside the field with a message naming the limit (the store in both languages).

The services enforce the same limits (tests/unit/test_field_limits.py); these
tests are about what a person filling in the page sees.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from sqlmodel import Session

from app.core import limits
from app.subscribers import services as subscribers
from tests.conftest import csrf_token
from tests.factories import NOW, PASSWORD, login_staff, make_staff
from tests.integration.test_purchase_web import choose_number, post, register
from tests.integration.test_purchase_web import world as world
from tests.unit.subscribers.helpers import World


def over_message(limit: int, lang: str = "en") -> str:
    if lang == "en":
        return f"Use at most {limit} characters (this has {limit + 1})."
    return f"最多 {limit} 个字符（现在有 {limit + 1} 个）。"


def page_text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def admin(client: Any, session: Session) -> Any:
    make_staff(session, role="admin", email="limits-admin@example.com")
    login_staff(client, "limits-admin@example.com")
    return client


def _post(client: Any, path: str, page: str, data: dict[str, str]) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)})


# -- console --------------------------------------------------------------------------------

CONSOLE_FORMS = [
    (
        "staff name",
        "/console/staff",
        "/console/staff",
        {"email": "new@example.com", "role": "care", "password": PASSWORD},
        "name",
        limits.PERSON_NAME,
    ),
    (
        "host name",
        "/console/hosts",
        "/console/hosts",
        {"code": "HOSTL", "currency": "CNY", "timezone": "Asia/Shanghai", "provisioning": "log"},
        "name",
        limits.LABEL,
    ),
    (
        "plan name",
        "/console/plans/new",
        "/console/plans/new",
        {"code": "LIMIT1", "price": "10.00", "validity_days": "30", "data_mb": "0"},
        "name_en",
        40,
    ),
    (
        "plan description",
        "/console/plans/new",
        "/console/plans/new",
        {"code": "LIMIT2", "name_en": "Limit", "price": "10.00", "validity_days": "30"},
        "description_en",
        500,
    ),
    (
        "voucher batch name",
        "/console/vouchers",
        "/console/vouchers",
        {"value": "50.00", "count": "1", "expires_at": "2099-01-01"},
        "name",
        limits.LABEL,
    ),
    (
        "offline payment reference",
        "/console/customers/C-0001/payments",
        "/console/customers/C-0001",
        {"payment-method": "cash", "payment-amount": "10.00"},
        "payment-reference",
        limits.REFERENCE,
    ),
    (
        "offline payment memo",
        "/console/customers/C-0001/payments",
        "/console/customers/C-0001",
        {"payment-method": "cash", "payment-amount": "10.00", "payment-reference": "R-1"},
        "payment-memo",
        limits.MEMO,
    ),
    (
        "adjustment reason",
        "/console/customers/C-0001/adjust",
        "/console/customers/C-0001",
        {"adjust-amount": "1.00", "adjust-token": "t" * 22},
        "adjust-reason",
        limits.NOTE,
    ),
]


@pytest.fixture
def customer(session: Session) -> Any:
    found = subscribers.create_customer(session, ref="C-0001", name="Li Lei", now=NOW)
    session.flush()
    return found


@pytest.mark.parametrize(
    ("what", "path", "page", "data", "field", "limit"),
    CONSOLE_FORMS,
    ids=[case[0] for case in CONSOLE_FORMS],
)
def test_console_forms_say_their_limits(
    admin: Any,
    customer: Any,
    what: str,
    path: str,
    page: str,
    data: dict[str, str],
    field: str,
    limit: int,
) -> None:
    shown = admin.get(page).get_data(as_text=True)
    assert f'name="{field}"' in shown and f'maxlength="{limit}"' in shown
    refused = _post(admin, path, page, {**data, field: "x" * (limit + 1)})
    assert refused.status_code == 422
    assert over_message(limit) in page_text(refused)


def test_the_console_identity_form_says_the_name_limit(admin: Any, customer: Any) -> None:
    page = "/console/customers/C-0001"
    assert f'maxlength="{limits.PERSON_NAME}"' in admin.get(page).get_data(as_text=True)
    refused = _post(
        admin,
        f"{page}/identity",
        page,
        {
            "identity-name": "名" * (limits.PERSON_NAME + 1),
            "identity-id_type": "passport",
            "identity-id_number": "E12345678",
        },
    )
    assert refused.status_code == 302
    assert over_message(limits.PERSON_NAME) in page_text(admin.get(page))
    assert customer.id_number_masked is None


# -- store ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_store_registration_says_the_name_limit(client: Any, zh_client: Any, lang: str) -> None:
    browser = zh_client if lang == "zh_Hans" else client
    shown = browser.get("/register").get_data(as_text=True)
    assert f'maxlength="{limits.PERSON_NAME}"' in shown
    refused = _post(
        browser,
        "/register",
        "/register",
        {
            "email": f"limit-{lang}@example.com",
            "display_name": "名" * (limits.PERSON_NAME + 1),
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert refused.status_code == 422
    assert over_message(limits.PERSON_NAME, lang) in page_text(refused)


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_the_real_name_step_says_the_name_limit(
    client: Any, zh_client: Any, world: World, lang: str
) -> None:
    browser = zh_client if lang == "zh_Hans" else client
    choose_number(browser, world)
    register(browser)
    checkout = browser.get("/buy/checkout").get_data(as_text=True)
    assert f'maxlength="{limits.PERSON_NAME}"' in checkout
    refused = post(
        browser,
        "/buy/identity",
        "/buy/checkout",
        name="名" * (limits.PERSON_NAME + 1),
        id_type="passport",
        id_number="E12345678",
    )
    assert refused.status_code == 422
    assert over_message(limits.PERSON_NAME, lang) in page_text(refused)
