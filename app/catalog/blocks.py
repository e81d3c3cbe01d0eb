"""The [[number_blocks]] table of a catalog file: checks and how it applies.

A block is keyed by (host, first, last). Its two ends are valid E.164 numbers
of the same length, country and number type; it holds at most
`MAX_BLOCK_SIZE` numbers and overlaps no other block, in the file or in the
database, except itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.catalog.checking import Checker
from app.catalog.hosts import host_id
from app.catalog.rows import BlockRow, Rows
from app.core.audit import Actor
from numbering.blocks import add_number_block
from numbering.models import NumberBlock
from wholesale.models import HostCarrier

MAX_BLOCK_SIZE = 1_000_000
BLOCK_KEYS = ("host", "first", "last")
_E164_RE = re.compile(r"\+[1-9]\d{1,14}")


def check_block(
    check: Checker, rows: Rows, index: int, row: dict[str, Any], known_hosts: set[str]
) -> None:
    """Check one [[number_blocks]] row; add it to `rows` or report its problems."""
    host, first, last = row.get("host"), row.get("first"), row.get("last")
    key = f"{host} {first}" if host is not None and first is not None else f"#{index}"
    table = "number_blocks"
    if not check.keys(table, key, row, allowed=BLOCK_KEYS, required=BLOCK_KEYS):
        return
    ok = check.host_ref(table, key, host, known_hosts)
    for name, value in (("first", first), ("last", last)):
        reason = _e164_problem(value)
        if reason is not None:
            check.problem(table, key, f"{name}: {reason}")
            ok = False
    if not ok:
        return
    assert isinstance(host, str) and isinstance(first, str) and isinstance(last, str)
    host, first, last = host.strip(), first.strip(), last.strip()
    reason = _range_problem(first, last)
    if reason is None:
        reason = _overlap_problem(check, rows, host, first, last)
    if reason is not None:
        check.problem(table, key, reason)
        return
    rows.number_blocks.append(BlockRow(key, host, first, last))


def _range_problem(first: str, last: str) -> str | None:
    """Why first…last is not a block of numbers, or None."""
    if len(first) != len(last):
        return "first and last must have the same number of digits"
    first_number, last_number = phonenumbers.parse(first), phonenumbers.parse(last)
    if first_number.country_code != last_number.country_code or phonenumbers.number_type(
        first_number
    ) != phonenumbers.number_type(last_number):
        return "first and last must have the same country code and number type"
    if first > last:
        return "first must not be after last"
    size = int(last[1:]) - int(first[1:]) + 1
    if size > MAX_BLOCK_SIZE:
        return f"a block holds at most {MAX_BLOCK_SIZE:,} numbers; this has {size:,}"
    return None


def _overlap_problem(check: Checker, rows: Rows, host: str, first: str, last: str) -> str | None:
    """Which block in the file or the database first…last overlaps, or None."""
    # Numbers of the same length compare as text just as they do as integers.
    for seen in rows.number_blocks:
        if len(seen.first) == len(first) and seen.first <= last and first <= seen.last:
            return f"overlaps the block {seen.key} in this file"
    overlapping = check.session.exec(
        select(NumberBlock, HostCarrier.code)
        .join(HostCarrier, col(HostCarrier.id) == col(NumberBlock.host_id))
        .where(
            func.length(NumberBlock.first) == len(first),
            col(NumberBlock.first) <= last,
            col(NumberBlock.last) >= first,
        )
    ).all()
    for block, block_host in overlapping:
        if (block_host, block.first, block.last) != (host, first, last):
            return (
                f"overlaps the block {block.first}–{block.last} of host {block_host} "
                "in the database"
            )
    return None


def _e164_problem(value: Any) -> str | None:
    """Why `value` is not a valid E.164 number, or None."""
    if not isinstance(value, str) or not _E164_RE.fullmatch(value.strip()):
        return f"{value!r} is not an E.164 number like +8617012340000"
    try:
        number = phonenumbers.parse(value.strip())
    except phonenumbers.NumberParseException:
        return f"{value!r} is not a phone number"
    canonical = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if canonical != value.strip() or not phonenumbers.is_valid_number(number):
        return f"{value!r} is not a valid number in its country's numbering plan"
    return None


def apply_block(session: Session, row: BlockRow, *, actor: Actor, now: datetime) -> str:
    """Add the row's block and its numbers unless stored already; created or unchanged.

    :raises DomainError: refused by `add_number_block` (an overlap loaded meanwhile).
    """
    hid = host_id(session, row.host)
    existed = session.exec(
        select(NumberBlock.id).where(
            NumberBlock.host_id == hid,
            NumberBlock.first == row.first,
            NumberBlock.last == row.last,
        )
    ).first()
    add_number_block(session, host_id=hid, first=row.first, last=row.last, actor=actor, now=now)
    return "unchanged" if existed is not None else "created"
