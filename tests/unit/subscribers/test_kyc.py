"""Real-name registration (app/subscribers/kyc.py) and personal data at rest (app/core/pii.py)."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session, select

from app.core.audit import Actor, AuditEntry
from app.core.errors import ConfigError, InvalidInput, NotFound
from app.core.pii import PiiCipher, mask_id_number, mask_name
from app.subscribers import kyc
from app.subscribers.models import Customer
from app.subscribers.services import create_customer
from tests.factories import NOW

ADMIN = Actor("staff", 7, "admin@example.com")
KEY_OLD = Fernet.generate_key().decode()
KEY_NEW = Fernet.generate_key().decode()


# -- masking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("11010519491231002X", "1101**********002X"),
        ("110105194912310022", "1101**********0022"),
        # 12 characters is the first length that keeps four at each end.
        ("ABCDEFGHIJKL", "ABCD****IJKL"),
        ("ABCDEFGHIJK", "A********JK"),
        ("E12345678", "E******78"),
        ("ABCD", "A*CD"),
        ("ABC", "***"),
        ("", ""),
        ("  E12345678  ", "E******78"),
    ],
)
def test_mask_id_number_keeps_only_the_ends(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked
    assert len(masked) == len(value.strip())


@pytest.mark.parametrize(
    ("value", "masked"),
    [("张伟", "张*"), ("欧阳娜娜", "欧***"), ("张", "张*"), ("Li Na", "L* N*"), ("", "")],
)
def test_mask_name(value: str, masked: str) -> None:
    assert mask_name(value) == masked


# -- the cipher -------------------------------------------------------------------------


def test_values_are_encrypted_and_come_back() -> None:
    cipher = PiiCipher(KEY_OLD)
    token = cipher.encrypt("11010519491231002X")
    assert "11010519491231002X" not in token
    assert cipher.encrypt("11010519491231002X") != token  # a fresh IV every time
    assert cipher.decrypt(token) == "11010519491231002X"


def test_a_rotated_key_still_reads_old_values_and_rotate_moves_them() -> None:
    token = PiiCipher(KEY_OLD).encrypt("E12345678")
    both = PiiCipher(f"{KEY_NEW}, {KEY_OLD}")
    assert both.decrypt(token) == "E12345678"
    # New values are written under the first (newest) key.
    assert PiiCipher(KEY_NEW).decrypt(both.encrypt("G7654321")) == "G7654321"
    rotated = both.rotate(token)
    assert PiiCipher(KEY_NEW).decrypt(rotated) == "E12345678"
    with pytest.raises(ConfigError):
        PiiCipher(KEY_OLD).decrypt(rotated)


def test_a_value_under_a_key_no_longer_listed_is_a_clear_error() -> None:
    token = PiiCipher(KEY_OLD).encrypt("E12345678")
    with pytest.raises(ConfigError, match="cannot be decrypted with PII_KEY"):
        PiiCipher(KEY_NEW).decrypt(token)


@pytest.mark.parametrize("keys", ["", " , ", "not-a-fernet-key", f"{KEY_NEW},short"])
def test_a_bad_pii_key_is_refused_at_start(keys: str) -> None:
    with pytest.raises(ConfigError, match="PII_KEY"):
        PiiCipher(keys)


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_type", "raw", "normalised"),
    [
        ("cn_ric", "11010519491231002X", "11010519491231002X"),
        ("cn_ric", "11010519491231002x", "11010519491231002X"),
        ("cn_ric", "110105 19491231 002X", "11010519491231002X"),
        ("cn_ric", "110105-19491231-002X", "11010519491231002X"),
        ("passport", "e12345678", "E12345678"),
        ("passport", "G 1234 5678", "G12345678"),
        ("passport", "AB123", "AB123"),
        ("passport", "A" * 20, "A" * 20),
    ],
)
def test_valid_ids_are_normalised(id_type: str, raw: str, normalised: str) -> None:
    assert kyc.normalize_id(id_type, raw) == normalised


@pytest.mark.parametrize(
    ("id_type", "raw", "field"),
    [
        # The check digit of 110105194912310022 is X, not 2.
        ("cn_ric", "110105194912310022", "id_number"),
        ("cn_ric", "11010519491331002X", "id_number"),  # month 13
        ("cn_ric", "1101051949123100", "id_number"),  # too short
        ("cn_ric", "A1010519491231002X", "id_number"),
        ("cn_ric", "", "id_number"),
        ("passport", "E123", "id_number"),
        ("passport", "A" * 21, "id_number"),
        ("passport", "E1234567!", "id_number"),
        ("passport", "护照12345", "id_number"),
        ("driving_licence", "E12345678", "id_type"),
    ],
)
def test_invalid_ids_are_refused_on_their_field(id_type: str, raw: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        kyc.normalize_id(id_type, raw)
    assert refused.value.field == field


def test_a_migrated_id_may_skip_only_the_check_digit() -> None:
    assert kyc.normalize_id("cn_ric", "110105194912310022", check_digit=False) == (
        "110105194912310022"
    )
    assert not kyc.id_check_digit_ok("cn_ric", "110105194912310022")
    assert kyc.id_check_digit_ok("cn_ric", "11010519491231002X")
    assert kyc.id_check_digit_ok("passport", "E12345678")
    with pytest.raises(InvalidInput):
        kyc.normalize_id("cn_ric", "11010519491331002X", check_digit=False)


# -- registering and revealing ----------------------------------------------------------


@pytest.fixture
def customer(session: Session) -> Customer:
    return create_customer(session, ref="C-KYC1", name="", now=NOW)


def _audits(session: Session, action: str) -> list[AuditEntry]:
    return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


def test_register_identity_keeps_the_number_only_encrypted_and_masked(
    session: Session, customer: Customer
) -> None:
    cipher = PiiCipher(KEY_OLD)
    kyc.register_identity(
        session,
        customer=customer,
        name=" 张伟 ",
        id_type="cn_ric",
        id_number="11010519491231002x",
        cipher=cipher,
        actor=ADMIN,
        now=NOW,
    )
    session.expire_all()
    stored = session.get(Customer, customer.id)
    assert stored is not None
    assert stored.name == "张伟" and stored.id_type == "cn_ric"
    assert stored.id_number_masked == "1101**********002X"
    assert stored.id_number_enc and "11010519491231002X" not in stored.id_number_enc
    assert cipher.decrypt(stored.id_number_enc) == "11010519491231002X"
    [audit] = _audits(session, "customer.identity")
    assert "11010519491231002X" not in json.dumps(audit.details)
    assert audit.details["id_number"] == "1101**********002X"


def test_a_refused_identity_changes_nothing(session: Session, customer: Customer) -> None:
    with pytest.raises(InvalidInput):
        kyc.register_identity(
            session,
            customer=customer,
            name="张伟",
            id_type="cn_ric",
            id_number="110105194912310022",
            cipher=PiiCipher(KEY_OLD),
            actor=ADMIN,
            now=NOW,
        )
    assert customer.id_number_enc is None and customer.name == ""
    assert _audits(session, "customer.identity") == []


def _registered(session: Session, customer: Customer, key: str = KEY_OLD) -> Customer:
    return kyc.register_identity(
        session,
        customer=customer,
        name="Li Na",
        id_type="passport",
        id_number="E12345678",
        cipher=PiiCipher(key),
        actor=ADMIN,
        now=NOW,
    )


def test_reveal_returns_the_clear_value_and_audits_who_why_and_where(
    session: Session, customer: Customer
) -> None:
    _registered(session, customer)
    value = kyc.reveal_id_number(
        session,
        customer=customer,
        cipher=PiiCipher(f"{KEY_NEW},{KEY_OLD}"),
        actor=ADMIN,
        reason="police request 42",
        now=NOW,
        ip="203.0.113.9",
    )
    assert value == "E12345678"
    [audit] = _audits(session, "customer.reveal_id")
    assert (audit.actor_kind, audit.actor_id, audit.actor_label) == ("staff", 7, ADMIN.label)
    assert audit.ip == "203.0.113.9" and audit.target_id == "C-KYC1"
    assert audit.details == {"id_number": "E******78", "reason": "police request 42"}


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "bad\x07reason"])
def test_reveal_needs_a_proper_reason(session: Session, customer: Customer, reason: str) -> None:
    _registered(session, customer)
    with pytest.raises(InvalidInput) as refused:
        kyc.reveal_id_number(
            session,
            customer=customer,
            cipher=PiiCipher(KEY_OLD),
            actor=ADMIN,
            reason=reason,
            now=NOW,
        )
    assert refused.value.field == "reason"
    assert _audits(session, "customer.reveal_id") == []


def test_reveal_without_an_id_on_record_is_not_found(session: Session, customer: Customer) -> None:
    with pytest.raises(NotFound):
        kyc.reveal_id_number(
            session,
            customer=customer,
            cipher=PiiCipher(KEY_OLD),
            actor=ADMIN,
            reason="checking",
            now=NOW,
        )


def test_reveal_under_the_wrong_key_is_a_clear_error_and_not_audited(
    session: Session, customer: Customer
) -> None:
    _registered(session, customer, key=KEY_OLD)
    with pytest.raises(ConfigError, match="PII_KEY"):
        kyc.reveal_id_number(
            session,
            customer=customer,
            cipher=PiiCipher(KEY_NEW),
            actor=ADMIN,
            reason="checking",
            now=NOW,
        )
    assert _audits(session, "customer.reveal_id") == []
