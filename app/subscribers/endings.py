"""Ending many lines at once: the market exit's transfers and terminations (DESIGN §10, §12).

The same moves as `lifecycle.transfer_line` and `lifecycle.terminate_line`
— pending | active | suspended → transferred | terminated, the pending
plan change dropped, the provisioning event (`transfer_to_host`,
`terminate`) written in the same transaction, one audit record per line —
done set-based for a whole population. At an exit every number goes back
to the host, so a terminated line's number is not quarantined (the caller
returns the blocks); its SIM is retired. A transferred line's SIM goes with
the subscriber to the host and is left as it is. Lines already ended are
left alone (a rerun changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col

from app.core.audit import Actor, AuditEntry, audit_row
from app.core.db import insert_rows
from app.ledger.accounts import in_chunks
from app.provisioning.models import ProvisioningEvent
from app.subscribers.models import FINAL_LINE_STATUSES, Line
from numbering.models import Sim
from numbering.sims import retire_sims
from plans.models import Plan

_LINE = Line.__table__  # type: ignore[attr-defined]
_EVENT = ProvisioningEvent.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
_MOVES = {"transferred": ("transfer", "transfer_to_host"), "terminated": ("terminate", "terminate")}


@dataclass(frozen=True)
class Ended:
    """How many lines a call ended, by outcome."""

    transferred: int = 0
    terminated: int = 0


def _live_rows(session: Session, line_ids: list[int]) -> list[Any]:
    """The lines of `line_ids` not ended, locked, with what their events need."""
    rows: list[Any] = []
    for chunk in in_chunks(sorted(line_ids)):
        rows.extend(
            session.execute(
                sa_select(
                    col(Line.id),
                    col(Line.msisdn),
                    col(Line.status),
                    col(Line.sim_id),
                    col(Plan.code),
                    col(Plan.host_id),
                    col(Sim.iccid),
                    col(Sim.imsi),
                    col(Sim.host_id).label("sim_host_id"),
                )
                .join(Plan, col(Plan.id) == col(Line.plan_id))
                .outerjoin(Sim, col(Sim.id) == col(Line.sim_id))
                .where(col(Line.id).in_(chunk), col(Line.status).not_in(FINAL_LINE_STATUSES))
                .order_by(col(Line.id))
                .with_for_update(of=_LINE)
            ).all()
        )
    return rows


def end_lines(
    session: Session,
    *,
    outcomes: Mapping[int, str],
    reason: str,
    actor: Actor,
    now: datetime,
) -> Ended:
    """End each line of `outcomes` (line id → "transferred" | "terminated"), set-based.

    Lines already ended are skipped. Locks the lines (id order).
    """
    assert set(outcomes.values()) <= set(_MOVES), outcomes
    rows = _live_rows(session, list(outcomes))
    if not rows:
        return Ended()
    session.flush()
    # One UPDATE per outcome and chunk of ids, not one per line.
    for outcome in sorted(_MOVES):
        for chunk in in_chunks([row.id for row in rows if outcomes[row.id] == outcome]):
            session.execute(
                update(_LINE)
                .where(_LINE.c.id.in_(chunk))
                .values(status=outcome, status_changed_at=now, next_plan_id=None),
                execution_options={"synchronize_session": False},
            )
    event_ids = insert_rows(
        session,
        _EVENT,
        [_event_row(row, _MOVES[outcomes[row.id]][1], now) for row in rows],
        returning=("id", "line_id"),
    )
    event_of = {line_id: event_id for event_id, line_id in event_ids}
    insert_rows(
        session,
        _AUDIT,
        [
            _audit_row(row, outcomes[row.id], reason, event_of.get(row.id), actor, now)
            for row in rows
        ],
    )
    retire_sims(
        session,
        sim_ids=[r.sim_id for r in rows if r.sim_id is not None and outcomes[r.id] == "terminated"],
        now=now,
    )
    for instance in list(session.identity_map.values()):
        if isinstance(instance, Line):
            session.expire(instance)
    transferred = sum(outcomes[row.id] == "transferred" for row in rows)
    return Ended(transferred=transferred, terminated=len(rows) - transferred)


def _event_row(row: Any, action: str, now: datetime) -> dict[str, Any]:
    """The provisioning event of one ended line; no personal data (that needs consent)."""
    return {
        "line_id": row.id,
        "host_id": row.sim_host_id if row.sim_host_id is not None else row.host_id,
        "action": action,
        "payload": {"msisdn": row.msisdn, "iccid": row.iccid, "imsi": row.imsi, "plan": row.code},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }


def _audit_row(
    row: Any, outcome: str, reason: str, event_id: int | None, actor: Actor, now: datetime
) -> dict[str, Any]:
    details: dict[str, Any] = {"msisdn": row.msisdn, "from": row.status, "to": outcome}
    details["reason"] = reason
    if outcome == "terminated":
        details["number"] = "returned"
        details["sim"] = "retired" if row.sim_id is not None else None
    details["provisioning_event"] = event_id
    action = f"line.{_MOVES[outcome][0]}"
    return audit_row(actor, action, now, target_type="line", target_id=row.id, details=details)
