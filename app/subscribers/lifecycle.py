"""The line lifecycle (DESIGN §10): one service per change of a line's status.

    pending ──activate──▶ active ◀──resume── suspended
                            └──────suspend──────▶┘
    pending | active | suspended ──terminate──▶ terminated
    pending | active | suspended ──transfer───▶ transferred   (to the host, at exit)
              active | suspended ──port_out───▶ ported_out
    pending | active | suspended ──change_plan─ (next_plan_id, applied at renewal)

Rules every service follows:

* It locks the line row (`FOR UPDATE`), so two changes of one line are
  serialised and the second sees the first's result.
* A change the current status forbids raises `LineStateError` (`line_state`,
  409) naming the status, and writes nothing.
* A change writes, in the caller's transaction, `status_changed_at`, one
  audit record and one provisioning event for the host (app/provisioning).
  The exception is activation: the host acknowledging the `activate` event
  (written by `request_activation` when the pending line is opened) *is* its
  confirmation, so `activate_line` records the change and the audit record
  but sends the host nothing.
* **Repeats are no-ops.** Asking for the status the line already has
  (suspending a suspended line, terminating a terminated one, resuming an
  active one, the same plan change again) changes nothing and writes no
  event and no audit record, so a double click or a retried API call does
  not send the host a second command.
* Numbers and SIMs follow through numbering's services: termination
  quarantines the number for `quarantine_days` and retires the SIM; a port
  out marks the number ported out and retires the SIM; a transfer leaves
  both to the host (the exit marks numbers returned); activation turns an
  assigned SIM active. A number outside our blocks, or a SIM whose stock
  record is in another state, is left as it is and the audit record says so.
* A SIM swap (`swap_sim`) is not a status change but follows the same
  rules: the line is locked, a final line is refused, the host gets a
  `swap_sim` event with the old and new ICCID/IMSI. The new SIM must be in
  stock on the line's host; it becomes active on an active line and
  assigned otherwise. The old SIM is **retired** (scrapped: damaged, worn,
  a move to eSIM) unless it was lost or stolen, when it is **blocked** so
  that whoever holds it cannot use it and stock shows why it went.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_, InvalidInput, clean_text
from app.core.events import emit
from app.provisioning.services import enqueue_event
from app.subscribers.errors import LineNotFound, LineStateError
from app.subscribers.events import LineActivated
from app.subscribers.models import FINAL_LINE_STATUSES, Customer, Line, PurchaseOrder
from app.subscribers.notices import notify_customer
from numbering.lifecycle import port_out_number, quarantine_number
from numbering.models import Sim
from numbering.search import find_number
from numbering.sims import set_sim_status, take_sim_from_stock
from plans.models import Plan

__all__ = [
    "activate_line",
    "change_plan",
    "confirm_activation",
    "port_out_line",
    "request_activation",
    "resume_line",
    "suspend_line",
    "swap_sim",
    "terminate_line",
    "transfer_line",
]

MAX_REASON = limits.NOTE
LIVE = ("pending", "active", "suspended")

# Refusals, one whole sentence per change so each translates as a sentence
# (a verb filled into a template would stay English in Chinese). The status
# is shown as its code.
_REFUSALS = {
    "activate": N_("Line %(msisdn)s cannot be activated: its status is %(status)s."),
    "suspend": N_("Line %(msisdn)s cannot be suspended: its status is %(status)s."),
    "resume": N_("Line %(msisdn)s cannot be resumed: its status is %(status)s."),
    "terminate": N_("Line %(msisdn)s cannot be terminated: its status is %(status)s."),
    "transfer": N_("Line %(msisdn)s cannot be transferred: its status is %(status)s."),
    "port_out": N_("Line %(msisdn)s cannot be ported out: its status is %(status)s."),
    "change_plan": N_("Line %(msisdn)s cannot change plan: its status is %(status)s."),
    "swap_sim": N_("Line %(msisdn)s cannot have its SIM swapped: its status is %(status)s."),
    "request_activation": N_(
        "Line %(msisdn)s cannot be sent for activation: its status is %(status)s."
    ),
}


def _lock_line(session: Session, line_id: int) -> Line:
    line = lock_by_id(session, Line, line_id)
    if line is None:
        raise LineNotFound(N_("No line %(id)s."), id=line_id)
    return line


def _refuse(line: Line, change: str) -> LineStateError:
    return LineStateError(_REFUSALS[change], field="status", msisdn=line.msisdn, status=line.status)


def _reason(reason: str | None, *, required: bool) -> str:
    return clean_text(reason, field="reason", max_length=MAX_REASON, required=required)


def _plan(session: Session, plan_id: int) -> Plan:
    plan = session.get(Plan, plan_id)
    assert plan is not None, f"line refers to missing plan {plan_id}"
    return plan


def _payload(session: Session, line: Line, **extra: Any) -> dict[str, Any]:
    """What the host needs to act on a line; no personal data (that needs consent)."""
    sim = session.get(Sim, line.sim_id) if line.sim_id is not None else None
    return {
        "msisdn": line.msisdn,
        "iccid": sim.iccid if sim else None,
        "imsi": sim.imsi if sim else None,
        "plan": _plan(session, line.plan_id).code,
        **extra,
    }


def _host_id(session: Session, line: Line) -> int:
    """The host a line lives on: its SIM's host, else its plan's."""
    if line.sim_id is not None:
        sim = session.get(Sim, line.sim_id)
        if sim is not None:
            return sim.host_id
    return _plan(session, line.plan_id).host_id


def _record(
    session: Session,
    line: Line,
    *,
    action: str,
    event: str | None,
    actor: Actor,
    now: datetime,
    details: dict[str, Any],
    payload: dict[str, Any] | None = None,
) -> None:
    """Write the audit record and the provisioning event of a change already applied."""
    assert line.id is not None
    session.add(line)
    session.flush()
    event_id = None
    if event is not None:
        row = enqueue_event(
            session,
            line_id=line.id,
            host_id=_host_id(session, line),
            action=event,
            payload=payload if payload is not None else _payload(session, line),
            now=now,
        )
        event_id = row.id
    record_audit(
        session,
        actor=actor,
        action=f"line.{action}",
        now=now,
        target_type="line",
        target_id=line.id,
        details={"msisdn": line.msisdn, **details, "provisioning_event": event_id},
    )


def _move(
    session: Session,
    *,
    line_id: int,
    change: str,
    sources: tuple[str, ...],
    target: str,
) -> tuple[Line, str | None]:
    """Lock the line and check the change; returns (line, status before) or (line, None)
    when the line already has `target` (a no-op)."""
    line = _lock_line(session, line_id)
    if line.status == target:
        return line, None
    if line.status not in sources:
        raise _refuse(line, change)
    return line, line.status


def _set_status(line: Line, status: str, now: datetime) -> None:
    line.status = status
    line.status_changed_at = now


# -- activation -------------------------------------------------------------------------


def request_activation(session: Session, *, line_id: int, actor: Actor, now: datetime) -> Line:
    """Ask the host to activate a pending line: writes its `activate` event and an audit record.

    Called when a paid line is opened. Locks the line. Not a status change:
    the line stays pending until the host acknowledges the event.
    :raises LineStateError: the line is not pending.
    """
    line = _lock_line(session, line_id)
    if line.status != "pending":
        raise _refuse(line, "request_activation")
    _record(
        session,
        line,
        action="request_activation",
        event="activate",
        actor=actor,
        now=now,
        details={},
    )
    return line


def activate_line(session: Session, *, line_id: int, actor: Actor, now: datetime) -> Line:
    """pending → active, when the host confirms; the SIM becomes active.

    A line with no period yet (a line bought in the store) gets its first
    period from now, already paid by its order, and the customer is sent
    the `line_active` notice. Locks the line. Idempotent (an active line is
    returned as it is). Writes the audit record and no provisioning event
    (see the module docstring).
    :raises LineStateError: the line is neither pending nor active.
    """
    line, before = _move(
        session, line_id=line_id, change="activate", sources=("pending",), target="active"
    )
    if before is None:
        return line
    _set_status(line, "active", now)
    details: dict[str, Any] = {"from": before, "to": "active"}
    if line.sim_id is not None:
        details["sim"] = set_sim_status(
            session, sim_id=line.sim_id, status="active", now=now
        ).status
    if line.period_end is None:
        _open_first_period(session, line, now=now)
    _record(session, line, action="activate", event=None, actor=actor, now=now, details=details)
    customer = session.get(Customer, line.customer_id)
    if customer is not None:
        notify_customer(
            session,
            customer,
            kind="line_active",
            now=now,
            data={"msisdn": line.msisdn, "plan": _plan(session, line.plan_id).code},
            dedupe_key=f"line_active:{line.id}",
        )
    return line


def _open_first_period(session: Session, line: Line, *, now: datetime) -> None:
    """A bought line's first period starts when the host activates it.

    It was paid when the order completed (the order's journal entry), so
    opening it — charging's handler of `LineActivated` — charges nothing again.
    """
    assert line.id is not None
    order = session.exec(select(PurchaseOrder).where(PurchaseOrder.line_id == line.id)).first()
    emit(
        session,
        LineActivated(
            line_id=line.id, now=now, entry_id=order.entry_id if order is not None else None
        ),
    )


def confirm_activation(session: Session, *, line_id: int, event_id: int, now: datetime) -> None:
    """The host acknowledged a line's `activate` event: activate the line if still pending.

    A line that changed meanwhile (terminated before the host answered) is
    left as it is; its later events tell the host.
    """
    line = _lock_line(session, line_id)
    if line.status == "pending":
        activate_line(
            session, line_id=line_id, actor=Actor.system(f"provisioning event {event_id}"), now=now
        )


# -- suspension -------------------------------------------------------------------------


def suspend_line(
    session: Session, *, line_id: int, reason: str, actor: Actor, now: datetime
) -> Line:
    """active → suspended (bars service; the number and SIM stay with the line).

    Locks the line. Idempotent: a suspended line is returned unchanged.
    :raises LineStateError: the line is not active or suspended.
    :raises InvalidInput: no reason given.
    """
    reason = _reason(reason, required=True)
    line, before = _move(
        session, line_id=line_id, change="suspend", sources=("active",), target="suspended"
    )
    if before is None:
        return line
    _set_status(line, "suspended", now)
    _record(
        session,
        line,
        action="suspend",
        event="suspend",
        actor=actor,
        now=now,
        details={"from": before, "to": "suspended", "reason": reason},
    )
    return line


def resume_line(
    session: Session, *, line_id: int, reason: str, actor: Actor, now: datetime
) -> Line:
    """suspended → active. Locks the line. Idempotent: an active line is returned unchanged.

    :raises LineStateError: the line is neither suspended nor active.
    :raises InvalidInput: no reason given.
    """
    reason = _reason(reason, required=True)
    line, before = _move(
        session, line_id=line_id, change="resume", sources=("suspended",), target="active"
    )
    if before is None:
        return line
    _set_status(line, "active", now)
    _record(
        session,
        line,
        action="resume",
        event="resume",
        actor=actor,
        now=now,
        details={"from": before, "to": "active", "reason": reason},
    )
    return line


# -- endings ----------------------------------------------------------------------------


def _quarantine(session: Session, line: Line, *, now: datetime, days: int) -> str:
    number = find_number(session, line.msisdn)
    if number is None:
        return "not_ours"
    if number.status == "assigned":
        number = quarantine_number(session, msisdn=line.msisdn, now=now, days=days)
    return number.status


def _retire_sim(session: Session, line: Line, now: datetime) -> str | None:
    if line.sim_id is None:
        return None
    return set_sim_status(session, sim_id=line.sim_id, status="retired", now=now).status


def terminate_line(
    session: Session,
    *,
    line_id: int,
    reason: str,
    quarantine_days: int,
    actor: Actor,
    now: datetime,
) -> Line:
    """pending | active | suspended → terminated: the number rests in quarantine
    for `quarantine_days`, the SIM is retired.

    Locks the line. Idempotent: a terminated line is returned unchanged.
    :raises LineStateError: the line was transferred or ported out.
    :raises InvalidInput: no reason given, or negative quarantine days.
    """
    reason = _reason(reason, required=True)
    if (
        isinstance(quarantine_days, bool)
        or not isinstance(quarantine_days, int)
        or quarantine_days < 0
    ):
        raise InvalidInput(N_("Quarantine days must be 0 or more."), field="quarantine_days")
    line, before = _move(
        session, line_id=line_id, change="terminate", sources=LIVE, target="terminated"
    )
    if before is None:
        return line
    _set_status(line, "terminated", now)
    line.next_plan_id = None
    details = {
        "from": before,
        "to": "terminated",
        "reason": reason,
        "number": _quarantine(session, line, now=now, days=quarantine_days),
        "sim": _retire_sim(session, line, now),
    }
    _record(
        session, line, action="terminate", event="terminate", actor=actor, now=now, details=details
    )
    return line


def transfer_line(
    session: Session, *, line_id: int, reason: str = "", actor: Actor, now: datetime
) -> Line:
    """pending | active | suspended → transferred: the subscriber moves to the host at exit.

    The number and SIM go with the subscriber and are left as they are.
    Locks the line. Idempotent: a transferred line is returned unchanged.
    :raises LineStateError: the line was terminated or ported out.
    """
    reason = _reason(reason, required=False)
    line, before = _move(
        session, line_id=line_id, change="transfer", sources=LIVE, target="transferred"
    )
    if before is None:
        return line
    _set_status(line, "transferred", now)
    line.next_plan_id = None
    _record(
        session,
        line,
        action="transfer",
        event="transfer_to_host",
        actor=actor,
        now=now,
        details={"from": before, "to": "transferred", "reason": reason},
    )
    return line


def port_out_line(
    session: Session, *, line_id: int, reason: str = "", actor: Actor, now: datetime
) -> Line:
    """active | suspended → ported_out: the number leaves for another operator; the SIM is retired.

    Locks the line. Idempotent: a ported-out line is returned unchanged.
    :raises LineStateError: the line is pending or has ended otherwise.
    """
    reason = _reason(reason, required=False)
    line, before = _move(
        session,
        line_id=line_id,
        change="port_out",
        sources=("active", "suspended"),
        target="ported_out",
    )
    if before is None:
        return line
    _set_status(line, "ported_out", now)
    line.next_plan_id = None
    number = find_number(session, line.msisdn)
    if number is not None and number.status == "assigned":
        number = port_out_number(session, msisdn=line.msisdn, now=now)
    details = {
        "from": before,
        "to": "ported_out",
        "reason": reason,
        "number": number.status if number is not None else "not_ours",
        "sim": _retire_sim(session, line, now),
    }
    _record(
        session, line, action="port_out", event="port_out", actor=actor, now=now, details=details
    )
    return line


# -- plan change ------------------------------------------------------------------------


def change_plan(
    session: Session,
    *,
    line_id: int,
    plan_id: int,
    reason: str = "",
    actor: Actor,
    now: datetime,
) -> Line:
    """Record the plan the line moves to at its next renewal (`next_plan_id`).

    Choosing the line's current plan cancels a pending change. Locks the
    line. Idempotent: the same choice again writes nothing. The status does
    not change; the host is told at once which plan comes next.
    :raises LineStateError: the line has ended.
    :raises InvalidInput: the plan is unknown, not on sale or of another host.
    """
    reason = _reason(reason, required=False)
    line = _lock_line(session, line_id)
    if line.status in FINAL_LINE_STATUSES:
        raise _refuse(line, "change_plan")
    plan = session.get(Plan, plan_id)
    current = _plan(session, line.plan_id)
    if plan is None or (plan.id != current.id and plan.status != "published"):
        raise InvalidInput(N_("No plan on sale with id %(id)s."), field="plan_id", id=plan_id)
    if plan.host_id != current.host_id:
        raise InvalidInput(
            N_("Plan %(code)s is on another host's network."), field="plan_id", code=plan.code
        )
    wanted = None if plan.id == line.plan_id else plan.id
    if wanted == line.next_plan_id:
        return line
    before = line.next_plan_id
    line.next_plan_id = wanted
    _record(
        session,
        line,
        action="change_plan",
        event="change_plan",
        actor=actor,
        now=now,
        details={"next_plan_before": before, "next_plan": wanted, "reason": reason},
        payload=_payload(session, line, next_plan=plan.code, effective="next_renewal"),
    )
    return line


# -- SIM swap ---------------------------------------------------------------------------


def swap_sim(
    session: Session,
    *,
    line_id: int,
    iccid: str,
    reason: str,
    actor: Actor,
    now: datetime,
    lost: bool = False,
) -> Line:
    """Move a line to the in-stock SIM `iccid` of its host; the old SIM is retired,
    or blocked when `lost` (lost or stolen).

    Locks the line; the new SIM is taken from stock by one conditional
    UPDATE, so two swaps racing for it cannot both get it. Idempotent: asking
    for the SIM the line already has writes nothing.
    :raises LineStateError: the line has ended.
    :raises SimNotFound: no SIM has this ICCID.
    :raises SimUnavailable: the SIM is of another host or not in stock.
    :raises InvalidInput: no reason or no ICCID given.
    """
    reason = _reason(reason, required=True)
    wanted = re.sub(r"\s", "", iccid or "")
    line = _lock_line(session, line_id)
    if line.status in FINAL_LINE_STATUSES:
        raise _refuse(line, "swap_sim")
    old = session.get(Sim, line.sim_id) if line.sim_id is not None else None
    if old is not None and wanted and old.iccid == wanted:
        return line
    new = take_sim_from_stock(
        session,
        iccid=wanted,
        host_id=_host_id(session, line),
        status="active" if line.status == "active" else "assigned",
        now=now,
    )
    old_status = None
    if old is not None and old.id is not None:
        old_status = set_sim_status(
            session, sim_id=old.id, status="blocked" if lost else "retired", now=now
        ).status
    line.sim_id = new.id
    payload = _payload(
        session,
        line,
        kind=new.kind,
        old_iccid=old.iccid if old else None,
        old_imsi=old.imsi if old else None,
    )
    _record(
        session,
        line,
        action="swap_sim",
        event="swap_sim",
        actor=actor,
        now=now,
        details={
            "reason": reason,
            "lost": lost,
            "old_iccid": old.iccid if old else None,
            "old_sim": old_status,
            "iccid": new.iccid,
            "sim": new.status,
        },
        payload=payload,
    )
    return line
