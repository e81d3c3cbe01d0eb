"""Pieces the numbering modules share: the backend, the host, a buyer-free number.

`free_for_buyer` is the one definition of a number a buyer can take
(available, or held by a hold that has expired); search, repricing and
holds all use it, so they agree on it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col

from app.core.errors import N_
from numbering.errors import HostNotFound
from numbering.models import PhoneNumber
from wholesale.models import HostCarrier

# Pages past this are clamped: no store holds that many numbers, and an
# unbounded OFFSET overflows PostgreSQL's bigint.
MAX_PAGE = 1_000_000

E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def dialect_name(session: Session) -> str:
    """The name of the session's database backend ("postgresql" or "sqlite")."""
    return session.get_bind().dialect.name


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


def free_for_buyer(now: datetime) -> Any:
    """Available, or held by a hold that has run out."""
    return or_(
        col(PhoneNumber.status) == "available",
        and_(col(PhoneNumber.status) == "reserved", col(PhoneNumber.reserved_until) <= now),
    )


def bulk_update_numbers(session: Session, statement: Any) -> int:
    """Run a bulk UPDATE of phone numbers; returns how many rows it changed.

    Numbers already loaded in the session are expired rather than matched
    one by one, so the next read sees the new values without the database
    sending back every changed row.
    """
    result = session.execute(statement.execution_options(synchronize_session=False))
    for instance in list(session.identity_map.values()):
        if isinstance(instance, PhoneNumber):
            session.expire(instance)
    return _rowcount(result)


def get_host(session: Session, host_id: int) -> HostCarrier:
    """The host carrier `host_id`. Reads only.

    :raises HostNotFound: no such host (naming the field ``host_id``).
    """
    host = session.get(HostCarrier, host_id)
    if host is None:
        raise HostNotFound(N_("No host carrier %(id)s."), field="host_id", id=host_id)
    return host
