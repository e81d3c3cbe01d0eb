"""Golden tiers: what a memorable number costs on top of the plan (DESIGN §6).

A number's `tier` is the most valuable pattern it matches
(numbering/golden.py), whether or not that tier is enabled; its
`surcharge_minor` is the tier's surcharge while the tier is enabled and 0
while it is disabled. So switching a tier off keeps the tier for reporting
and switching it back on restores the price with one UPDATE. A price change
reaches the numbers a buyer can still take (available, or held by a hold
that has expired); a live hold and assigned numbers keep the price they
were taken at, and pick up the current price when they come back
(`numbering.lifecycle.release_expired`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, func, select

from app.core.audit import Actor, record_audit
from app.core.errors import N_, InvalidInput
from numbering import golden
from numbering.common import bulk_update_numbers, dialect_name, free_for_buyer
from numbering.errors import TierNotFound
from numbering.models import GoldenTier, PhoneNumber

MAX_SURCHARGE_MINOR = 100_000_000  # 1,000,000.00 in the currency: beyond any real price


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
    dialect = dialect_name(session)
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


def tier_surcharges(session: Session) -> dict[str, int]:
    """What a number of each tier costs now: the surcharge, or 0 for a disabled tier."""
    return {
        tier.code: tier.surcharge_minor if tier.enabled else 0
        for tier in session.exec(select(GoldenTier))
    }


def current_surcharge() -> Any:
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
    repriced = bulk_update_numbers(
        session,
        update(PhoneNumber)
        .where(col(PhoneNumber.tier) == code, free_for_buyer(now))
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
