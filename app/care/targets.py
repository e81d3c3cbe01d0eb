"""The SLA targets table: how long each category and priority may take (DESIGN §11).

One row per (category, priority), seeded by migration 0010 with
`DEFAULT_SLA_TARGETS` (app/care/models.py, which explains the choice) and
edited by admins. A ticket takes its target when it opens; editing a target
later changes no due instant already set. A row that is missing (never in
a seeded database, but cheap to guard) falls back to its default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from app.care.errors import TicketInvalid
from app.care.models import CATEGORIES, DEFAULT_SLA_TARGETS, PRIORITIES, SlaTarget
from app.core.audit import Actor, apply_changes, record_audit
from app.core.errors import N_

# Thirty days: a longer target is not a service level.
MAX_TARGET_MINUTES = 30 * 24 * 60


@dataclass(frozen=True)
class Terms:
    """What a ticket opens with: minutes to first response and to resolution, and its clock."""

    first_response_minutes: int
    resolution_minutes: int
    around_the_clock: bool


def _check_pair(category: str, priority: str) -> None:
    if category not in CATEGORIES:
        raise TicketInvalid(N_("Unknown category %(value)s."), field="category", value=category)
    if priority not in PRIORITIES:
        raise TicketInvalid(N_("Unknown priority %(value)s."), field="priority", value=priority)


def target_terms(session: Session, *, category: str, priority: str) -> Terms:
    """The terms a new ticket of this category and priority opens with.

    :raises TicketInvalid: an unknown category or priority.
    """
    _check_pair(category, priority)
    row = session.exec(
        select(SlaTarget).where(SlaTarget.category == category, SlaTarget.priority == priority)
    ).first()
    if row is None:
        return Terms(*DEFAULT_SLA_TARGETS[(category, priority)])
    return Terms(row.first_response_minutes, row.resolution_minutes, row.around_the_clock)


def list_sla_targets(session: Session) -> list[SlaTarget]:
    """Every (category, priority) target in the order of the category and priority lists.

    Pairs missing from the table are shown with their defaults (not written).
    """
    rows = {(row.category, row.priority): row for row in session.exec(select(SlaTarget))}
    targets = []
    for category in CATEGORIES:
        for priority in PRIORITIES:
            row = rows.get((category, priority))
            if row is None:
                first, resolution, around = DEFAULT_SLA_TARGETS[(category, priority)]
                row = SlaTarget(
                    category=category,
                    priority=priority,
                    first_response_minutes=first,
                    resolution_minutes=resolution,
                    around_the_clock=around,
                    updated_at=datetime.min.replace(tzinfo=UTC),
                )
            targets.append(row)
    return targets


def _check_minutes(first_response_minutes: int, resolution_minutes: int) -> None:
    for field, value in (
        ("first_response_minutes", first_response_minutes),
        ("resolution_minutes", resolution_minutes),
    ):
        if not 1 <= value <= MAX_TARGET_MINUTES:
            raise TicketInvalid(
                N_("A target is between 1 and %(max)s minutes."),
                field=field,
                max=MAX_TARGET_MINUTES,
            )
    if resolution_minutes < first_response_minutes:
        raise TicketInvalid(
            N_("Resolution cannot be due before the first response."), field="resolution_minutes"
        )


def update_sla_target(
    session: Session,
    *,
    category: str,
    priority: str,
    first_response_minutes: int,
    resolution_minutes: int,
    around_the_clock: bool,
    actor: Actor,
    now: datetime,
) -> SlaTarget:
    """Set one target; audited with what changed. Tickets already open keep their due times.

    Locks the row. :raises TicketInvalid: unknown pair, minutes out of range,
    or resolution shorter than the first response.
    """
    _check_pair(category, priority)
    _check_minutes(first_response_minutes, resolution_minutes)
    row = session.exec(
        select(SlaTarget)
        .where(col(SlaTarget.category) == category, col(SlaTarget.priority) == priority)
        .with_for_update()
    ).first()
    if row is None:
        first, resolution, around = DEFAULT_SLA_TARGETS[(category, priority)]
        row = SlaTarget(
            category=category,
            priority=priority,
            first_response_minutes=first,
            resolution_minutes=resolution,
            around_the_clock=around,
            updated_at=now,
        )
    changes = apply_changes(
        row,
        {
            "first_response_minutes": first_response_minutes,
            "resolution_minutes": resolution_minutes,
            "around_the_clock": around_the_clock,
        },
    )
    row.updated_at = now
    session.add(row)
    session.flush()
    if changes:
        record_audit(
            session,
            actor=actor,
            action="sla_target.update",
            now=now,
            target_type="sla_target",
            target_id=f"{category}:{priority}",
            details=changes,
        )
    return row
