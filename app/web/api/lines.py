"""JSON API of a line's actions (DESIGN §10, §14), each named by the line's number.

`lines.manage` suspends, resumes and terminates a line, changes its plan at
the next renewal, transfers it to the host, ports it out and swaps its SIM —
each with a reason for the audit log; repeating an action the line has
already had answers 200 with the line unchanged. Terminating and porting
out pay the line's refund (app/exit/termination.py) and answer it; a
repeat pays nothing more and answers the first call's refund. It also buys an add-on for
the line (paid from the customer's prepaid balance, idempotent per
`idempotency_key`) and switches auto-renew.
"""

from __future__ import annotations

from typing import Any

from app.charging.addons import buy_addon, get_addon_by_code
from app.charging.models import LinePeriod
from app.core.clock import utcnow
from app.core.errors import N_
from app.exit.termination import LineEnded, port_out_with_refund, terminate_with_refund
from app.ledger.balances import customer_balance
from app.subscribers import lifecycle
from app.subscribers.models import Line
from app.subscribers.services import set_auto_renew
from app.web.api import bp
from app.web.api.common import LINE_ACTION_DOC, line_action_args, line_by_msisdn, line_out
from app.web.api.lines_schemas import (
    AddOnBoughtOut,
    AddOnBuyIn,
    AutoRenewIn,
    AutoRenewOut,
    ChangePlanIn,
    LineActionIn,
    LineEndedOut,
    LineOut,
    SwapSimIn,
    SwapSimOut,
)
from app.web.api.security import requires
from app.web.context import current_actor, db_session, settings
from numbering.models import Sim
from plans.errors import PlanNotFound
from plans.models import Plan
from plans.services import list_plan_versions


@bp.post("/lines/<msisdn>/suspend")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineOut)
@bp.doc(responses=LINE_ACTION_DOC)
def line_suspend(msisdn: str, data: dict[str, Any]) -> Any:
    """Suspend an active line (a suspended one is returned as it is)."""
    line = lifecycle.suspend_line(db_session(), **line_action_args(line_by_msisdn(msisdn), data))
    return line_out(line)


@bp.post("/lines/<msisdn>/resume")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineOut)
@bp.doc(responses=LINE_ACTION_DOC)
def line_resume(msisdn: str, data: dict[str, Any]) -> Any:
    """Resume a suspended line (an active one is returned as it is)."""
    line = lifecycle.resume_line(db_session(), **line_action_args(line_by_msisdn(msisdn), data))
    return line_out(line)


def _ended_out(ended: LineEnded) -> dict[str, Any]:
    return {
        **line_out(ended.line),
        "refund_minor": ended.refund_minor,
        "currency": ended.currency,
        "refund_ids": [r.id for r in ended.refunds],
    }


@bp.post("/lines/<msisdn>/terminate")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineEndedOut)
@bp.doc(responses=LINE_ACTION_DOC)
def line_terminate(msisdn: str, data: dict[str, Any]) -> Any:
    """Terminate a line: its number goes to quarantine, its SIM is retired, and the unused
    plan value (with the balance, for the customer's last line) is refunded."""
    ended = terminate_with_refund(
        db_session(),
        quarantine_days=settings().number_quarantine_days,
        **line_action_args(line_by_msisdn(msisdn), data),
    )
    return _ended_out(ended)


def _plan_id_for(line: Line, code: str) -> int:
    """The line's own plan by its code, else the published version of plan `code`."""
    session = db_session()
    current = session.get(Plan, line.plan_id)
    if current is not None and current.code == code and current.id is not None:
        return current.id
    for plan in list_plan_versions(session, code=code):
        if plan.status == "published" and plan.id is not None:
            return plan.id
    raise PlanNotFound(N_("No plan on sale with code %(code)s."), field="plan", code=code)


@bp.post("/lines/<msisdn>/change-plan")
@requires("lines.manage")
@bp.input(ChangePlanIn, arg_name="data")
@bp.output(LineOut)
@bp.doc(
    responses={
        404: "No line with this number, or no such plan on sale",
        409: "The line has ended",
        422: "The plan is of another host",
    }
)
def line_change_plan(msisdn: str, data: dict[str, Any]) -> Any:
    """Change the plan at the next renewal (`next_plan`); the line's own plan cancels a change."""
    line = line_by_msisdn(msisdn)
    line = lifecycle.change_plan(
        db_session(), plan_id=_plan_id_for(line, data["plan"]), **line_action_args(line, data)
    )
    return line_out(line)


