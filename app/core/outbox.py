"""What the outboxes share (provisioning events, notifications): leases, retries, dead letters.

A row of an outbox is `pending` until delivered, or `dead` after
`MAX_ATTEMPTS` failed attempts. A deliverer claims due rows in a short
transaction (`FOR UPDATE SKIP LOCKED`), counting the attempt and leasing the
row (`take_lease`); it delivers with no transaction open, then records the
result in one transaction per row, only if the row is still on that attempt
(`on_attempt`). A failure waits `backoff(attempts)`: 30 s × 2^(attempts − 1),
at most an hour. Staff may queue a dead row again (`requeue`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import case, func
from sqlmodel import Session, col, select

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600


class OutboxRow(Protocol):
    id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str


R = TypeVar("R", bound=OutboxRow)
C = TypeVar("C")


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    seconds = BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, BACKOFF_CAP_SECONDS))


def take_lease(row: OutboxRow, *, now: datetime, lease_seconds: int) -> None:
    """Count a claimed row's attempt and keep other deliverers off it for the lease."""
    row.attempts += 1
    row.next_attempt_at = now + timedelta(seconds=lease_seconds)


def on_attempt(row: OutboxRow, attempt: int) -> bool:
    """Whether the (locked) row is still pending on the attempt that was claimed."""
    return row.status == "pending" and row.attempts == attempt


def record_failure(row: OutboxRow, *, error: str, now: datetime) -> str:
    """A failed attempt: `failed` (due again after the backoff) or, the last one, `dead`."""
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = "dead"
        row.next_attempt_at = now
        return "dead"
    row.next_attempt_at = now + backoff(row.attempts)
    return "failed"


def requeue(row: OutboxRow, *, now: datetime) -> None:
    """A dead row pending again with a fresh count of attempts, due at once."""
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now


def claimed(claim: Callable[[int], list[C]], limit: int) -> Iterator[C]:
    """Claims, batch after batch, until nothing more is due or `limit` were taken.

    The next batch is claimed only once the previous one has been handled.
    """
    taken = 0
    while taken < limit:
        claims = claim(limit - taken)
        if not claims:
            return
        taken += len(claims)
        yield from claims


def list_dead_first(
    session: Session, model: type[R], query: Any, *, limit: int, offset: int
) -> tuple[list[R], int]:
    """(rows, total) of `query`: dead letters first, then pending, then the rest; newest
    first within each."""
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rank = case({"dead": 0, "pending": 1}, value=col(model.status), else_=2)
    rows = session.exec(query.order_by(rank, col(model.id).desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def count_by_status(session: Session, model: type[R], statuses: Iterable[str]) -> dict[str, int]:
    """How many rows are in each status (every status named, zero when none)."""
    rows = session.exec(select(col(model.status), func.count()).group_by(col(model.status)))
    counts = dict.fromkeys(statuses, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts
