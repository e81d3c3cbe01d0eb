"""Numbers and SIMs: blocks, golden tiers, search, holds, SIM stock (DESIGN §6).

Rules:

* **Blocks.** A block is a contiguous range of E.164 numbers of one host,
  first ≤ last, at most 1,000,000 numbers, both ends valid numbers with the
  same country code, length and number type. No number may lie in two
  blocks (of any host). Loading the same (host, first, last) again is a
  no-op that returns the block; the same (host, first) with another last
  is refused. Block loads are serialised (PostgreSQL: a table lock on
  `number_block` that only other block loads wait for; SQLite: the write
  transaction's `BEGIN IMMEDIATE`), so two loads cannot both pass the
  overlap check.
* **Golden tiers.** A number's `tier` is the most valuable pattern it
  matches (numbering/golden.py), whether or not that tier is enabled; its
  `surcharge_minor` is the tier's surcharge while the tier is enabled and 0
  while it is disabled. So switching a tier off keeps the tier for
  reporting and switching it back on restores the price with one UPDATE.
  A price change reaches the numbers a buyer can still take (available, or
  held by a hold that has expired); a live hold and assigned numbers keep
  the price they were taken at, and pick up the current price when they
  come back (`release_expired`).
* **Holds.** available → reserved (a checkout hold of 15 minutes by a
  holder) → assigned → quarantined → available. A number is free for a
  buyer when it is available or its hold has expired. Every change of
  state is one conditional UPDATE whose WHERE clause is the rule, so the
  database decides races: on PostgreSQL the second writer waits for the
  first and re-checks the WHERE clause on the committed row; on SQLite
  write transactions are serialised. `reserved_by` stays on an assigned
  number (who took it), so a retried `assign_number` is idempotent.
  Holds and assignments are the buyer's checkout, not staff actions, and
  are not audited; the order or line that causes them is.
* **SIMs.** A SIM file is imported all or nothing: every row is checked
  first, and one bad row refuses the whole file with a reject per bad row.
  Importing the same file twice refuses the second time (every row is
  already in stock) — unlike the catalog, a SIM file describes physical
  stock arriving, so a repeat is a mistake worth showing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import and_, case, insert, or_, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select
from stdnum import luhn

from app.core.audit import Actor, record_audit
from app.core.errors import N_, InvalidInput, clean_text
from numbering import golden
from numbering.errors import (
    BlockInvalid,
    BlockOverlap,
    HostNotFound,
    NumberNotFound,
    NumberUnavailable,
    Reject,
    SimImportRejected,
    SimNotFound,
    SimUnavailable,
    TierNotFound,
)
from numbering.models import (
    NUMBER_STATUSES,
    SIM_KINDS,
    SIM_STATUSES,
    GoldenTier,
    NumberBlock,
    PhoneNumber,
    Sim,
)
from wholesale.models import HostCarrier

__all__ = [
    "MAX_BLOCK_SIZE",
    "SEARCH_MODES",
    "SIM_HEADER",
    "BlockSummary",
    "NumberPage",
    "Reject",
    "SimImportReport",
    "add_number_block",
    "assign_number",
    "count_sims_by_status",
    "ensure_default_tiers",
    "find_number",
    "get_number",
    "import_sims",
    "list_blocks",
    "list_sims",
    "list_tiers",
    "port_out_number",
    "quarantine_number",
    "release_expired",
    "release_number",
    "reserve_number",
    "search_numbers",
    "set_sim_status",
    "set_tier_surcharge",
]

MAX_BLOCK_SIZE = 1_000_000
MAX_SURCHARGE_MINOR = 100_000_000  # 1,000,000.00 in the currency: beyond any real price
SEARCH_MODES = ("ends_with", "contains")
MAX_PATTERN_DIGITS = 11
MAX_PER_PAGE = 100
# Pages past this are clamped: no store holds that many numbers, and an
# unbounded OFFSET overflows PostgreSQL's bigint.
MAX_PAGE = 1_000_000
HOLD_MINUTES = 15
SIM_HEADER = "iccid,imsi,kind,lpa"
LPA_PREFIX = "LPA:1$"

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_DIGITS = re.compile(r"[0-9]*")
_ICCID = re.compile(r"[0-9]{18,22}")
_IMSI = re.compile(r"[0-9]{15}")
# PostgreSQL refuses NUL and the rest only come from broken files.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SQLITE_BATCH = 50_000
_IN_CHUNK = 500

_NUMBER_COLUMNS = (
    "msisdn",
    "msisdn_reversed",
    "block_id",
    "status",
    "tier",
    "surcharge_minor",
    "status_changed_at",
)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


def _free_for_buyer(now: datetime) -> Any:
    """Available, or held by a hold that has run out."""
    return or_(
        col(PhoneNumber.status) == "available",
        and_(col(PhoneNumber.status) == "reserved", col(PhoneNumber.reserved_until) <= now),
    )


def _bulk_update_numbers(session: Session, statement: Any) -> int:
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


# -- golden tiers ---------------------------------------------------------------------


def ensure_default_tiers(session: Session, *, now: datetime) -> None:
    """Insert the tiers of `golden.DEFAULT_TIERS` that the table lacks. Idempotent.

    Existing rows keep their configured surcharge. Concurrent callers are
    safe: the insert skips codes another transaction added first.
    """
    present = set(session.exec(select(GoldenTier.code)).all())
    missing = [code for code in golden.TIER_CODES if code not in present]
    if not missing:
        return
    rows = [
        {
            "code": code,
            "surcharge_minor": golden.DEFAULT_TIERS[code],
            "enabled": True,
            "updated_at": now,
        }
        for code in missing
    ]
    dialect = _dialect(session)
    if dialect == "postgresql":
        session.execute(postgresql_insert(GoldenTier).values(rows).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite_insert(GoldenTier).values(rows).on_conflict_do_nothing())
    else:  # pragma: no cover - only the two supported backends exist
        session.execute(insert(GoldenTier).values(rows))
    session.flush()


def _tier_order(code: str) -> int:
    try:
        return golden.TIER_CODES.index(code)
    except ValueError:
        return len(golden.TIER_CODES)


def list_tiers(session: Session) -> list[GoldenTier]:
    """Every configured tier, from the most to the least valuable."""
    tiers = list(session.exec(select(GoldenTier)))
    return sorted(tiers, key=lambda tier: (_tier_order(tier.code), tier.code))


def _surcharges(session: Session) -> dict[str, int]:
    """What a number of each tier costs now: the surcharge, or 0 for a disabled tier."""
    return {
        tier.code: tier.surcharge_minor if tier.enabled else 0
        for tier in session.exec(select(GoldenTier))
    }


def _current_surcharge() -> Any:
    """SQL for a number's current surcharge, from its tier's row (0 without a tier)."""
    per_tier = (
        select(case((col(GoldenTier.enabled).is_(True), GoldenTier.surcharge_minor), else_=0))
        .where(GoldenTier.code == PhoneNumber.tier)
        .scalar_subquery()
    )
    return func.coalesce(per_tier, 0)


def set_tier_surcharge(
    session: Session,
    *,
    code: str,
    surcharge_minor: int,
    enabled: bool,
    actor: Actor,
    now: datetime,
) -> GoldenTier:
    """Configure a tier and reprice the numbers buyers can still take, in one UPDATE.

    Locks the tier row. Idempotent: the same values again change nothing
    and write no audit record. A disabled tier's numbers keep their tier and
    cost nothing extra (see the module docstring).
    :raises TierNotFound: no such tier.
    :raises InvalidInput: a negative or absurd surcharge.
    """
    if (
        isinstance(surcharge_minor, bool)
        or not isinstance(surcharge_minor, int)
        or not 0 <= surcharge_minor <= MAX_SURCHARGE_MINOR
    ):
        raise InvalidInput(
            N_("The surcharge must be a whole number of minor units from 0 to %(max)s."),
            field="surcharge_minor",
            max=MAX_SURCHARGE_MINOR,
        )
    ensure_default_tiers(session, now=now)
    tier = session.exec(select(GoldenTier).where(GoldenTier.code == code).with_for_update()).first()
    if tier is None:
        raise TierNotFound(N_("No golden tier %(code)r."), field="code", code=code)
    before = {"surcharge_minor": tier.surcharge_minor, "enabled": tier.enabled}
    after = {"surcharge_minor": surcharge_minor, "enabled": bool(enabled)}
    if before == after:
        return tier
    tier.surcharge_minor = surcharge_minor
    tier.enabled = bool(enabled)
    tier.updated_at = now
    session.add(tier)
    session.flush()
    repriced = _bulk_update_numbers(
        session,
        update(PhoneNumber)
        .where(col(PhoneNumber.tier) == code, _free_for_buyer(now))
        .values(surcharge_minor=surcharge_minor if enabled else 0),
    )
    record_audit(
        session,
        actor=actor,
        action="golden_tier.update",
        now=now,
        target_type="golden_tier",
        target_id=code,
        details={"before": before, "after": after, "numbers_repriced": repriced},
    )
    return tier


# -- number blocks --------------------------------------------------------------------


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
    if not _E164.fullmatch(text_value):
        raise BlockInvalid(
            N_("%(name)s must be an E.164 number such as +8617012340000, not %(value)r."),
            field=name,
            name=name,
            value=value,
        )
    number = phonenumbers.parse(text_value, None)
    canonical = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if canonical != text_value or not phonenumbers.is_valid_number(number):
        raise BlockInvalid(
            N_("%(name)s: %(value)s is not a valid phone number."),
            field=name,
            name=name,
            value=text_value,
        )
    return number


def _host(session: Session, host_id: int) -> HostCarrier:
    host = session.get(HostCarrier, host_id)
    if host is None:
        raise HostNotFound(N_("No host carrier %(id)s."), field="host_id", id=host_id)
    return host


def _lock_block_loads(session: Session) -> None:
    """Serialise block loads: the overlap check and the insert must not interleave.

    SHARE ROW EXCLUSIVE conflicts with itself and with writers of the table,
    not with readers, so searches and listings carry on during a load.
    On SQLite the write transaction already holds the database's write lock.
    """
    if _dialect(session) == "postgresql":
        session.execute(text("LOCK TABLE number_block IN SHARE ROW EXCLUSIVE MODE"))


def _db_value(session: Session, column: str, value: Any) -> Any:
    """`value` as the driver receives it for a phone_number column (for raw bulk inserts)."""
    dialect = session.get_bind().dialect
    processor = PhoneNumber.__table__.c[column].type.bind_processor(dialect)  # type: ignore[attr-defined]
    return processor(value) if processor else value


def _number_rows(
    first: int, last: int, block_id: int, surcharges: dict[str, int], stamp: Any
) -> Iterator[tuple[Any, ...]]:
    classify = golden.classifier()
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
    if _dialect(session) == "postgresql":
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
    host = _host(session, host_id)
    _lock_block_loads(session)

    existing = session.exec(
        select(NumberBlock).where(NumberBlock.host_id == host_id, NumberBlock.first == first)
    ).first()
    if existing is not None:
        if existing.last == last:
            return existing
        raise BlockOverlap(
            N_("Host %(host)s already has a block from %(first)s, ending at %(existing)s."),
            field="last",
            host=host.code,
            first=first,
            existing=existing.last,
        )
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

    block = NumberBlock(host_id=host_id, first=first, last=last, size=size, received_at=now)
    session.add(block)
    session.flush()
    assert block.id is not None
    ensure_default_tiers(session, now=now)
    stamp = _db_value(session, "status_changed_at", now)
    _bulk_insert_numbers(session, _number_rows(low, high, block.id, _surcharges(session), stamp))
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


# -- search ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberPage:
    """One page of search results; `has_more` says whether a next page exists."""

    items: list[PhoneNumber]
    page: int
    per_page: int
    has_more: bool


def _ends_with(pattern: str) -> Any:
    """`msisdn` ends with `pattern`, as a range of the `msisdn_reversed` index.

    The reversed pattern is a prefix of `msisdn_reversed`: "1234" means
    "4321" ≤ msisdn_reversed < "4322" ("4399" → below "44"). The bounds are
    made of digits only, so the range holds under any collation, not just
    "C". A prefix of nines has no next prefix; its upper bound is sixteen
    nines, which every reversed E.164 number (at most 15 digits and "+")
    starting with it stays at or below.
    """
    low = pattern[::-1]
    column = col(PhoneNumber.msisdn_reversed)
    stripped = low.rstrip("9")
    if not stripped:
        return and_(column >= low, column <= "9" * 16)
    return and_(column >= low, column < stripped[:-1] + str(int(stripped[-1]) + 1))


def search_numbers(
    session: Session,
    *,
    pattern: str = "",
    mode: str = "ends_with",
    tier: str | None = None,
    now: datetime,
    page: int = 1,
    per_page: int = 20,
) -> NumberPage:
    """Numbers a buyer can take now, by msisdn, matching a digit pattern and a tier.

    "ends_with" is a range scan of the `msisdn_reversed` index; "contains"
    scans. Pages are counted without a COUNT: one extra row tells whether
    another page exists. `page` and `per_page` are clamped to 1–1,000,000
    and 1–100.
    :raises InvalidInput: a pattern that is not up to 11 digits, an unknown
        mode or tier.
    """
    pattern = (pattern or "").strip()
    if not _DIGITS.fullmatch(pattern) or len(pattern) > MAX_PATTERN_DIGITS:
        raise InvalidInput(
            N_("The pattern must be up to %(max)s digits."), field="pattern", max=MAX_PATTERN_DIGITS
        )
    if mode not in SEARCH_MODES:
        raise InvalidInput(
            N_("Unknown search mode %(mode)r; choose one of %(modes)s."),
            field="mode",
            mode=mode,
            modes=", ".join(SEARCH_MODES),
        )
    if tier is not None and tier not in golden.DEFAULT_TIERS:
        raise InvalidInput(N_("Unknown golden tier %(tier)r."), field="tier", tier=tier)
    page = min(max(int(page), 1), MAX_PAGE)
    per_page = min(max(int(per_page), 1), MAX_PER_PAGE)

    query = select(PhoneNumber).where(_free_for_buyer(now))
    if pattern and mode == "ends_with":
        query = query.where(_ends_with(pattern))
    elif pattern:
        query = query.where(col(PhoneNumber.msisdn).contains(pattern, autoescape=True))
    if tier is not None:
        query = query.where(col(PhoneNumber.tier) == tier)
    query = query.order_by(col(PhoneNumber.msisdn)).offset((page - 1) * per_page)
    rows = list(session.exec(query.limit(per_page + 1)))
    return NumberPage(
        items=rows[:per_page], page=page, per_page=per_page, has_more=len(rows) > per_page
    )


# -- holds and the life of a number ---------------------------------------------------


def _msisdn(value: str) -> str:
    msisdn = (value or "").strip()
    if not _E164.fullmatch(msisdn):
        raise InvalidInput(
            N_("%(value)r is not an E.164 number such as +8617012340000."),
            field="msisdn",
            value=value,
        )
    return msisdn


def _holder(value: str) -> str:
    return clean_text(value, field="holder", max_length=64, required=True)


def find_number(session: Session, msisdn: str) -> PhoneNumber | None:
    return session.exec(
        select(PhoneNumber).where(col(PhoneNumber.msisdn) == msisdn.strip())
    ).first()


def get_number(session: Session, msisdn: str) -> PhoneNumber:
    """:raises NumberNotFound: no such number in any block."""
    number = find_number(session, msisdn)
    if number is None:
        raise NumberNotFound(
            N_("No number %(msisdn)s in our blocks."), field="msisdn", msisdn=msisdn
        )
    return number


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


# SIM states a SIM may move to, and from which: assigned → active when its line
# is activated; assigned or active → blocked when a lost or stolen SIM is
# swapped out; assigned, active or blocked → retired when its line ends.
_SIM_MOVES: dict[str, tuple[str, ...]] = {
    "active": ("assigned",),
    "blocked": ("assigned", "active"),
    "retired": ("assigned", "active", "blocked"),
}


def set_sim_status(session: Session, *, sim_id: int, status: str, now: datetime) -> Sim:
    """Move a line's SIM to `active`, `blocked` or `retired` (see `_SIM_MOVES`).

    One conditional UPDATE. Idempotent: a SIM already in `status` is
    returned unchanged. A SIM in any other state is left alone and
    returned as it is — its line's change must not fail because stock
    records are behind — so callers read `sim.status` to see what happened.
    """
    assert status in _SIM_MOVES, status
    statement = (
        update(Sim)
        .where(col(Sim.id) == sim_id, col(Sim.status).in_(_SIM_MOVES[status]))
        .values(status=status, status_changed_at=now)
        .returning(Sim)
    )
    sim = session.scalars(
        statement,
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).first()
    if sim is None:
        sim = session.get(Sim, sim_id)
        assert sim is not None, f"no SIM {sim_id}"
    return sim


def take_sim_from_stock(
    session: Session, *, iccid: str, host_id: int, status: str, now: datetime
) -> Sim:
    """Give the in-stock SIM `iccid` of host `host_id` to a line, as `assigned` or `active`.

    One conditional UPDATE (in_stock → `status`), so two callers racing for
    one SIM cannot both get it. Not idempotent: a SIM already taken is refused.
    :raises SimNotFound: no SIM has this ICCID.
    :raises SimUnavailable: the SIM is of another host or not in stock.
    """
    assert status in ("assigned", "active"), status
    value = re.sub(r"\s", "", iccid or "")
    if not value:
        raise InvalidInput(N_("Enter the new SIM's ICCID."), field="iccid")
    if len(value) > 22 or not value.isdigit():
        raise SimNotFound(N_("No SIM with ICCID %(iccid)s."), field="iccid", iccid=value[:22])
    statement = (
        update(Sim)
        .where(col(Sim.iccid) == value, col(Sim.host_id) == host_id, col(Sim.status) == "in_stock")
        .values(status=status, status_changed_at=now)
        .returning(Sim)
    )
    sim = session.scalars(
        statement,
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).first()
    if sim is not None:
        return sim
    found = session.exec(select(Sim).where(Sim.iccid == value)).first()
    if found is None:
        raise SimNotFound(N_("No SIM with ICCID %(iccid)s."), field="iccid", iccid=value)
    if found.host_id != host_id:
        raise SimUnavailable(
            N_("SIM %(iccid)s belongs to another host's network."), field="iccid", iccid=value
        )
    raise SimUnavailable(
        N_("SIM %(iccid)s is not in stock (its status is %(status)s)."),
        field="iccid",
        iccid=value,
        status=found.status,
    )


def release_expired(session: Session, *, now: datetime) -> dict[str, int]:
    """Expired holds and ended quarantines become available again, at today's surcharge.

    Two bulk UPDATEs. Idempotent.
    """
    holds = _bulk_update_numbers(
        session,
        update(PhoneNumber)
        .where(col(PhoneNumber.status) == "reserved", col(PhoneNumber.reserved_until) <= now)
        .values(
            status="available",
            reserved_by=None,
            reserved_until=None,
            surcharge_minor=_current_surcharge(),
            status_changed_at=now,
        ),
    )
    quarantines = _bulk_update_numbers(
        session,
        update(PhoneNumber)
        .where(col(PhoneNumber.status) == "quarantined", col(PhoneNumber.quarantine_until) <= now)
        .values(
            status="available",
            quarantine_until=None,
            surcharge_minor=_current_surcharge(),
            status_changed_at=now,
        ),
    )
    return {"holds_released": holds, "quarantines_ended": quarantines}


# -- SIMs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimImportReport:
    """What an import did: every data row of the file was imported."""

    filename: str
    rows: int
    imported: int


@dataclass
class _SimRow:
    line: int
    raw: str
    iccid: str = ""
    imsi: str = ""
    kind: str = ""
    lpa: str | None = None
    reasons: list[str] = field(default_factory=list)


def _decode(data: str | bytes) -> tuple[str, Reject | None]:
    if isinstance(data, str):
        return data.removeprefix("\ufeff"), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        raw = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace").rstrip("\r")
        return "", Reject(line, raw, f"not UTF-8 text (byte 0x{data[exc.start]:02x})")


def _check_sim_fields(row: _SimRow, fields: Sequence[str]) -> None:
    iccid, imsi, kind, lpa = (value.strip(" ") for value in fields)
    if not _ICCID.fullmatch(iccid):
        row.reasons.append("ICCID must be 18 to 22 digits")
    elif not luhn.is_valid(iccid):
        row.reasons.append("ICCID check digit is wrong (Luhn)")
    if not _IMSI.fullmatch(imsi):
        row.reasons.append("IMSI must be exactly 15 digits")
    if kind not in SIM_KINDS:
        row.reasons.append("kind must be physical or esim")
    if kind == "esim":
        if not lpa:
            row.reasons.append("an eSIM needs its LPA activation code")
        elif not lpa.startswith(LPA_PREFIX) or not lpa[len(LPA_PREFIX) :].split("$")[0]:
            row.reasons.append("the LPA activation code must look like LPA:1$<SM-DP+ address>$<id>")
        elif len(lpa) > 255 or _CONTROL.search(lpa):
            row.reasons.append("the LPA activation code is too long or holds control characters")
    elif kind == "physical" and lpa:
        row.reasons.append("a physical SIM has no LPA activation code")
    row.iccid, row.imsi, row.kind, row.lpa = iccid, imsi, kind, lpa or None


def _parse_sim_file(data: str | bytes) -> tuple[list[_SimRow], Reject | None]:
    """The data rows with their problems, or a reject for the whole file."""
    content, problem = _decode(data)
    if problem is not None:
        return [], problem
    lines = content.split("\n")
    if not any(line.strip() for line in lines):
        return [], Reject(1, "", f"the file is empty; it must start with the header {SIM_HEADER}")
    header = lines[0].rstrip("\r")
    if header != SIM_HEADER:
        return [], Reject(1, header, f"the first line must be the header {SIM_HEADER}")
    rows: list[_SimRow] = []
    first_iccid: dict[str, int] = {}
    first_imsi: dict[str, int] = {}
    for number, raw_line in enumerate(lines[1:], start=2):
        raw = raw_line.rstrip("\r")
        if not raw.strip():
            continue
        row = _SimRow(line=number, raw=raw)
        rows.append(row)
        if "\ufffd" in raw or any("\ud800" <= ch <= "\udfff" for ch in raw):
            row.reasons.append("not UTF-8 text")
            continue
        try:
            fields = next(csv.reader([raw], strict=True))
        except csv.Error as exc:
            row.reasons.append(f"not a CSV line: {exc}")
            continue
        if len(fields) != 4:
            row.reasons.append(f"expected 4 columns ({SIM_HEADER}), found {len(fields)}")
            continue
        _check_sim_fields(row, fields)
        if row.iccid in first_iccid:
            row.reasons.append(f"ICCID duplicates line {first_iccid[row.iccid]}")
        elif _ICCID.fullmatch(row.iccid):
            first_iccid[row.iccid] = number
        if row.imsi in first_imsi:
            row.reasons.append(f"IMSI duplicates line {first_imsi[row.imsi]}")
        elif _IMSI.fullmatch(row.imsi):
            first_imsi[row.imsi] = number
    return rows, None


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _mark_stock_duplicates(session: Session, rows: list[_SimRow]) -> None:
    """Add a reason to every row whose ICCID or IMSI is already a SIM of ours."""
    for attribute, label in (("iccid", "ICCID"), ("imsi", "IMSI")):
        column = col(getattr(Sim, attribute))
        shape = _ICCID if attribute == "iccid" else _IMSI
        values = sorted(
            {getattr(row, attribute) for row in rows if shape.fullmatch(getattr(row, attribute))}
        )
        known: set[str] = set()
        for chunk in _chunks(values):
            known.update(session.exec(select(column).where(column.in_(chunk))).all())
        for row in rows:
            if getattr(row, attribute) in known:
                row.reasons.append(f"{label} already in stock")


def _refuse(rows: list[_SimRow]) -> SimImportRejected:
    rejects = [Reject(row.line, row.raw, "; ".join(row.reasons)) for row in rows if row.reasons]
    return SimImportRejected(
        N_("%(refused)s of %(rows)s rows refused; nothing imported."),
        rejects=rejects,
        refused=len(rejects),
        rows=len(rows),
    )


def import_sims(
    session: Session,
    *,
    text: str | bytes,
    filename: str,
    host_id: int,
    actor: Actor,
    now: datetime,
) -> SimImportReport:
    """Import a SIM stock file (header `iccid,imsi,kind,lpa`) all or nothing.

    Not idempotent by design (see the module docstring): a second import of
    the same file is refused because every SIM is already in stock.
    :raises HostNotFound: no such host.
    :raises SimImportRejected: any bad row, or a bad file; `.rejects` lists
        each refused line with its reason, and nothing is imported.
    """
    _host(session, host_id)
    filename = clean_text(filename, field="filename", max_length=500)
    rows, file_problem = _parse_sim_file(text)
    if file_problem is not None:
        raise SimImportRejected(
            N_("The file was refused (%(reason)s); nothing imported."),
            rejects=[file_problem],
            reason=file_problem.reason,
        )
    if not rows:
        raise SimImportRejected(
            N_("The file has a header but no SIMs; nothing imported."),
            rejects=[Reject(1, SIM_HEADER, "no rows after the header")],
        )
    _mark_stock_duplicates(session, rows)
    if any(row.reasons for row in rows):
        raise _refuse(rows)
    values = [
        {
            "iccid": row.iccid,
            "imsi": row.imsi,
            "kind": row.kind,
            "lpa": row.lpa,
            "host_id": host_id,
            "status": "in_stock",
            "created_at": now,
            "status_changed_at": now,
        }
        for row in rows
    ]
    try:
        with session.begin_nested():
            session.execute(insert(Sim), values)
    except IntegrityError:
        # Another import committed some of these SIMs after our check.
        _mark_stock_duplicates(session, rows)
        if not any(row.reasons for row in rows):
            raise
        raise _refuse(rows) from None
    record_audit(
        session,
        actor=actor,
        action="sims.import",
        now=now,
        target_type="host_carrier",
        target_id=host_id,
        details={"filename": filename, "count": len(rows)},
    )
    return SimImportReport(filename=filename, rows=len(rows), imported=len(rows))


def list_sims(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Sim], int]:
    """SIMs in import order, paged and optionally filtered; returns (sims, total)."""
    if status is not None and status not in SIM_STATUSES:
        raise InvalidInput(N_("Unknown SIM status %(status)r."), field="status", status=status)
    if kind is not None and kind not in SIM_KINDS:
        raise InvalidInput(N_("Unknown SIM kind %(kind)r."), field="kind", kind=kind)
    page = min(max(int(page), 1), MAX_PAGE)
    per_page = min(max(int(per_page), 1), 200)
    conditions = []
    if status is not None:
        conditions.append(Sim.status == status)
    if kind is not None:
        conditions.append(Sim.kind == kind)
    query = (
        select(Sim)
        .where(*conditions)
        .order_by(col(Sim.id))
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    total = session.exec(select(func.count()).select_from(Sim).where(*conditions)).one()
    return list(session.exec(query)), total


def count_sims_by_status(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(SIM_STATUSES, 0)
    counts.update(
        {
            status: n
            for status, n in session.exec(
                select(Sim.status, func.count()).group_by(col(Sim.status))
            )
        }
    )
    return counts