@bp.post("/lines/<msisdn>/transfer")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineOut)
@bp.doc(responses=LINE_ACTION_DOC)
def line_transfer(msisdn: str, data: dict[str, Any]) -> Any:
    """Transfer the line to the host (number and SIM go with the subscriber)."""
    line = lifecycle.transfer_line(db_session(), **line_action_args(line_by_msisdn(msisdn), data))
    return line_out(line)


@bp.post("/lines/<msisdn>/port-out")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineEndedOut)
@bp.doc(responses=LINE_ACTION_DOC)
def line_port_out(msisdn: str, data: dict[str, Any]) -> Any:
    """Port the number out to another operator; the SIM is scrapped, and the line is refunded
    as a termination is."""
    ended = port_out_with_refund(db_session(), **line_action_args(line_by_msisdn(msisdn), data))
    return _ended_out(ended)


@bp.post("/lines/<msisdn>/swap-sim")
@requires("lines.manage")
@bp.input(SwapSimIn, arg_name="data")
@bp.output(SwapSimOut)
@bp.doc(
    responses={
        404: "No line with this number, or no SIM with this ICCID",
        409: "The line has ended, or the SIM is not in stock on the line's host",
    }
)
def line_swap_sim(msisdn: str, data: dict[str, Any]) -> Any:
    """Move the line to an in-stock SIM of its host; the old SIM is scrapped, or blocked
    when `lost`. An eSIM's activation code is in `lpa`."""
    line = lifecycle.swap_sim(
        db_session(),
        iccid=data["iccid"],
        lost=data["lost"],
        **line_action_args(line_by_msisdn(msisdn), data),
    )
    sim = db_session().get(Sim, line.sim_id) if line.sim_id is not None else None
    assert sim is not None
    return {
        **line_out(line),
        "iccid": sim.iccid,
        "imsi": sim.imsi,
        "sim_kind": sim.kind,
        "sim_status": sim.status,
        "lpa": sim.lpa,
    }


@bp.post("/lines/<msisdn>/addons")
@requires("lines.manage")
@bp.input(AddOnBuyIn, arg_name="data")
@bp.output(AddOnBoughtOut)
@bp.doc(
    responses={
        404: "No line with this number, or no add-on on sale with this code",
        409: "The line is not active, has no current period, the balance is too low, "
        "or the key was used for another purchase",
    }
)
def line_addon_buy(msisdn: str, data: dict[str, Any]) -> Any:
    """Buy a published add-on for the line's current period, paid from the balance.

    A replay with the same `idempotency_key` returns the first purchase.
    """
    session = db_session()
    line = line_by_msisdn(msisdn)
    addon = get_addon_by_code(session, data["addon"])
    assert line.id is not None and addon.id is not None
    bought = buy_addon(
        session,
        line_id=line.id,
        addon_id=addon.id,
        key=data["idempotency_key"],
        actor=current_actor(),
        now=utcnow(),
    )
    period = session.get(LinePeriod, bought.period_id)
    assert period is not None
    return {
        "id": bought.id,
        "msisdn": line.msisdn,
        "addon": addon.code,
        "data_kb": bought.data_kb,
        "price_minor": bought.price_minor,
        "currency": addon.currency,
        "entry_id": bought.entry_id,
        "period_start": period.start,
        "period_end": period.end,
        "period_data_kb": period.data_kb,
        "period_data_kb_left": period.data_kb_left,
        "balance": customer_balance(session, customer_id=line.customer_id),
        "created_at": bought.created_at,
    }


@bp.post("/lines/<msisdn>/auto-renew")
@requires("lines.manage")
@bp.input(AutoRenewIn, arg_name="data")
@bp.output(AutoRenewOut)
@bp.doc(responses={404: "No line with this number", 409: "The line has ended"})
def line_auto_renew(msisdn: str, data: dict[str, Any]) -> Any:
    """Switch the line's auto-renew on or off (audited; the same setting again changes nothing)."""
    line = line_by_msisdn(msisdn)
    assert line.id is not None
    line = set_auto_renew(
        db_session(),
        line_id=line.id,
        on=data["auto_renew"],
        actor=current_actor(),
        now=utcnow(),
    )
    return {"msisdn": line.msisdn, "status": line.status, "auto_renew": line.auto_renew}
