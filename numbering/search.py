"""Finding numbers: a buyer's search of the numbers free to take, and one number by msisdn.

A number is free for a buyer when it is available or its hold has expired
(`numbering.common.free_for_buyer`). Search pages are counted without a
COUNT: one extra row tells whether another page exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, select

from app.core.errors import N_, InvalidInput
from numbering import golden
from numbering.common import MAX_PAGE, free_for_buyer
from numbering.errors import NumberNotFound
from numbering.models import PhoneNumber

SEARCH_MODES = ("ends_with", "contains")
MAX_PATTERN_DIGITS = 11
MAX_PER_PAGE = 100

_DIGITS = re.compile(r"[0-9]*")


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

    query = select(PhoneNumber).where(free_for_buyer(now))
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


def find_number(session: Session, msisdn: str) -> PhoneNumber | None:
    """The number `msisdn` (trimmed) in any block and any status, or None. Reads only."""
    return session.exec(
        select(PhoneNumber).where(col(PhoneNumber.msisdn) == msisdn.strip())
    ).first()


def get_number(session: Session, msisdn: str) -> PhoneNumber:
    """The number `msisdn` (trimmed) in any status. Reads only.

    :raises NumberNotFound: no such number in any block.
    """
    number = find_number(session, msisdn)
    if number is None:
        raise NumberNotFound(
            N_("No number %(msisdn)s in our blocks."), field="msisdn", msisdn=msisdn
        )
    return number
