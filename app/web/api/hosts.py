"""JSON API of host carriers (DESIGN §7, §14): hosts, rate cards, provisioning secrets.

`wholesale.manage` sets, rotates or clears a host's provisioning secret,
which is never returned (only whether it is set and its last four
characters).
"""

from __future__ import annotations

from typing import Any

from app.core.clock import utcnow
from app.web.api import bp
from app.web.api.hosts_schemas import (
    HostIn,
    HostList,
    HostOut,
    RateCardIn,
    RateCardList,
    RateCardOut,
    SecretIn,
    SecretOut,
)
from app.web.api.security import requires
from app.web.context import current_actor, db_session
from wholesale import services as wholesale
from wholesale.models import SERVICES, RateCard


def _card(card: RateCard | None) -> dict[str, Any] | None:
    if card is None:
        return None
    return {
        "id": card.id,
        "effective_from": card.effective_from,
        "prices_micro": {s: card.price(s) for s in SERVICES},
        "retail_micro": {s: card.retail_price(s) for s in SERVICES},
        "non_compliant_services": card.non_compliant_services,
    }


def _host(host: Any) -> dict[str, Any]:
    card = wholesale.rate_card_on(db_session(), host_id=host.id, on=utcnow().date())
    return {**host.model_dump(), "current_rate_card": _card(card)}


@bp.get("/hosts")
@requires("wholesale.view")
@bp.output(HostList)
def host_list() -> Any:
    """Host carriers with the rate card in force today and its compliance."""
    return {"items": [_host(h) for h in wholesale.list_hosts(db_session())]}


@bp.put("/hosts/<code>")
@requires("wholesale.manage")
@bp.input(HostIn, arg_name="data")
@bp.output(HostOut)
def host_put(code: str, data: dict[str, Any]) -> Any:
    """Create or update the host carrier CODE."""
    host = wholesale.upsert_host(
        db_session(), code=code, actor=current_actor(), now=utcnow(), **data
    )
    return _host(host)


@bp.get("/hosts/<code>/rate-cards")
@requires("wholesale.view")
@bp.output(RateCardList)
@bp.doc(responses={404: "No such host"})
def rate_card_list(code: str) -> Any:
    """The host's rate cards, newest first, with compliance flags."""
    host = wholesale.get_host_by_code(db_session(), code)
    return {
        "items": [_card(c) for c in wholesale.list_rate_cards(db_session(), host_id=host.id or 0)]
    }


@bp.post("/hosts/<code>/rate-cards")
@requires("wholesale.manage")
@bp.input(RateCardIn, arg_name="data")
@bp.output(RateCardOut, status_code=201)
@bp.doc(responses={404: "No such host", 409: "A different card exists for that date"})
def rate_card_add(code: str, data: dict[str, Any]) -> Any:
    """Add a rate card (idempotent for identical prices on the same date)."""
    host = wholesale.get_host_by_code(db_session(), code)
    card = wholesale.add_rate_card(
        db_session(),
        host_id=host.id or 0,
        effective_from=data["effective_from"],
        prices_micro=data["prices_micro"],
        retail_micro=data["retail_micro"],
        actor=current_actor(),
        now=utcnow(),
    )
    return _card(card)


@bp.put("/hosts/<code>/provisioning-secret")
@requires("wholesale.manage")
@bp.input(SecretIn, arg_name="data")
@bp.output(SecretOut)
@bp.doc(responses={404: "No such host"})
def host_provisioning_secret(code: str, data: dict[str, Any]) -> Any:
    """Set, rotate or (with null) clear the key of the http adapter's signature.

    The secret is never returned: only whether one is set and its last four characters.
    """
    host = wholesale.get_host_by_code(db_session(), code)
    assert host.id is not None
    host = wholesale.set_provisioning_secret(
        db_session(),
        host_id=host.id,
        secret=data["secret"],
        actor=current_actor(),
        now=utcnow(),
    )
    secret = host.provisioning_secret
    return {
        "code": host.code,
        "secret_set": secret is not None,
        "secret_last4": secret[-4:] if secret else None,
    }
