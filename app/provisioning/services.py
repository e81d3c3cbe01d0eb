"""The provisioning outbox: enqueue in the caller's transaction, deliver after commit.

Rules (DESIGN §10):

* **Transactional.** `enqueue_event` adds the row to the session of the line
  change that causes it; the event exists exactly when the change committed.
* **Delivery** (`deliver_pending`, run by the `deliver_provisioning` job and
  `mvno provisioning deliver`) happens with no transaction open: one short
  transaction claims due events (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
  concurrent deliverers take different rows), the adapters run, and one
  transaction per event records the result.
* **Claims are leases.** Claiming counts the attempt and moves
  `next_attempt_at` `LEASE_SECONDS` ahead, so no other deliverer takes the
  event meanwhile; a deliverer that dies mid-way leaves the event to be
  taken again when the lease runs out. Delivery is therefore at least once,
  and the event id travels with every delivery so the host can drop repeats.
  A result is recorded only by the claim that made it (same attempt count).
* **Retries.** A failure waits `30 s × 2^(attempts − 1)`, at most an hour;
  the 8th failed attempt makes the event `dead`: a dead letter shown to
  staff, who may queue it again (`retry_dead_event`, audited).
* **Per-line order.** An event is never delivered while an earlier event of
  the same line is pending or dead, so the host sees a line's commands in
  the order they happened (a dead event holds back the rest of its line
  until staff retry it).
* **Activation.** The host acknowledging a line's `activate` event is its
  confirmation: the same transaction that records the delivery activates the
  line (`app.subscribers.lifecycle.activate_line`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from app.core import outbox
from app.core.audit import Actor, record_audit
from app.core.config import Settings
from app.core.db import Database, lock_by_id
from app.core.errors import N_
from app.core.events import emit
from app.core.outbox import (
    claimed,
    list_dead_first,
    on_attempt,
    record_failure,
    requeue,
    take_lease,
)
from app.provisioning import adapters
from app.provisioning.errors import EventNotFound, EventState
from app.provisioning.events import ActivationDelivered
from app.provisioning.models import ACTIONS, EVENT_STATUSES, ProvisioningEvent
from wholesale.models import HostCarrier

log = logging.getLogger(__name__)

# Longer than an http delivery can take (its timeout), so a lease never ends
# while its deliverer is still waiting for the host.
LEASE_SECONDS = 300
DEFAULT_BATCH = 100


def enqueue_event(
    session: Session,
    *,
    line_id: int,
    host_id: int,
    action: str,
    payload: dict[str, Any],
    now: datetime,
) -> ProvisioningEvent:
    """Add a pending event to the caller's transaction, due at once."""
    assert action in ACTIONS, action
    event = ProvisioningEvent(
        line_id=line_id,
        host_id=host_id,
        action=action,
        payload=payload,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


# -- delivery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "dead": self.dead}


@dataclass(frozen=True)
class _Claim:
    event_id: int
    attempt: int
    body: bytes
    target: adapters.Target


def _due(now: datetime, limit: int) -> Any:
    earlier = aliased(ProvisioningEvent)
    held_back = exists().where(
        col(earlier.line_id) == col(ProvisioningEvent.line_id),
        col(earlier.id) < col(ProvisioningEvent.id),
        col(earlier.status).in_(("pending", "dead")),
    )
    return (
        select(ProvisioningEvent)
        .where(
            col(ProvisioningEvent.status) == "pending",
            col(ProvisioningEvent.next_attempt_at) <= now,
            ~held_back,
        )
        .order_by(col(ProvisioningEvent.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


def _claim(db: Database, *, now: datetime, limit: int) -> list[_Claim]:
    claims = []
    with db.transaction() as session:
        events = list(session.exec(_due(now, limit)))
        hosts: dict[int, adapters.Target] = {}
        for event in events:
            assert event.id is not None
            if event.host_id not in hosts:
                host = session.get(HostCarrier, event.host_id)
                assert host is not None
                hosts[event.host_id] = adapters.Target(
                    code=host.code,
                    adapter=host.provisioning,
                    url=host.provisioning_url,
                    secret=host.provisioning_secret,
                )
            take_lease(event, now=now, lease_seconds=LEASE_SECONDS)
            session.add(event)
            body = adapters.event_body(
                event_id=event.id,
                action=event.action,
                line_id=event.line_id,
                created_at=event.created_at,
                payload=event.payload,
            )
            claims.append(_Claim(event.id, event.attempts, body, hosts[event.host_id]))
        session.flush()
    return claims


def record_outcome(
    session: Session, *, event_id: int, attempt: int, outcome: adapters.Outcome, now: datetime
) -> str | None:
    """Record what attempt `attempt` of an event came to: delivered, failed or dead.

    Locks the event. Returns None (and changes nothing) when the event has
    moved on since that attempt was claimed — its lease ran out and another
    deliverer took it, or staff queued it again.
    """
    event = lock_by_id(session, ProvisioningEvent, event_id)
    if event is None or not on_attempt(event, attempt):
        return None
    if outcome.ok:
        event.status = "delivered"
        event.delivered_at = now
        event.last_error = ""
        result = "delivered"
    else:
        result = record_failure(event, error=outcome.error, now=now)
    session.add(event)
    session.flush()
    if result == "delivered" and event.action == "activate":
        emit(session, ActivationDelivered(line_id=event.line_id, event_id=event_id, now=now))
    return result


def deliver_pending(
    db: Database,
    *,
    now: datetime,
    settings: Settings,
    limit: int = DEFAULT_BATCH,
    timeout_seconds: float = adapters.HTTP_TIMEOUT_SECONDS,
) -> DeliveryReport:
    """Deliver due events, at most `limit`, each outside any transaction.

    Claims in batches until nothing more is due, so a line's later events
    follow its earlier ones within one run. Returns how many were delivered,
    failed (to be retried) and went dead.
    """
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    for claim in claimed(lambda n: _claim(db, now=now, limit=n), limit):
        outcome = adapters.deliver(
            claim.target,
            claim.body,
            event_id=claim.event_id,
            instance_path=settings.instance_path,
            timeout_seconds=timeout_seconds,
        )
        if not outcome.ok:
            log.warning("provisioning event %s: %s", claim.event_id, outcome.error)
        with db.transaction() as session:
            result = record_outcome(
                session, event_id=claim.event_id, attempt=claim.attempt, outcome=outcome, now=now
            )
        if result is not None:
            counts[result] += 1
    return DeliveryReport(**counts)


# -- staff ------------------------------------------------------------------------------


def get_event(session: Session, event_id: int) -> ProvisioningEvent:
    """The provisioning event `event_id`. :raises EventNotFound."""
    event = session.get(ProvisioningEvent, event_id)
    if event is None:
        raise EventNotFound(N_("No provisioning event %(id)s."), id=event_id)
    return event


def retry_dead_event(
    session: Session, *, event_id: int, actor: Actor, now: datetime
) -> ProvisioningEvent:
    """Queue a dead event again with a fresh count of attempts, due at once.

    Locks the event; audited. Not idempotent by design: each retry is a new
    round of up to `MAX_ATTEMPTS` attempts.
    :raises EventNotFound: no such event. :raises EventState: the event is not dead.
    """
    event = lock_by_id(session, ProvisioningEvent, event_id)
    if event is None:
        raise EventNotFound(N_("No provisioning event %(id)s."), id=event_id)
    if event.status != "dead":
        raise EventState(
            N_("Provisioning event %(id)s is %(status)s; only a dead event can be retried."),
            id=event_id,
            status=event.status,
        )
    details = {"attempts": event.attempts, "last_error": event.last_error}
    requeue(event, now=now)
    session.add(event)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="provisioning.retry",
        now=now,
        target_type="provisioning_event",
        target_id=event_id,
        details=details,
    )
    return event


def list_events(
    session: Session,
    *,
    status: str | None = None,
    line_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ProvisioningEvent], int]:
    """Events, dead letters first, then waiting ones, then delivered; newest first within each.

    Returns (events, total).
    """
    assert status is None or status in EVENT_STATUSES, status
    query = select(ProvisioningEvent)
    if status is not None:
        query = query.where(col(ProvisioningEvent.status) == status)
    if line_id is not None:
        query = query.where(col(ProvisioningEvent.line_id) == line_id)
    return list_dead_first(session, ProvisioningEvent, query, limit=limit, offset=offset)


def list_events_of_lines(
    session: Session, *, line_ids: Sequence[int], limit: int = 50, offset: int = 0
) -> tuple[list[ProvisioningEvent], int]:
    """The events of some lines (a customer's), ordered as `list_events`: (events, total)."""
    query = select(ProvisioningEvent).where(col(ProvisioningEvent.line_id).in_(list(line_ids)))
    return list_dead_first(session, ProvisioningEvent, query, limit=limit, offset=offset)


def count_by_status(session: Session) -> dict[str, int]:
    """How many events are pending, delivered and dead (every status present)."""
    return outbox.count_by_status(session, ProvisioningEvent, EVENT_STATUSES)
