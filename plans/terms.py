"""The terms of a plan or add-on as staff, the API or a catalog file give them, checked.

Validation here is pure: it reads no database and returns the input
cleaned (trimmed texts), or raises `InvalidInput` naming the first bad
field. Codes are 2 to 40 characters of A-Z, 0-9, _ and -; texts are given
per locale (zh_Hans, en); amounts are whole numbers that fit the INTEGER
columns.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import N_, InvalidInput, clean_text
from plans.models import MAX_VALIDITY_DAYS, PLAN_STATUSES

LOCALES = ("zh_Hans", "en")
PLAN_CODE_RE = re.compile(r"[A-Z0-9_-]{2,40}")
MAX_NAME_LENGTH = 40
MAX_DESCRIPTION_LENGTH = 500
MAX_VOICE_INCREMENT_S = 3600
# Amounts are stored in INTEGER columns; larger values would fail in PostgreSQL.
MAX_INT = 2**31 - 1


@dataclass(frozen=True, kw_only=True)
class PlanInput:
    """The terms of a plan as staff, the API or a catalog file give them."""

    code: str
    names: dict[str, str]
    descriptions: dict[str, str] = field(default_factory=dict)
    host_id: int
    price_minor: int
    validity_days: int
    data_mb: int = 0
    voice_min: int = 0
    sms: int = 0
    overage_data_per_mb_minor: int = 0
    overage_voice_per_min_minor: int = 0
    overage_sms_minor: int = 0
    voice_increment_s: int = 60
    auto_renew_default: bool = True

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict, under the name pydantic models use for it (the web layer's)."""
        return dataclasses.asdict(self)


def check_int(value: object, *, name: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """`value` if it is a whole number (not a bool) from `minimum` to `maximum`. Pure.

    :raises InvalidInput: naming `name`.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(N_("%(name)s must be a whole number."), field=name, name=name)
    if value < 0 and minimum == 0:
        raise InvalidInput(N_("%(name)s must not be negative."), field=name, name=name)
    if not minimum <= value <= maximum:
        raise InvalidInput(
            N_("%(name)s must be from %(min)s to %(max)s; got %(value)s."),
            field=name,
            name=name,
            min=minimum,
            max=maximum,
            value=value,
        )
    return value


def check_code(code: object, *, name: str = "code") -> str:
    """`code` trimmed, if it is 2 to 40 characters of A-Z, 0-9, _ and -. Pure.

    :raises InvalidInput: naming `name`.
    """
    text = code.strip() if isinstance(code, str) else ""
    if not PLAN_CODE_RE.fullmatch(text):
        raise InvalidInput(
            N_("A code is 2 to 40 characters of A-Z, 0-9, _ and -; got %(value)r."),
            field=name,
            value=text,
        )
    return text


def clean_localized(
    values: object, *, name: str, max_length: int, required: bool
) -> dict[str, str]:
    """Texts per locale (zh_Hans, en): known locales only, no control characters.

    Empty texts are dropped; `required` asks for at least one.
    :raises InvalidInput: naming ``name.locale`` for a bad text.
    """
    if not isinstance(values, dict):
        raise InvalidInput(
            N_("%(name)s must give a text per language (%(locales)s)."),
            field=name,
            name=name,
            locales=", ".join(LOCALES),
        )
    cleaned: dict[str, str] = {}
    for locale, text in values.items():
        if locale not in LOCALES:
            raise InvalidInput(
                N_("%(name)s has an unknown language %(locale)r; use %(locales)s."),
                field=name,
                name=name,
                locale=locale,
                locales=", ".join(LOCALES),
            )
        key = f"{name}.{locale}"
        if not isinstance(text, str):
            raise InvalidInput(N_("%(name)s must be text."), field=key, name=key)
        text = clean_text(text, field=key, max_length=max_length)
        if text:
            cleaned[locale] = text
    if required and not cleaned:
        raise InvalidInput(
            N_("%(name)s needs a text in at least one of %(locales)s."),
            field=name,
            name=name,
            locales=", ".join(LOCALES),
        )
    return cleaned


def validate_plan_input(data: PlanInput) -> PlanInput:
    """Check every field of a plan's terms and return them cleaned (trimmed texts).

    Pure. :raises InvalidInput: naming the first bad field.
    """
    code = check_code(data.code)
    names = clean_localized(data.names, name="names", max_length=MAX_NAME_LENGTH, required=True)
    descriptions = clean_localized(
        data.descriptions,
        name="descriptions",
        max_length=MAX_DESCRIPTION_LENGTH,
        required=False,
    )
    check_int(data.host_id, name="host_id", minimum=1)
    check_int(data.price_minor, name="price_minor")
    if (
        isinstance(data.validity_days, int)
        and not isinstance(data.validity_days, bool)
        and not 1 <= data.validity_days <= MAX_VALIDITY_DAYS
    ):
        # Nothing may be prepaid more than 24 months ahead (§5), so no period is longer.
        raise InvalidInput(
            N_(
                "validity_days must be from 1 to %(max)s days (at most 24 months of "
                "prepaid service); got %(value)s."
            ),
            field="validity_days",
            max=MAX_VALIDITY_DAYS,
            value=data.validity_days,
        )
    check_int(data.validity_days, name="validity_days", minimum=1, maximum=MAX_VALIDITY_DAYS)
    for name in (
        "data_mb",
        "voice_min",
        "sms",
        "overage_data_per_mb_minor",
        "overage_voice_per_min_minor",
        "overage_sms_minor",
    ):
        check_int(getattr(data, name), name=name)
    check_int(
        data.voice_increment_s, name="voice_increment_s", minimum=1, maximum=MAX_VOICE_INCREMENT_S
    )
    if not isinstance(data.auto_renew_default, bool):
        raise InvalidInput(
            N_("%(name)s must be true or false."),
            field="auto_renew_default",
            name="auto_renew_default",
        )
    return dataclasses.replace(data, code=code, names=names, descriptions=descriptions)


def plan_terms(data: PlanInput, *, currency: str) -> dict[str, Any]:
    """The terms of validated input, keyed like `Plan.terms()`, priced in `currency`."""
    return {
        "names": dict(data.names),
        "descriptions": dict(data.descriptions),
        "host_id": data.host_id,
        "currency": currency,
        "price_minor": data.price_minor,
        "validity_days": data.validity_days,
        "data_mb": data.data_mb,
        "voice_min": data.voice_min,
        "sms": data.sms,
        "overage_data_per_mb_minor": data.overage_data_per_mb_minor,
        "overage_voice_per_min_minor": data.overage_voice_per_min_minor,
        "overage_sms_minor": data.overage_sms_minor,
        "voice_increment_s": data.voice_increment_s,
        "auto_renew_default": data.auto_renew_default,
    }


def check_status(status: str, *, name: str = "status") -> str:
    """`status` if it is draft, published or retired. Pure.

    :raises InvalidInput: naming `name`.
    """
    if status not in PLAN_STATUSES:
        raise InvalidInput(
            N_("Status must be one of %(statuses)s; got %(status)r."),
            field=name,
            statuses=", ".join(PLAN_STATUSES),
            status=status,
        )
    return status
