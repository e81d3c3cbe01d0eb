"""Every free-text field has a limit its service enforces (app/core/limits.py, plans/terms.py).

One table: the service call, the field it names and its limit. At the limit
the service does not refuse the text (it may refuse something else: the row
it would change need not exist); one character more is refused with
`InvalidInput` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session

from app.auth.api_keys import create_api_key
from app.auth.services import create_staff, register_subscriber
from app.core import limits
from app.core.audit import Actor
from app.core.errors import DomainError, InvalidInput
from app.core.pii import PiiCipher
from app.ledger.movements import adjust_balance
from app.onboarding.purchase import record_store_payment
from app.payments.refunds import mark_refund_paid_offline, request_refund
from app.payments.services import MoneyPolicy, record_offline_payment
from app.payments.vouchers import create_voucher_batch
from app.subscribers import kyc
from app.subscribers.lifecycle import suspend_line
from app.subscribers.models import Customer
from app.subscribers.services import create_customer
from plans.addons import validate_addon_input
from plans.terms import PlanInput, validate_plan_input
from tests.factories import NOW
from wholesale.runs import resolve_dispute
from wholesale.services import validate_host_fields

ACTOR = Actor.system("test")
POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)
CIPHER = PiiCipher(Fernet.generate_key().decode("ascii"))
MISSING = 999_999  # no row has this id
_refs = iter(range(1, 10_000))


def _customer(session: Session) -> int:
    customer = create_customer(session, ref=f"C-L{next(_refs):04d}", now=NOW)
    assert customer.id is not None
    return customer.id


def _plan(*, names: str | None = None, descriptions: str | None = None) -> PlanInput:
    return PlanInput(
        code="LITE30",
        names={"en": names if names is not None else "Lite"},
        descriptions={"en": descriptions} if descriptions is not None else {},
        host_id=1,
        price_minor=3900,
        validity_days=30,
    )


Call = Callable[[Session, str], Any]

CASES: list[tuple[str, Call, str, int]] = [
    (
        "customer name",
        lambda s, t: create_customer(s, ref=f"C-N{next(_refs):04d}", name=t, now=NOW),
        "name",
        limits.PERSON_NAME,
    ),
    (
        "customer e-mail",
        lambda s, t: create_customer(s, ref=f"C-E{next(_refs):04d}", email=t, now=NOW),
        "email",
        limits.EMAIL,
    ),
    (
        "real name",
        lambda s, t: kyc.register_identity(
            s,
            customer=s.get_one(Customer, _customer(s)),
            name=t,
            id_type="passport",
            id_number="E12345678",
            cipher=CIPHER,
            actor=ACTOR,
            now=NOW,
        ),
        "name",
        limits.PERSON_NAME,
    ),
    (
        "reason to see an ID",
        lambda s, t: kyc.reveal_id_number(
            s,
            customer=s.get_one(Customer, _customer(s)),
            cipher=CIPHER,
            actor=ACTOR,
            reason=t,
            now=NOW,
        ),
        "reason",
        limits.NOTE,
    ),
    (
        "subscriber display name",
        lambda s, t: register_subscriber(
            s,
            email=f"limit{next(_refs)}@example.com",
            password="a-long-password",
            display_name=t,
            now=NOW,
        ),
        "display_name",
        limits.PERSON_NAME,
    ),
    (
        "staff name",
        lambda s, t: create_staff(
            s,
            email=f"staff-limit{next(_refs)}@example.com",
            role="care",
            password="a-long-password",
            name=t,
            actor=ACTOR,
            now=NOW,
        ),
        "name",
        limits.PERSON_NAME,
    ),
    (
        "API key name",
        lambda s, t: create_api_key(s, name=t, role="care", actor=ACTOR, now=NOW),
        "name",
        limits.LABEL,
    ),
    (
        "host name",
        lambda s, t: validate_host_fields(code="HOSTL", name=t),
        "name",
        limits.LABEL,
    ),
    (
        "plan name",
        lambda s, t: validate_plan_input(_plan(names=t)),
        "names.en",
        40,
    ),
    (
        "plan description",
        lambda s, t: validate_plan_input(_plan(descriptions=t)),
        "descriptions.en",
        500,
    ),
    (
        "add-on name",
        lambda s, t: validate_addon_input(
            code="DATA1G", names={"zh_Hans": t}, price_minor=500, data_mb=1024, status="draft"
        ),
        "names.zh_Hans",
        40,
    ),
    (
        "voucher batch name",
        lambda s, t: create_voucher_batch(
            s,
            name=t,
            value_minor=5000,
            count=1,
            expires_at=NOW + timedelta(days=30),
            currency="CNY",
            actor=ACTOR,
            now=NOW,
        ),
        "name",
        limits.LABEL,
    ),
    (
        "offline payment reference",
        lambda s, t: record_offline_payment(
            s,
            customer_id=_customer(s),
            amount_minor=1000,
            method="cash",
            reference=t,
            actor=ACTOR,
            now=NOW,
            policy=POLICY,
        ),
        "reference",
        limits.REFERENCE,
    ),
    (
        "offline payment memo",
        lambda s, t: record_offline_payment(
            s,
            customer_id=_customer(s),
            amount_minor=1000,
            method="bank_transfer",
            reference=f"R-{next(_refs)}",
            memo=t,
            actor=ACTOR,
            now=NOW,
            policy=POLICY,
        ),
        "memo",
        limits.MEMO,
    ),
    (
        "store payment reference",
        lambda s, t: record_store_payment(
            s,
            order_id=MISSING,
            method="cash",
            reference=t,
            actor=ACTOR,
            now=NOW,
            policy=POLICY,
        ),
        "reference",
        limits.REFERENCE,
    ),
    (
        "adjustment reason",
        lambda s, t: adjust_balance(
            s,
            customer_id=_customer(s),
            amount_minor=100,
            reason=t,
            idempotency_key=f"adjust:limit-{next(_refs)}",
            actor=ACTOR,
            now=NOW,
            cap_months=24,
            reference_monthly_minor=5000,
            currency="CNY",
        ),
        "reason",
        limits.NOTE,
    ),
    (
        "staff refund note",
        lambda s, t: request_refund(
            s,
            customer_id=_customer(s),
            amount_minor=100,
            reason="staff",
            note=t,
            actor=ACTOR,
            now=NOW,
            currency="CNY",
        ),
        "note",
        limits.NOTE,
    ),
    (
        "refund paid by hand",
        lambda s, t: mark_refund_paid_offline(s, refund_id=MISSING, note=t, actor=ACTOR, now=NOW),
        "note",
        limits.NOTE,
    ),
    (
        "line action reason",
        lambda s, t: suspend_line(s, line_id=MISSING, reason=t, actor=ACTOR, now=NOW),
        "reason",
        limits.NOTE,
    ),
    (
        "dispute note",
        lambda s, t: resolve_dispute(s, dispute_id=MISSING, note=t, actor=ACTOR, now=NOW),
        "note",
        limits.NOTE,
    ),
]


def refused_field(session: Session, call: Call, text: str) -> str | None:
    """The field an `InvalidInput` names, or None when the text is not what is refused."""
    try:
        with session.begin_nested():
            call(session, text)
    except InvalidInput as exc:
        return exc.field
    except DomainError:
        return None
    return None


def _text(length: int, field: str) -> str:
    # A valid e-mail-shaped text where the field is an address; any letters elsewhere.
    if field == "email":
        return "a" * (length - len("@example.com")) + "@example.com"
    return "名" * length if field.endswith("zh_Hans") or field == "name" else "x" * length


@pytest.mark.parametrize(("what", "call", "field", "limit"), CASES, ids=[case[0] for case in CASES])
def test_text_at_its_limit_is_accepted(
    session: Session, what: str, call: Call, field: str, limit: int
) -> None:
    assert refused_field(session, call, _text(limit, field)) != field


@pytest.mark.parametrize(("what", "call", "field", "limit"), CASES, ids=[case[0] for case in CASES])
def test_one_character_over_the_limit_is_refused_naming_the_field(
    session: Session, what: str, call: Call, field: str, limit: int
) -> None:
    assert refused_field(session, call, _text(limit + 1, field)) == field


def test_the_limits_are_what_the_pages_promise() -> None:
    assert (limits.PERSON_NAME, limits.EMAIL, limits.REFERENCE) == (60, 254, 40)
    assert limits.MEMO <= limits.NOTE <= 500
