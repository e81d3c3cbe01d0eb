"""Settlement runs and disputes as kept (DESIGN §7): reading them, resolving a dispute.

A run (`SettlementRun`) keeps the text of the two files it wrote, so the
console and the API offer them for download whatever became of the output
folder. A dispute is a difference between the host's invoice and our
settlement; it stays open until staff resolve it with a note (audited), or
a later reconciliation of the same host and month supersedes it
(`app.usage.settlement`). A resolved dispute is never reopened.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.errors import N_, clean_text
from wholesale.errors import DisputeNotFound, DisputeResolved, SettlementRunNotFound
from wholesale.models import SettlementDispute, SettlementRun

MAX_NOTE = limits.NOTE


def list_runs(
    session: Session,
    *,
    host_id: int | None = None,
    month: str | None = None,
    kind: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[SettlementRun], int]:
    """A page of settlement runs, newest first, and how many match."""
    query = select(SettlementRun)
    if host_id is not None:
        query = query.where(SettlementRun.host_id == host_id)
    if month:
        query = query.where(SettlementRun.month == month)
    if kind:
        query = query.where(SettlementRun.kind == kind)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(SettlementRun.id).desc()).offset(offset).limit(limit))
    return list(rows), int(total)


def get_run(session: Session, run_id: int) -> SettlementRun:
    """One settlement run. :raises SettlementRunNotFound:"""
    run = session.get(SettlementRun, run_id)
    if run is None:
        raise SettlementRunNotFound(N_("No settlement run %(id)s."), id=run_id)
    return run


def list_disputes(
    session: Session,
    *,
    host_id: int | None = None,
    status: str | None = "open",
    month: str | None = None,
    run_id: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[SettlementDispute], int]:
    """A page of disputes (latest month first, then by id) and how many match."""
    query = select(SettlementDispute)
    if host_id is not None:
        query = query.where(SettlementDispute.host_id == host_id)
    if status:
        query = query.where(SettlementDispute.status == status)
    if month:
        query = query.where(SettlementDispute.month == month)
    if run_id is not None:
        query = query.where(SettlementDispute.run_id == run_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(SettlementDispute.month).desc(), col(SettlementDispute.id))
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total)


def get_dispute(session: Session, dispute_id: int) -> SettlementDispute:
    """One dispute. :raises DisputeNotFound:"""
    dispute = session.get(SettlementDispute, dispute_id)
    if dispute is None:
        raise DisputeNotFound(N_("No settlement dispute %(id)s."), id=dispute_id)
    return dispute


def resolve_dispute(
    session: Session, *, dispute_id: int, note: str, actor: Actor, now: datetime
) -> SettlementDispute:
    """Mark an open dispute resolved with a note; audited. Locks the dispute.

    :raises DisputeNotFound: :raises DisputeResolved: it was resolved already.
    :raises InvalidInput: an empty or over-long note (field `note`).
    """
    text = clean_text(note, field="note", max_length=MAX_NOTE, required=True)
    dispute = session.exec(
        select(SettlementDispute).where(SettlementDispute.id == dispute_id).with_for_update()
    ).first()
    if dispute is None:
        raise DisputeNotFound(N_("No settlement dispute %(id)s."), id=dispute_id)
    if dispute.status != "open":
        raise DisputeResolved(
            N_("Dispute %(id)s was resolved already: %(note)s"), id=dispute_id, note=dispute.note
        )
    dispute.status = "resolved"
    dispute.note = text
    dispute.resolved_at = now
    session.add(dispute)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="settlement.dispute_resolve",
        target_type="settlement_dispute",
        target_id=dispute.id,
        now=now,
        details={
            "run_id": dispute.run_id,
            "month": dispute.month,
            "service": dispute.service,
            "note": text,
        },
    )
    return dispute
