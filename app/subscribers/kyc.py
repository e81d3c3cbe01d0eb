"""Real-name registration (DESIGN §10): ID validation, encrypted storage, reveal.

Chinese resident ID numbers are checked with python-stdnum's `cn.ric`
(format, birth date, region and check digit); a passport number must be 5
to 20 letters and digits. The number is stored encrypted with PII_KEY
(`Customer.id_number_enc`) beside its masked form; `reveal_id_number` is
the only way back to the clear value and writes an audit record.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.errors import N_, InvalidInput, NotFound, clean_text
from app.core.pii import PiiCipher, mask_id_number
from app.subscribers.models import ID_TYPES, Customer

_PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")


def normalize_id(
    id_type: str, id_number: str, *, field: str = "id_number", check_digit: bool = True
) -> str:
    """The canonical form of an ID number. :raises InvalidInput: naming what is wrong.

    `check_digit=False` accepts a resident ID whose last character does not
    match (everything else — length, digits, birth date, region — is still
    checked): records migrated from another platform were verified there,
    and the sample file's IDs carry such check digits; the importer counts
    them so care can review them (`id_check_digit_mismatch`).
    """
    if id_type not in ID_TYPES:
        raise InvalidInput(N_("Choose an ID type."), field="id_type")
    value = re.sub(r"[\s-]", "", id_number or "").upper()
    if not value:
        raise InvalidInput(N_("Enter the ID number."), field=field)
    if id_type == "cn_ric":
        try:
            if check_digit:
                return str(ric.validate(value))
            if len(value) != 18 or not value[:17].isdigit() or value[17] not in "0123456789X":
                raise ValidationError()
            ric.get_birth_date(value)
            ric.get_birth_place(value)
            return value
        except ValidationError:
            raise InvalidInput(
                N_("This is not a valid Chinese resident ID number."), field=field
            ) from None
    if not _PASSPORT.match(value):
        raise InvalidInput(N_("A passport number has 5 to 20 letters and digits."), field=field)
    return value


def id_check_digit_ok(id_type: str, value: str) -> bool:
    """Whether a normalised ID number's check digit is right (passports have none)."""
    return id_type != "cn_ric" or ric.is_valid(value)


def register_identity(
    session: Session,
    *,
    customer: Customer,
    name: str,
    id_type: str,
    id_number: str,
    cipher: PiiCipher,
    actor: Actor,
    now: datetime,
) -> Customer:
    """Record a customer's real name and ID (validated, encrypted, masked) and audit it."""
    name = clean_text(name, field="name", max_length=limits.PERSON_NAME, required=True)
    value = normalize_id(id_type, id_number)
    customer.name = name
    customer.id_type = id_type
    customer.id_number_enc = cipher.encrypt(value)
    customer.id_number_masked = mask_id_number(value)
    session.add(customer)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="customer.identity",
        now=now,
        target_type="customer",
        target_id=customer.ref,
        details={"id_type": id_type, "id_number": customer.id_number_masked},
    )
    return customer


def reveal_id_number(
    session: Session,
    *,
    customer: Customer,
    cipher: PiiCipher,
    actor: Actor,
    reason: str,
    now: datetime,
    ip: str | None = None,
) -> str:
    """The clear ID number, for one staff look; audited with the reason given."""
    reason = clean_text(reason, field="reason", max_length=limits.NOTE, required=True)
    if not customer.id_number_enc:
        raise NotFound(N_("Customer %(ref)s has no ID on record."), ref=customer.ref)
    value = cipher.decrypt(customer.id_number_enc)
    record_audit(
        session,
        actor=actor,
        action="customer.reveal_id",
        now=now,
        target_type="customer",
        target_id=customer.ref,
        details={"id_number": customer.id_number_masked, "reason": reason},
        ip=ip,
    )
    return value
