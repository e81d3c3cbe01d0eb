"""JSON API of customers (DESIGN §10, §14): search, the 360° read, real-name details.

`subscribers.view` finds customers (by ref, name, e-mail, number or ICCID)
and reads one with its lines, current periods and remaining allowances; the
ID number is only ever given masked. `pii.reveal` (admins) gets one clear
ID number for a reason, audited with the key and the caller's address;
`subscribers.manage` records real-name details.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.charging.periods import period_for_display
from app.core.clock import utcnow
from app.core.pii import PiiCipher
from app.subscribers import kyc
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.web.api import bp
from app.web.api.common import customer_by_ref
from app.web.api.customers_schemas import (
    CustomerList,
    CustomerOut,
    CustomerQuery,
    IdentityIn,
    RevealIn,
    RevealOut,
)
from app.web.api.security import requires
from app.web.context import client_ip, current_actor, db_session, settings
from numbering.models import Sim
from plans.models import Plan


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
