"""What every part of the renewals shares (the rules: app/charging/renewals.py).

The journal entry kind and the idempotency key of a renewal (one per line
and old period end, so a rerun never posts a period twice), the reasons the
lifecycle records, what a period on a plan costs and holds, the report of a
run, a due line while its batch is decided, and the unit of work a run uses
for each batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.core.db import Database
from app.subscribers.models import Line
from plans.models import Plan

ENTRY_KIND = "renewal"
REVENUE_KIND = "revenue_plans"
UNPAID_REASON = "renewal unpaid"
RESUME_REASON = "renewal paid"
TERMINATION_REASON = "renewal unpaid for 90 days"
UNPAID_DAYS_BEFORE_TERMINATION = 90


def renewal_key(line_id: int, period_end: datetime) -> str:
    """The idempotency key of the renewal that follows the period ending at `period_end`."""
    return f"renewal:{line_id}:{utc_iso(period_end)}"


def utc_iso(at: datetime) -> str:
    """`at` in UTC, ISO 8601: the form of every instant in keys, audit details and notices."""
    return at.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class PlanTerms:
    """What a period on a plan costs and holds (a plan version never changes)."""

    id: int
    code: str
    currency: str
    price_minor: int
    length: timedelta
    data_kb: int
    voice_s: int
    sms: int


def terms_of(plan: Plan) -> PlanTerms:
    """The terms of a loaded plan (a period is `validity_days × 24 h` long)."""
    assert plan.id is not None
    return PlanTerms(
        id=plan.id,
        code=plan.code,
        currency=plan.currency,
        price_minor=plan.price_minor,
        length=timedelta(hours=24 * plan.validity_days),
        data_kb=plan.data_mb * 1024,
        voice_s=plan.voice_min * 60,
        sms=plan.sms,
    )


@dataclass
class RenewalReport:
    """What a run did; `as_dict` is the CLI's JSON."""

    now: datetime
    lines_seen: int = 0
    renewed: int = 0
    periods_opened: int = 0
    suspended: int = 0
    unpaid: int = 0
    resumed: int = 0
    terminated: int = 0

    def add(self, other: RenewalReport) -> None:
        """Add the due-line counts of another part of the run (not resumed, terminated)."""
        for name in ("lines_seen", "renewed", "periods_opened", "suspended", "unpaid"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        """The counts and `now` (ISO, UTC), as `mvno renewals run --json` prints them."""
        return {
            "now": utc_iso(self.now),
            "lines_seen": self.lines_seen,
            "renewed": self.renewed,
            "periods_opened": self.periods_opened,
            "suspended": self.suspended,
            "unpaid": self.unpaid,
            "resumed": self.resumed,
            "terminated": self.terminated,
        }


@dataclass
class DueLine:
    """A due line while its batch is decided.

    `periods` collects the periods the batch opens for it (plan terms, start,
    end, the entry's key); `failed_at` is set when its renewal goes unpaid;
    `gap_at` is the start of a period opened later than the line's last end
    (a lapsed line renewed now), for `line.period_gap_at`.
    """

    id: int
    customer_id: int
    msisdn: str
    status: str
    auto_renew: bool
    status_changed_at: datetime
    plan_id: int
    next_plan_id: int | None
    end: datetime
    restart: bool
    periods: list[dict[str, Any]] = field(default_factory=list)
    failed_at: datetime | None = None
    gap_at: datetime | None = None


@contextmanager
def unit(target: Database | Session) -> Iterator[Session]:
    """A transaction of the Database, or the caller's session as it is."""
    if isinstance(target, Session):
        yield target
        return
    with target.transaction() as session:
        yield session


def expire_lines(session: Session, line_ids: list[int]) -> None:
    """Line objects the session holds read their rows afresh after a Core UPDATE."""
    for line_id in line_ids:
        loaded = session.identity_map.get(session.identity_key(Line, line_id))
        if loaded is not None:
            session.expire(loaded)
