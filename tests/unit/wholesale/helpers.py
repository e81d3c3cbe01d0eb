"""Hosts and rate cards for tests, through the real services.

The prices are those of HOSTA's card in examples/catalog.toml.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from app.core.audit import Actor
from tests.factories import NOW
from wholesale import services as wholesale
from wholesale.models import HostCarrier, RateCard

ACTOR = Actor.system("test")
PRICES_MICRO = {
    "data": 2_500,
    "voice": 40_000,
    "sms": 15_000,
    "line": 1_200_000,
    "number": 100_000,
}
RETAIL_MICRO = {
    "data": 10_000,
    "voice": 100_000,
    "sms": 100_000,
    "line": 8_000_000,
    "number": 1_000_000,
}


def make_host(
    session: Session, *, code: str = "HOSTA", now: datetime = NOW, **kwargs: Any
) -> HostCarrier:
    kwargs.setdefault("name", f"Host carrier {code}")
    return wholesale.upsert_host(session, code=code, actor=ACTOR, now=now, **kwargs)


def make_rate_card(
    session: Session,
    *,
    host: HostCarrier,
    effective_from: date = date(2026, 1, 1),
    now: datetime = NOW,
    **prices: int,
) -> RateCard:
    assert host.id is not None
    return wholesale.add_rate_card(
        session,
        host_id=host.id,
        effective_from=effective_from,
        prices_micro={**PRICES_MICRO, **prices},
        retail_micro=dict(RETAIL_MICRO),
        actor=ACTOR,
        now=now,
    )
