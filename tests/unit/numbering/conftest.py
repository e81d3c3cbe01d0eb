"""Fixtures for the numbering tests: a host carrier and small blocks of numbers."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sqlmodel import Session

from app.core.audit import Actor
from numbering.blocks import add_number_block
from numbering.models import NumberBlock
from tests.factories import NOW
from wholesale.models import HostCarrier

STAFF = Actor("staff", 1, "admin@example.com")
_codes = itertools.count(1)


def make_host(session: Session, code: str | None = None) -> HostCarrier:
    host = HostCarrier(code=code or f"HOST{next(_codes)}", name="Host carrier", created_at=NOW)
    session.add(host)
    session.flush()
    return host


@pytest.fixture
def host(session: Session) -> HostCarrier:
    return make_host(session, "HOSTA")


@pytest.fixture
def add_block(session: Session, host: HostCarrier) -> Callable[..., NumberBlock]:
    """Load a block for `host` (or another host) through the real service."""

    def add(first: str, last: str, *, host_id: int | None = None) -> NumberBlock:
        assert host.id is not None
        return add_number_block(
            session,
            host_id=host_id if host_id is not None else host.id,
            first=first,
            last=last,
            actor=STAFF,
            now=NOW,
        )

    return add
