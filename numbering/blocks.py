"""Number blocks: the ranges of numbers a host carrier hands us (DESIGN §6).

A block is a contiguous range of E.164 numbers of one host, first ≤ last,
at most 1,000,000 numbers, both ends valid numbers with the same country
code, length and number type. No number may lie in two blocks (of any
host). Loading the same (host, first, last) again is a no-op that returns
the block; the same (host, first) with another last is refused. Block loads
are serialised (PostgreSQL: a table lock on `number_block` that only other
block loads wait for; SQLite: the write transaction's `BEGIN IMMEDIATE`),
so two loads cannot both pass the overlap check. Each number is loaded with
its golden tier and that tier's current surcharge (numbering/tiers.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import text
from sqlmodel import Session, col, func, select

from app.core.audit import Actor, record_audit
from app.core.errors import N_
from numbering import golden
from numbering.common import E164, dialect_name, get_host
from numbering.errors import BlockInvalid, BlockOverlap
from numbering.models import NUMBER_STATUSES, NumberBlock, PhoneNumber
from numbering.tiers import ensure_default_tiers, tier_surcharges
from wholesale.models import HostCarrier

MAX_BLOCK_SIZE = 1_000_000

_SQLITE_BATCH = 50_000

_NUMBER_COLUMNS = (
    "msisdn",
    "msisdn_reversed",
    "block_id",
    "status",
    "tier",
    "surcharge_minor",
    "status_changed_at",
)


@dataclass(frozen=True)
class BlockSummary:
    """A block with its host's code and how many of its numbers are in each status."""

    id: int
    host_id: int
    host_code: str
    first: str
    last: str
    size: int
    received_at: datetime
    counts: dict[str, int]


def _parse_e164(value: str, *, name: str) -> phonenumbers.PhoneNumber:
    text_value = (value or "").strip()
    if not E164.fullmatch(text_value):
        raise BlockInvalid(
            N_("%(name)s must be an E.164 number such as +8617012340000, not %(value)r."),
            field=name,
            name=name,
            value=value,
        )
    try:
        number: phonenumbers.PhoneNumber | None = phonenumbers.parse(text_value, None)
    except phonenumbers.NumberParseException:
        # E.164-shaped text whose digits start with no country calling code.
        number = None
    if (
        number is None
        or phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != text_value
        or not phonenumbers.is_valid_number(number)
    ):
        raise BlockInvalid(
            N_("%(name)s: %(value)s is not a valid phone number."),
            field=name,
            name=name,
            value=text_value,
        )
    return number


def _lock_block_loads(session: Session) -> None:
    """Serialise block loads: the overlap check and the insert must not interleave.

    SHARE ROW EXCLUSIVE conflicts with itself and with writers of the table,
    not with readers, so searches and listings carry on during a load.
    On SQLite the write transaction already holds the database's write lock.
    """
    if dialect_name(session) == "postgresql":
        session.execute(text("LOCK TABLE number_block IN SHARE ROW EXCLUSIVE MODE"))


def _db_value(session: Session, column: str, value: Any) -> Any:
    """`value` as the driver receives it for a phone_number column (for raw bulk inserts)."""
    dialect = session.get_bind().dialect
    processor = PhoneNumber.__table__.c[column].type.bind_processor(dialect)  # type: ignore[attr-defined]
    return processor(value) if processor else value


def _number_rows(
    first: int, last: int, block_id: int, surcharges: dict[str, int], stamp: Any
) -> Iterator[tuple[Any, ...]]:
    classify = golden.classifier(shared=golden.shared_digits(str(first), str(last)))
    for n in range(first, last + 1):
        msisdn = f"+{n}"
        tier = classify(msisdn)
        yield (
            msisdn,
            msisdn[::-1],
            block_id,
            "available",
            tier,
            surcharges.get(tier, 0) if tier else 0,
            stamp,
        )


