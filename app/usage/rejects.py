"""Rejected usage rows: listing them, and reprocessing them once the cause is fixed.

Reprocessing reads a host's open rejects again through the importer's own
pipeline (`charge_rows`), file by file with each file's header, as one
`UsageFile` of kind `reprocess`. A reject that now charges, or whose record
id has been charged meanwhile (a duplicate), is `resolved` and names that
run; one that still fails stays open with its reason brought up to date.
Nothing is charged twice: the records go through the same duplicate check,
and the ledger keys name the run.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from app.core.audit import Actor, record_audit
from app.usage.importer import charge_rows, read_rows
from app.usage.models import UsageFile, UsageReject
from app.usage.store import lock_host
from wholesale.services import get_host_by_code

MAX_REPROCESS = 100_000
_IDS_PER_QUERY = 5_000


@dataclass(frozen=True)
class ReprocessResult:
    """What a reprocessing run did with the rejects it tried."""

    host: str
    file_id: int | None
    tried: int
    charged: int
    duplicates: int
    still_rejected: int

    def as_dict(self) -> dict[str, Any]:
        """Counts for `--json` and the API."""
        return {
            "host": self.host,
            "file_id": self.file_id,
            "tried": self.tried,
            "charged": self.charged,
            "duplicates": self.duplicates,
            "still_rejected": self.still_rejected,
        }


def list_rejects(
    session: Session,
    *,
    host_id: int | None = None,
    file_id: int | None = None,
    status: str | None = "open",
    reason: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[UsageReject], int]:
    """A page of rejects (newest file first, then by line) and how many match."""
    query = select(UsageReject)
    if host_id is not None:
        query = query.where(UsageReject.host_id == host_id)
    if file_id is not None:
        query = query.where(UsageReject.file_id == file_id)
    if status:
        query = query.where(UsageReject.status == status)
    if reason:
        query = query.where(UsageReject.reason == reason)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(UsageReject.file_id).desc(), col(UsageReject.line_no))
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), int(total)


def _open_rejects(session: Session, host_id: int, ids: list[int] | None) -> list[UsageReject]:
    query = select(UsageReject).where(UsageReject.host_id == host_id, UsageReject.status == "open")
    order = (col(UsageReject.file_id), col(UsageReject.line_no))
    if ids is None:
        return list(session.exec(query.order_by(*order).limit(MAX_REPROCESS)))
    # Asked by id: in chunks, as one IN list of a whole file's rejects would pass
    # the databases' limits on bound parameters (SQLite 32,766, PostgreSQL 65,535).
    wanted = sorted(set(ids))
    found: list[UsageReject] = []
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start : start + _IDS_PER_QUERY]
        found.extend(session.exec(query.where(col(UsageReject.id).in_(chunk))))
    found.sort(key=lambda reject: (reject.file_id, reject.line_no))
    return found[:MAX_REPROCESS]


def _retry_file(
    session: Session,
    rejects: list[UsageReject],
    header: str,
    *,
    host: Any,
    run: UsageFile,
    actor: Actor,
    now: datetime,
) -> tuple[int, int]:
    """Run one original file's rejects through the pipeline; returns (charged, duplicates)."""
    body = "\n".join([header, *(reject.raw for reject in rejects)]) + "\n"
    data = body.encode("utf-8")
    assert run.id is not None
    with tempfile.TemporaryDirectory(prefix="mvno-reprocess-") as folder:
        path = Path(folder) / "rejects.csv"
        path.write_bytes(data)
        con, rows = read_rows(data, path, host=host)
        try:
            charged = charge_rows(
                session, con, data, rows=rows, host=host, file_id=run.id, actor=actor, now=now
            )
        finally:
            con.close()
    still = {reject.line: reject.reason for reject in charged.rejects}
    for number, reject in enumerate(rejects, start=2):
        if number in still:
            reject.reason = still[number]
        else:
            reject.status = "resolved"
            reject.resolved_file_id = run.id
            reject.resolved_at = now
        session.add(reject)
    run.charge_minor += charged.charge_minor
    return charged.charged, charged.duplicates


def reprocess_rejects(
    session: Session,
    *,
    host_code: str,
    actor: Actor,
    now: datetime,
    reject_ids: list[int] | None = None,
) -> ReprocessResult:
    """Try the host's open rejects (all, or `reject_ids`) again, in the caller's transaction.

    :raises HostNotFound: no host with that code.
    """
    host = get_host_by_code(session, host_code)
    assert host.id is not None
    lock_host(session, host.id)
    rejects = _open_rejects(session, host.id, reject_ids)
    if not rejects:
        return ReprocessResult(host.code, None, 0, 0, 0, 0)
    digest = hashlib.sha256(
        f"reprocess:{now.isoformat()}:{','.join(str(r.id) for r in rejects)}".encode()
    ).hexdigest()
    run = UsageFile(
        host_id=host.id,
        kind="reprocess",
        filename=f"reprocess of {len(rejects)} rejects",
        sha256=digest,
        actor=actor.label[:254],
        created_at=now,
    )
    session.add(run)
    session.flush()
    by_file: dict[int, list[UsageReject]] = {}
    for reject in rejects:
        by_file.setdefault(reject.file_id, []).append(reject)
    charged = duplicates = 0
    for file_id, group in sorted(by_file.items()):
        original = session.get(UsageFile, file_id)
        assert original is not None
        c, d = _retry_file(
            session, group, original.header, host=host, run=run, actor=actor, now=now
        )
        charged, duplicates = charged + c, duplicates + d
    still = len(rejects) - charged - duplicates
    run.rows_total, run.charged, run.duplicates, run.rejected = (
        len(rejects),
        charged,
        duplicates,
        still,
    )
    session.add(run)
    record_audit(
        session,
        actor=actor,
        action="usage.reprocess",
        target_type="usage_file",
        target_id=run.id,
        now=now,
        details={
            "host": host.code,
            "tried": len(rejects),
            "charged": charged,
            "duplicates": duplicates,
        },
    )
    session.flush()
    return ReprocessResult(host.code, run.id, len(rejects), charged, duplicates, still)
