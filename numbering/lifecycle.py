"""The life of a number: holds, assignment, quarantine, port-out (DESIGN §6).

available → reserved (a checkout hold of 15 minutes by a holder) → assigned
→ quarantined → available; an assigned number may instead be ported out,
and never comes back. A number is free for a buyer when it is available or
its hold has expired. Every change of state is one conditional UPDATE whose
WHERE clause is the rule, so the database decides races: on PostgreSQL the
second writer waits for the first and re-checks the WHERE clause on the
committed row; on SQLite write transactions are serialised. `reserved_by`
stays on an assigned number (who took it), so a retried `assign_number` is
idempotent. Holds and assignments are the buyer's checkout, not staff
actions, and are not audited; the order or line that causes them is.
A number that comes back (`release_expired`) takes its tier's current
surcharge.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, func, select

from app.core.errors import N_, InvalidInput, clean_text
from numbering.common import E164, bulk_update_numbers
from numbering.errors import NumberUnavailable
from numbering.models import PhoneNumber
from numbering.search import get_number
from numbering.tiers import current_surcharge

HOLD_MINUTES = 15


def _msisdn(value: str) -> str:
    msisdn = (value or "").strip()
    if not E164.fullmatch(msisdn):
        raise InvalidInput(
            N_("%(value)r is not an E.164 number such as +8617012340000."),
            field="msisdn",
            value=value,
        )
    return msisdn


def _holder(value: str) -> str:
    return clean_text(value, field="holder", max_length=64, required=True)


def _update_returning(
    session: Session, msisdn: str, *where: Any, **values: Any
) -> PhoneNumber | None:
    """One conditional UPDATE of a number; the updated row, or None if the WHERE refused it."""
    statement = (
        update(PhoneNumber)
        .where(col(PhoneNumber.msisdn) == msisdn, *where)
        .values(**values)
        .returning(PhoneNumber)
    )
    return session.scalars(
        statement,
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).first()


def _unavailable(number: PhoneNumber) -> NumberUnavailable:
    return NumberUnavailable(
        N_("Number %(msisdn)s is no longer available."), field="msisdn", msisdn=number.msisdn
    )


def reserve_number(
    session: Session, *, msisdn: str, holder: str, now: datetime, minutes: int = HOLD_MINUTES
) -> PhoneNumber:
    """Hold a number for a checkout for `minutes` (15 by default).

    One conditional UPDATE … RETURNING, so the row it changed (its rowcount)
    decides: it succeeds only on an available number, an expired hold, or
    the holder's own hold — which it extends, so calling again is idempotent
    for the holder. The UPDATE's row lock (PostgreSQL) or the write
    transaction (SQLite) makes a racing second holder see the first one's
    hold, so one number never goes to two holders.
    :raises NumberNotFound: no such number.
    :raises NumberUnavailable: held by someone else, or assigned or otherwise taken.
    """
    msisdn = _msisdn(msisdn)
    holder = _holder(holder)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
        raise InvalidInput(
            N_("A hold lasts from 1 to %(max)s minutes."), field="minutes", max=24 * 60
        )
    number = _update_returning(
        session,
        msisdn,
        or_(
            col(PhoneNumber.status) == "available",
            and_(
                col(PhoneNumber.status) == "reserved",
                or_(col(PhoneNumber.reserved_until) <= now, col(PhoneNumber.reserved_by) == holder),
            ),
        ),
        status="reserved",
        reserved_by=holder,
        reserved_until=now + timedelta(minutes=minutes),
        status_changed_at=now,
    )
    if number is None:
        raise _unavailable(get_number(session, msisdn))
    return number


def release_number(session: Session, *, msisdn: str, holder: str, now: datetime) -> None:
    """Give up the holder's own hold. Idempotent; another holder's hold is left alone.

    :raises NumberNotFound: no such number.
    """
    msisdn = _msisdn(msisdn)
    holder = _holder(holder)
    released = _update_returning(
        session,
        msisdn,
        col(PhoneNumber.status) == "reserved",
        col(PhoneNumber.reserved_by) == holder,
        status="available",
        reserved_by=None,
        reserved_until=None,
        status_changed_at=now,
    )
    if released is None:
        get_number(session, msisdn)


def assign_number(session: Session, *, msisdn: str, holder: str, now: datetime) -> PhoneNumber:
    """Turn the holder's live hold into an assignment. Idempotent for the same holder.

    :raises NumberNotFound: no such number.
    :raises NumberUnavailable: not held by this holder, or the hold has expired.
    """
    msisdn = _msisdn(msisdn)
    holder = _holder(holder)
    number = _update_returning(
        session,
        msisdn,
        col(PhoneNumber.status) == "reserved",
        col(PhoneNumber.reserved_by) == holder,
        col(PhoneNumber.reserved_until) > now,
        status="assigned",
        reserved_until=None,
        status_changed_at=now,
    )
    if number is not None:
        return number
    number = get_number(session, msisdn)
    if number.status == "assigned" and number.reserved_by == holder:
        return number
    raise _unavailable(number)


def quarantine_number(session: Session, *, msisdn: str, now: datetime, days: int) -> PhoneNumber:
    """Rest an assigned number for `days` after its line ends.

    One conditional UPDATE. Idempotent: quarantining a quarantined number
    again keeps its first end date.
    :raises NumberNotFound: no such number.
    :raises NumberUnavailable: the number is not assigned.
    """
    msisdn = _msisdn(msisdn)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidInput(N_("Quarantine days must be 0 or more."), field="days")
    number = _update_returning(
        session,
        msisdn,
        col(PhoneNumber.status) == "assigned",
        status="quarantined",
        quarantine_until=now + timedelta(days=days),
        reserved_by=None,
        status_changed_at=now,
    )
    if number is not None:
        return number
    number = get_number(session, msisdn)
    if number.status == "quarantined":
        return number
    raise NumberUnavailable(
        N_("Number %(msisdn)s is %(status)s; only an assigned number can be quarantined."),
        field="msisdn",
        msisdn=msisdn,
        status=number.status,
    )


def port_out_number(session: Session, *, msisdn: str, now: datetime) -> PhoneNumber:
    """Mark an assigned number as ported out to another operator; it never comes back.

    One conditional UPDATE. Idempotent: a ported-out number stays as it is.
    :raises NumberNotFound: no such number.
    :raises NumberUnavailable: the number is not assigned.
    """
    msisdn = _msisdn(msisdn)
    number = _update_returning(
        session,
        msisdn,
        col(PhoneNumber.status) == "assigned",
        status="ported_out",
        reserved_by=None,
        status_changed_at=now,
    )
    if number is not None:
        return number
    number = get_number(session, msisdn)
    if number.status == "ported_out":
        return number
    raise NumberUnavailable(
        N_("Number %(msisdn)s is %(status)s; only an assigned number can be ported out."),
        field="msisdn",
        msisdn=msisdn,
        status=number.status,
    )


def release_expired(session: Session, *, now: datetime) -> dict[str, int]:
    """Expired holds and ended quarantines become available again, at today's surcharge.

    Two bulk UPDATEs. Idempotent.
    """
    holds = bulk_update_numbers(
        session,
        update(PhoneNumber)
        .where(col(PhoneNumber.status) == "reserved", col(PhoneNumber.reserved_until) <= now)
        .values(
            status="available",
            reserved_by=None,
            reserved_until=None,
            surcharge_minor=current_surcharge(),
            status_changed_at=now,
        ),
    )
    quarantines = bulk_update_numbers(
        session,
        update(PhoneNumber)
        .where(col(PhoneNumber.status) == "quarantined", col(PhoneNumber.quarantine_until) <= now)
        .values(
            status="available",
            quarantine_until=None,
            surcharge_minor=current_surcharge(),
            status_changed_at=now,
        ),
    )
    return {"holds_released": holds, "quarantines_ended": quarantines}


def return_all_numbers(session: Session, *, now: datetime) -> int:
    """Mark every number of every block returned to its host (a market exit, DESIGN §12).

    Numbers that have left already (ported out) stay as they are; returns
    how many changed. Holds and quarantine end with it.
    """
    return bulk_update_numbers(
        session,
        update(PhoneNumber)
        .where(col(PhoneNumber.status).not_in(("returned", "ported_out")))
        .values(
            status="returned",
            reserved_by=None,
            reserved_until=None,
            quarantine_until=None,
            status_changed_at=now,
        ),
    )


def count_numbers_not_returned(session: Session) -> int:
    """Numbers of the blocks still held (neither returned nor ported out)."""
    return int(
        session.exec(
            select(func.count())
            .select_from(PhoneNumber)
            .where(col(PhoneNumber.status).not_in(("returned", "ported_out")))
        ).one()
    )
