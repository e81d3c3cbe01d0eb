"""Audit log: who did what to which object, written in the same transaction.

`record_audit` adds a row to the caller's session, so the audit record
commits or rolls back with the change it describes — there is never a
change without its record, nor a record of a change that did not happen.
Details must not hold secrets or unmasked personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, and_, or_
from sqlmodel import Field, Session, SQLModel, col, func, select

from app.core.db import UTCDateTime


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user, a subscriber, an API key, the CLI or the system."""

    kind: str  # staff | subscriber | api_key | cli | system
    id: int | None = None
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind="system", label=label)

    @classmethod
    def cli(cls) -> Actor:
        return cls(kind="cli", label="mvno")


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_target", "target_type", "target_id"),
        # The records of an action by time (an action's records of a day, its recent
        # tries); no query reads records by time alone.
        Index("ix_audit_entry_action_at", "action", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    actor_kind: str = Field(max_length=20)
    actor_id: int | None = None
    actor_label: str = Field(default="", max_length=200)
    action: str = Field(max_length=80)
    target_type: str = Field(default="", max_length=60)
    target_id: str = Field(default="", max_length=80)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ip: str | None = Field(default=None, max_length=64)


def record_audit(
    session: Session,
    *,
    actor: Actor,
    action: str,
    now: datetime,
    target_type: str = "",
    target_id: object = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add one audit record to the caller's transaction (flushed with it)."""
    entry = AuditEntry(
        at=now,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id != "" else "",
        details=details or {},
        ip=ip,
    )
    session.add(entry)
    session.flush()
    return entry


def audit_row(
    actor: Actor,
    action: str,
    now: datetime,
    *,
    target_type: str,
    target_id: object,
    details: dict[str, Any],
) -> dict[str, Any]:
    """One audit record as a row, for a bulk insert of many (`record_audit`'s fields)."""
    return {
        "at": now,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "details": details,
        "ip": None,
    }


def list_audit(
    session: Session, *, page: int = 1, per_page: int = 50, action: str | None = None
) -> tuple[list[AuditEntry], int]:
    """Newest first, paged; returns (entries, total)."""
    page = max(page, 1)
    per_page = min(max(per_page, 1), 200)
    query = select(AuditEntry)
    count = select(func.count()).select_from(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
        count = count.where(AuditEntry.action == action)
    query = query.order_by(AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page)  # type: ignore[union-attr]
    return list(session.exec(query)), session.exec(count).one()


def count_audit(session: Session) -> int:
    """How many audit records there are (`list_audit`'s total without an action)."""
    return session.exec(select(func.count()).select_from(AuditEntry)).one()


def apply_changes(row: Any, fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set `fields` on `row` and return what changed as {field: {"before", "after"}}.

    The result is what an update's audit record lists; empty when nothing changed.
    """
    changes = {
        key: {"before": getattr(row, key), "after": value}
        for key, value in fields.items()
        if getattr(row, key) != value
    }
    for key, change in changes.items():
        setattr(row, key, change["after"])
    return changes


def count_recent(session: Session, *, action: str, ip: str, since: datetime) -> int:
    """How many `action` records came from address `ip` after `since` (for per-address limits)."""
    return session.exec(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == action, AuditEntry.ip == ip, AuditEntry.at > since)
    ).one()


def list_audit_of_targets(
    session: Session,
    *,
    targets: list[tuple[str, list[str]]],
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Records about any of `targets` ((target type, target ids) pairs), newest first, paged.

    Each pair is read through the (target type, target id) index; returns
    (entries, total), nothing when no pair names an id.
    """
    conditions = [
        and_(col(AuditEntry.target_type) == kind, col(AuditEntry.target_id).in_(ids))
        for kind, ids in targets
        if ids
    ]
    if not conditions:
        return [], 0
    where = or_(*conditions)
    query = (
        select(AuditEntry)
        .where(where)
        .order_by(col(AuditEntry.id).desc())
        .offset(max(offset, 0))
        .limit(min(max(limit, 1), 200))
    )
    total = session.exec(select(func.count()).select_from(AuditEntry).where(where)).one()
    return list(session.exec(query)), total
