"""JSON API of care (issue 5, DESIGN §10, §14): the console's care actions for integrations.

`subscribers.view` finds customers (by ref, name, e-mail, number or ICCID)
and reads one with its lines, current periods and remaining allowances; the
ID number is only ever given masked. `pii.reveal` (admins) gets one clear
ID number for a reason, audited with the key and the caller's address;
`subscribers.manage` records real-name details. `lines.manage` changes a
line's plan at its next renewal, transfers it to the host, ports it out
and swaps its SIM — each with a reason for the audit log; repeating a
change the line already had answers 200 with the line unchanged.
`wholesale.manage` sets, rotates or clears a host's provisioning secret,
which is never returned (only whether it is set and its last four
characters).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.charging.periods import period_for_display
from app.core.clock import utcnow
from app.core.errors import N_
from app.core.pii import PiiCipher
from app.subscribers import kyc, lifecycle
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.web.api import bp
from app.web.api.care_schemas import (
    ChangePlanIn,
    CustomerList,
    CustomerOut,
    CustomerQuery,
    IdentityIn,
    RevealIn,
    RevealOut,
    SecretIn,
    SecretOut,
    SwapSimIn,
    SwapSimOut,
)
from app.web.api.common import (
    LINE_ACTION_DOC,
    customer_by_ref,
    line_action_args,
    line_by_msisdn,
    line_out,
)
from app.web.api.lines_schemas import LineActionIn, LineOut
from app.web.api.security import requires
from app.web.context import client_ip, current_actor, db_session, settings
from numbering.models import Sim
from plans.errors import PlanNotFound
from plans.models import Plan
from plans.services import list_plan_versions
from wholesale import services as wholesale


def _cipher() -> PiiCipher:
    return PiiCipher(settings().pii_key)


def _customer_lines(lines: list[Line]) -> list[dict[str, Any]]:
    session = db_session()
    now = utcnow()
    rows = []
    for line in lines:
        assert line.id is not None
        plan = session.get(Plan, line.plan_id)
        next_plan = session.get(Plan, line.next_plan_id) if line.next_plan_id else None
        sim = session.get(Sim, line.sim_id) if line.sim_id is not None else None
        period = period_for_display(session, line_id=line.id, at=now)
        rows.append(
            {
                "msisdn": line.msisdn,
                "status": line.status,
                "plan": plan.code if plan else "",
                "next_plan": next_plan.code if next_plan else None,
                "iccid": sim.iccid if sim else None,
                "sim_kind": sim.kind if sim else None,
                "period_start": period.start if period else None,
                "period_end": period.end if period else None,
                "remaining": (
                    {
                        "data_kb": period.data_kb_left,
                        "voice_s": period.voice_s_left,
                        "sms": period.sms_left,
                    }
                    if period
                    else None
                ),
            }
        )
    return rows


def _customer_out(customer: Customer, lines: list[Line]) -> dict[str, Any]:
    return {
        "ref": customer.ref,
        "name": customer.name,
        "email": customer.email,
        "id_type": customer.id_type,
        "id_number_masked": customer.id_number_masked,
        "created_at": customer.created_at,
        "lines": _customer_lines(lines),
    }


def _one_customer_out(customer: Customer) -> dict[str, Any]:
    assert customer.id is not None
    lines = subscribers.lines_of_customers(db_session(), customer_ids=[customer.id])
    return _customer_out(customer, lines[customer.id])


# -- customers --------------------------------------------------------------------------


@bp.get("/customers")
@requires("subscribers.view")
@bp.input(CustomerQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(CustomerList)
def customer_search(query: dict[str, Any]) -> Any:
    """Customers by ref, name, e-mail, phone number or SIM ICCID; newest first."""
    session = db_session()
    found = subscribers.search_customers(session, query=query["q"], limit=query["limit"])
    lines = subscribers.lines_of_customers(session, customer_ids=[c.id or 0 for c in found])
    return {"items": [_customer_out(c, lines[c.id or 0]) for c in found]}


@bp.get("/customers/<ref>")
@requires("subscribers.view")
@bp.output(CustomerOut)
@bp.doc(responses={404: "No such customer"})
def customer_get(ref: str) -> Any:
    """A customer with their lines: SIM, current period and remaining allowances."""
    return _one_customer_out(customer_by_ref(ref))


@bp.put("/customers/<ref>/identity")
@requires("subscribers.manage")
@bp.input(IdentityIn, arg_name="data")
@bp.output(CustomerOut)
@bp.doc(responses={404: "No such customer"})
def customer_identity(ref: str, data: dict[str, Any]) -> Any:
    """Record or correct the real name and ID; the answer shows the ID masked."""
    customer = kyc.register_identity(
        db_session(),
        customer=customer_by_ref(ref),
        name=data["name"],
        id_type=data["id_type"],
        id_number=data["id_number"],
        cipher=_cipher(),
        actor=current_actor(),
        now=utcnow(),
    )
    return _one_customer_out(customer)


@bp.post("/customers/<ref>/reveal-id")
@requires("pii.reveal")
@bp.input(RevealIn, arg_name="data")
@bp.output(RevealOut)
@bp.doc(responses={404: "No such customer, or no ID on record"})
def customer_reveal_id(ref: str, data: dict[str, Any]) -> Any:
    """The clear ID number, once; audited with the key, the reason and the caller's address."""
    customer = customer_by_ref(ref)
    value = kyc.reveal_id_number(
        db_session(),
        customer=customer,
        cipher=_cipher(),
        actor=current_actor(),
        reason=data["reason"],
        now=utcnow(),
        ip=client_ip(),
    )
    return {"customer_ref": customer.ref, "id_type": customer.id_type, "id_number": value}


# -- line changes -----------------------------------------------------------------------


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
@bp.output(LineOut)
@bp.doc(responses=LINE_ACTION_DOC)
def line_port_out(msisdn: str, data: dict[str, Any]) -> Any:
    """Port the number out to another operator; the SIM is scrapped."""
    line = lifecycle.port_out_line(db_session(), **line_action_args(line_by_msisdn(msisdn), data))
    return line_out(line)


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


# -- a host's provisioning secret -------------------------------------------------------


@bp.put("/hosts/<code>/provisioning-secret")
@requires("wholesale.manage")
@bp.input(SecretIn, arg_name="data")
@bp.output(SecretOut)
@bp.doc(responses={404: "No such host"})
def host_provisioning_secret(code: str, data: dict[str, Any]) -> Any:
    """Set, rotate or (with null) clear the key of the http adapter's signature.

    The secret is never returned: only whether one is set and its last four characters.
    """
    host = wholesale.get_host_by_code(db_session(), code)
    assert host.id is not None
    host = wholesale.set_provisioning_secret(
        db_session(),
        host_id=host.id,
        secret=data["secret"],
        actor=current_actor(),
        now=utcnow(),
    )
    secret = host.provisioning_secret
    return {
        "code": host.code,
        "secret_set": secret is not None,
        "secret_last4": secret[-4:] if secret else None,
    }
