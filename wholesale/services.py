"""Host carriers and their rate cards (DESIGN §7).

Rules:

* A host is identified by its code (2–20 of ``A-Z 0-9 _ -``); its currency is
  an ISO 4217 code, its time zone an IANA zone (it fixes the host's business
  dates and settlement months), and its provisioning adapter is ``log`` or
  ``http`` — ``http`` needs an http(s) URL.
* A rate card applies from its ``effective_from`` date (a date in the host's
  time zone) until the next card of the same host. Cards are never edited:
  adding the same card twice is a no-op, a card for an existing date with
  other prices is refused, and a price change is a new card with a new date.
* Each wholesale price sits beside the host's best public retail price for
  the same service; a wholesale price that is not strictly below it is
  non-compliant (`RateCard.compliant`), which the audit record of the card
  and the console show.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime
from functools import cache
from typing import Any

from babel.numbers import list_currencies
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core import limits
from app.core.audit import Actor, apply_changes, record_audit
from app.core.db import insert_unique
from app.core.errors import N_, InvalidInput, clean_text
from wholesale.errors import HostCodeTaken, HostNotFound, RateCardConflict
from wholesale.models import PRICE_UNITS, SERVICES, HostCarrier, RateCard

HOST_CODE_RE = re.compile(r"[A-Z0-9_-]{2,20}")
PROVISIONING_ADAPTERS = ("log", "http")
_URL_RE = re.compile(r"https?://[^\s/?#]+[^\s]*")
# Prices are stored in INTEGER columns; larger values would fail in PostgreSQL.
MAX_PRICE_MICRO = 2**31 - 1
_HOST_FIELDS = ("name", "currency", "timezone", "provisioning", "provisioning_url")


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def validate_host_fields(
    *,
    code: str,
    name: str,
    currency: str = "CNY",
    timezone: str = "Asia/Shanghai",
    provisioning: str = "log",
    provisioning_url: str | None = None,
) -> dict[str, Any]:
    """Check a host's fields and return them cleaned, keyed by column.

    Pure: the catalog loader uses it to report every bad row before loading.
    :raises InvalidInput: naming the field.
    """
    code = (code or "").strip() if isinstance(code, str) else ""
    if not HOST_CODE_RE.fullmatch(code):
        raise InvalidInput(
            N_("A host code is 2 to 20 characters of A-Z, 0-9, _ and -; got %(value)r."),
            field="code",
            value=code,
        )
    for field, value in (("name", name), ("provisioning_url", provisioning_url)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(N_("%(name)s must be text."), field=field, name=field)
    name = clean_text(name, field="name", max_length=limits.LABEL, required=True)
    if not isinstance(currency, str) or currency.strip() not in _known_currencies():
        raise InvalidInput(
            N_("%(currency)r is not an ISO 4217 currency code such as CNY."),
            field="currency",
            currency=currency,
        )
    if not isinstance(timezone, str) or timezone.strip() not in _known_timezones():
        raise InvalidInput(
            N_("%(timezone)r is not a time zone such as Asia/Shanghai."),
            field="timezone",
            timezone=timezone,
        )
    if provisioning not in PROVISIONING_ADAPTERS:
        raise InvalidInput(
            N_("Provisioning must be one of %(adapters)s; got %(provisioning)r."),
            field="provisioning",
            adapters=", ".join(PROVISIONING_ADAPTERS),
            provisioning=provisioning,
        )
    url = clean_text(provisioning_url, field="provisioning_url", max_length=500) or None
    if url is not None and not _URL_RE.fullmatch(url):
        raise InvalidInput(
            N_("The provisioning URL must start with http:// or https://; got %(url)r."),
            field="provisioning_url",
            url=url,
        )
    if provisioning == "http" and url is None:
        raise InvalidInput(
            N_("The http provisioning adapter needs a provisioning URL."),
            field="provisioning_url",
        )
    return {
        "code": code,
        "name": name,
        "currency": currency.strip(),
        "timezone": timezone.strip(),
        "provisioning": provisioning,
        "provisioning_url": url,
    }


def upsert_host(
    session: Session,
    *,
    code: str,
    name: str,
    currency: str = "CNY",
    timezone: str = "Asia/Shanghai",
    provisioning: str = "log",
    provisioning_url: str | None = None,
    actor: Actor,
    now: datetime,
) -> HostCarrier:
    """Create a host, or update the one with this code.

    Locks an existing host row. Idempotent: unchanged fields write nothing.
    The audit record lists each changed field with its value before and after.
    :raises InvalidInput: a bad field. :raises HostCodeTaken: created concurrently.
    """
    fields = validate_host_fields(
        code=code,
        name=name,
        currency=currency,
        timezone=timezone,
        provisioning=provisioning,
        provisioning_url=provisioning_url,
    )
    host = session.exec(
        select(HostCarrier).where(HostCarrier.code == fields["code"]).with_for_update()
    ).first()
    if host is None:
        host = HostCarrier(**fields, created_at=now)
        insert_unique(
            session,
            host,
            HostCodeTaken(
                N_("Host %(host)s was created at the same time by someone else; try again."),
                field="code",
                host=fields["code"],
            ),
        )
        record_audit(
            session,
            actor=actor,
            action="host.create",
            now=now,
            target_type="host_carrier",
            target_id=host.id,
            details=fields,
        )
        return host
    changes = apply_changes(host, {field: fields[field] for field in _HOST_FIELDS})
    if changes:
        session.add(host)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="host.update",
            now=now,
            target_type="host_carrier",
            target_id=host.id,
            details={"code": host.code, "changes": changes},
        )
    return host


def set_provisioning_secret(
    session: Session, *, host_id: int, secret: str | None, actor: Actor, now: datetime
) -> HostCarrier:
    """Set (or clear, with None or "") the key of the http adapter's `X-Signature`.

    Stored as given: the host verifies with the same value. Locks the host
    row. The audit record says that the secret changed, never its value.
    :raises HostNotFound: :raises InvalidInput: a secret that is too short or long.
    """
    value = clean_text(secret, field="provisioning_secret", max_length=200) or None
    if value is not None and len(value) < 16:
        raise InvalidInput(
            N_("The provisioning secret must be at least 16 characters."),
            field="provisioning_secret",
        )
    host = session.exec(
        select(HostCarrier).where(HostCarrier.id == host_id).with_for_update()
    ).first()
    if host is None:
        raise HostNotFound(N_("No host carrier %(id)s."), id=host_id)
    if host.provisioning_secret == value:
        return host
    host.provisioning_secret = value
    session.add(host)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="host.provisioning_secret",
        now=now,
        target_type="host_carrier",
        target_id=host.id,
        details={"set": value is not None},
    )
    return host


def get_host(session: Session, host_id: int) -> HostCarrier:
    """The host carrier `host_id`. :raises HostNotFound."""
    host = session.get(HostCarrier, host_id)
    if host is None:
        raise HostNotFound(N_("No host carrier %(id)s."), id=host_id)
    return host


def find_host_by_code(session: Session, code: str) -> HostCarrier | None:
    """The host carrier with this code (surrounding spaces ignored), or None."""
    return session.exec(select(HostCarrier).where(HostCarrier.code == code.strip())).first()


def get_host_by_code(session: Session, code: str) -> HostCarrier:
    """The host carrier with this code. :raises HostNotFound (field `host`)."""
    host = find_host_by_code(session, code)
    if host is None:
        raise HostNotFound(N_("No host carrier with code %(host)s."), field="host", host=code)
    return host


def list_hosts(session: Session) -> list[HostCarrier]:
    """Every host carrier, by code."""
    return list(session.exec(select(HostCarrier).order_by(col(HostCarrier.code))))


def local_date(timezone: str, *, now: datetime) -> date:
    """The calendar date at instant `now` in `timezone`."""
    return now.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def host_date(host: HostCarrier, *, now: datetime) -> date:
    """Today's date in the host's time zone: the date rate cards and months refer to."""
    return local_date(host.timezone, now=now)


# -- rate cards ----------------------------------------------------------------------


def _check_prices(prices: dict[str, int], *, field: str) -> None:
    if not isinstance(prices, dict) or set(prices) != set(SERVICES):
        given = sorted(prices) if isinstance(prices, dict) else []
        raise InvalidInput(
            N_("%(prices)s must have exactly the services %(services)s; got %(given)s."),
            field=field,
            prices=field,
            services=", ".join(SERVICES),
            given=", ".join(given) or "nothing",
        )
    for service in SERVICES:
        value = prices[service]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(
                N_("The %(service)s price in %(prices)s must be a whole number of micro-units."),
                field=field,
                prices=field,
                service=service,
            )
        if value < 0:
            raise InvalidInput(
                N_("The %(service)s price in %(prices)s must not be negative."),
                field=field,
                prices=field,
                service=service,
            )
        if value > MAX_PRICE_MICRO:
            raise InvalidInput(
                N_("The %(service)s price in %(prices)s is too large."),
                field=field,
                prices=field,
                service=service,
            )


def validate_rate_card_prices(prices_micro: dict[str, int], retail_micro: dict[str, int]) -> None:
    """Both price sets name exactly the five services with non-negative integers.

    :raises InvalidInput: naming ``prices_micro`` or ``retail_micro``.
    """
    _check_prices(prices_micro, field="prices_micro")
    _check_prices(retail_micro, field="retail_micro")


def _card_prices(card: RateCard) -> tuple[dict[str, int], dict[str, int]]:
    return (
        {service: card.price(service) for service in SERVICES},
        {service: card.retail_price(service) for service in SERVICES},
    )


def _find_rate_card(session: Session, *, host_id: int, effective_from: date) -> RateCard | None:
    return session.exec(
        select(RateCard).where(
            RateCard.host_id == host_id, RateCard.effective_from == effective_from
        )
    ).first()


def add_rate_card(
    session: Session,
    *,
    host_id: int,
    effective_from: date,
    prices_micro: dict[str, int],
    retail_micro: dict[str, int],
    actor: Actor,
    now: datetime,
) -> RateCard:
    """Add a host's rate card in force from `effective_from` (a date in the host's zone).

    Idempotent: the same card again returns the existing one and writes nothing.
    The audit record names the services whose wholesale price is not below
    the host's best retail price.
    :raises HostNotFound: :raises InvalidInput: missing, extra or negative prices.
    :raises RateCardConflict: the host has a card for that date with other prices.
    """
    host = get_host(session, host_id)
    if not isinstance(effective_from, date) or isinstance(effective_from, datetime):
        raise InvalidInput(N_("The effective date must be a date."), field="effective_from")
    validate_rate_card_prices(prices_micro, retail_micro)
    wanted = (dict(prices_micro), dict(retail_micro))

    def existing_or_conflict(card: RateCard) -> RateCard:
        if _card_prices(card) == wanted:
            return card
        raise RateCardConflict(
            N_(
                "Host %(host)s already has a rate card from %(date)s with other prices. "
                "A rate card never changes: add a card with a new effective date."
            ),
            field="effective_from",
            host=host.code,
            date=effective_from.isoformat(),
        )

    existing = _find_rate_card(session, host_id=host_id, effective_from=effective_from)
    if existing is not None:
        return existing_or_conflict(existing)
    columns = {f"{PRICE_UNITS[s][0]}_micro": prices_micro[s] for s in SERVICES}
    columns |= {f"retail_{PRICE_UNITS[s][0]}_micro": retail_micro[s] for s in SERVICES}
    card = RateCard(host_id=host_id, effective_from=effective_from, created_at=now, **columns)
    try:
        with session.begin_nested():
            session.add(card)
            session.flush()
    except IntegrityError:
        # Added concurrently: the same card is fine, another one is a conflict.
        concurrent = _find_rate_card(session, host_id=host_id, effective_from=effective_from)
        if concurrent is None:
            raise
        return existing_or_conflict(concurrent)
    record_audit(
        session,
        actor=actor,
        action="rate_card.add",
        now=now,
        target_type="rate_card",
        target_id=card.id,
        details={
            "host": host.code,
            "effective_from": effective_from.isoformat(),
            "prices_micro": wanted[0],
            "retail_micro": wanted[1],
            "non_compliant": card.non_compliant_services,
        },
    )
    return card


def rate_card_on(session: Session, *, host_id: int, on: date) -> RateCard | None:
    """The host's card in force on `on`: the one with the latest `effective_from` <= `on`."""
    return session.exec(
        select(RateCard)
        .where(RateCard.host_id == host_id, col(RateCard.effective_from) <= on)
        .order_by(col(RateCard.effective_from).desc())
        .limit(1)
    ).first()


def list_rate_cards(session: Session, *, host_id: int) -> list[RateCard]:
    """The host's cards, newest `effective_from` first."""
    return list(
        session.exec(
            select(RateCard)
            .where(RateCard.host_id == host_id)
            .order_by(col(RateCard.effective_from).desc())
        )
    )