def _bulk_insert_numbers(session: Session, rows: Iterator[tuple[Any, ...]]) -> None:
    """Insert rows of `_NUMBER_COLUMNS` the fastest way each backend has.

    PostgreSQL: COPY through psycopg on the session's own connection, so the
    rows belong to the same transaction. SQLite: executemany of plain tuples
    in large batches on the same connection.
    """
    columns = ", ".join(_NUMBER_COLUMNS)
    driver_connection: Any = session.connection().connection.driver_connection
    if dialect_name(session) == "postgresql":
        with (
            driver_connection.cursor() as cursor,
            cursor.copy(f"COPY phone_number ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in _NUMBER_COLUMNS)
    sql = f"INSERT INTO phone_number ({columns}) VALUES ({placeholders})"  # noqa: S608
    cursor = driver_connection.cursor()
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _SQLITE_BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
    finally:
        cursor.close()


def _analyze_numbers(session: Session) -> None:
    """Refresh the planner's statistics of `phone_number` after a load.

    Without them SQLite's planner guesses that `status = 'available'` is
    selective and walks the status index over every number instead of the
    `msisdn_reversed` range (a sampled ANALYZE makes the same mistake, so it
    is a full one: about 0.25 s per million numbers), and PostgreSQL plans
    the first searches on statistics that predate the new rows. Loads are
    rare staff actions, so every load pays this small cost.
    """
    session.execute(text("ANALYZE phone_number"))


def _check_range(first: str, last: str) -> tuple[str, str, int, int]:
    """The trimmed ends of a block and their numeric values, checked as one range.

    :raises BlockInvalid: an ill-formed or invalid end, ends of different
        shape, a reversed range, or more than 1,000,000 numbers.
    """
    first_number = _parse_e164(first, name="first")
    last_number = _parse_e164(last, name="last")
    first, last = first.strip(), last.strip()
    if (
        first_number.country_code != last_number.country_code
        or len(first) != len(last)
        or phonenumbers.number_type(first_number) != phonenumbers.number_type(last_number)
    ):
        raise BlockInvalid(
            N_(
                "%(first)s and %(last)s are not numbers of one range: they differ in"
                " country code, length or number type."
            ),
            field="last",
            first=first,
            last=last,
        )
    low, high = int(first[1:]), int(last[1:])
    if low > high:
        raise BlockInvalid(
            N_("The block is reversed: last (%(last)s) comes before first (%(first)s)."),
            field="last",
            first=first,
            last=last,
        )
    size = high - low + 1
    if size > MAX_BLOCK_SIZE:
        raise BlockInvalid(
            N_("A block holds at most %(max)s numbers; %(first)s–%(last)s has %(size)s."),
            field="last",
            max=f"{MAX_BLOCK_SIZE:,}",
            first=first,
            last=last,
            size=f"{size:,}",
        )
    return first, last, low, high


def _same_start(
    session: Session, host: HostCarrier, *, first: str, last: str
) -> NumberBlock | None:
    """The host's block loaded before with these ends, or None if there is none.

    :raises BlockOverlap: the host has a block starting at `first` with another end.
    """
    existing = session.exec(
        select(NumberBlock).where(NumberBlock.host_id == host.id, NumberBlock.first == first)
    ).first()
    if existing is None or existing.last == last:
        return existing
    raise BlockOverlap(
        N_("Host %(host)s already has a block from %(first)s, ending at %(existing)s."),
        field="last",
        host=host.code,
        first=first,
        existing=existing.last,
    )


def _refuse_overlap(session: Session, *, first: str, last: str) -> None:
    """:raises BlockOverlap: a number of first–last already lies in a block of any host."""
    # Numbers of different lengths never coincide, and among equal-length
    # "+digits" strings text order is numeric order.
    clash = session.exec(
        select(NumberBlock)
        .where(
            func.length(NumberBlock.first) == len(first),
            NumberBlock.first <= last,
            NumberBlock.last >= first,
        )
        .order_by(col(NumberBlock.first))
    ).first()
    if clash is not None:
        raise BlockOverlap(
            N_("%(first)s–%(last)s overlaps the block %(other_first)s–%(other_last)s."),
            field="first",
            first=first,
            last=last,
            other_first=clash.first,
            other_last=clash.last,
        )


def add_number_block(
    session: Session, *, host_id: int, first: str, last: str, actor: Actor, now: datetime
) -> NumberBlock:
    """Receive a block of numbers from a host: one available number per E.164 in the range.

    Serialises block loads (see `_lock_block_loads`). Idempotent for the same
    (host, first, last). Each number gets its golden tier and surcharge.
    :raises HostNotFound: no such host.
    :raises BlockInvalid: an ill-formed or invalid end, ends of different
        shape, a reversed range, or more than 1,000,000 numbers.
    :raises BlockOverlap: a number of the range is already in a block, or the
        host has a block starting at `first` with another end.
    """
    first, last, low, high = _check_range(first, last)
    size = high - low + 1
    host = get_host(session, host_id)
    _lock_block_loads(session)
    existing = _same_start(session, host, first=first, last=last)
    if existing is not None:
        return existing
    _refuse_overlap(session, first=first, last=last)

    block = NumberBlock(host_id=host_id, first=first, last=last, size=size, received_at=now)
    session.add(block)
    session.flush()
    assert block.id is not None
    ensure_default_tiers(session, now=now)
    stamp = _db_value(session, "status_changed_at", now)
    _bulk_insert_numbers(
        session, _number_rows(low, high, block.id, tier_surcharges(session), stamp)
    )
    _analyze_numbers(session)
    record_audit(
        session,
        actor=actor,
        action="number_block.add",
        now=now,
        target_type="number_block",
        target_id=block.id,
        details={"host": host.code, "first": first, "last": last, "size": size},
    )
    return block


def count_numbers(session: Session, *, status: str) -> int:
    """How many numbers of every block have `status` now, through the (status, msisdn)
    index: the sum of `list_blocks`' counts of that status."""
    return session.exec(
        select(func.count()).select_from(PhoneNumber).where(PhoneNumber.status == status)
    ).one()


def list_blocks(session: Session) -> list[BlockSummary]:
    """Every block, by host code and first number, with counts of its numbers per status."""
    blocks = session.exec(
        select(NumberBlock, HostCarrier.code)
        .join(HostCarrier, col(HostCarrier.id) == NumberBlock.host_id)
        .order_by(col(HostCarrier.code), col(NumberBlock.first))
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for block_id, status, n in session.exec(
        select(PhoneNumber.block_id, PhoneNumber.status, func.count()).group_by(
            col(PhoneNumber.block_id), col(PhoneNumber.status)
        )
    ):
        counts.setdefault(block_id, {})[status] = n
    summaries = []
    for block, host_code in blocks:
        assert block.id is not None
        per_status = dict.fromkeys(NUMBER_STATUSES, 0)
        per_status.update(counts.get(block.id, {}))
        summaries.append(
            BlockSummary(
                id=block.id,
                host_id=block.host_id,
                host_code=host_code,
                first=block.first,
                last=block.last,
                size=block.size,
                received_at=block.received_at,
                counts=per_status,
            )
        )
    return summaries
