"""JSON API of line actions and the provisioning outbox (DESIGN §10, §14).

`lines.manage` suspends, resumes and terminates a line named by its number,
with a reason that goes to the audit log; repeating an action the line has
already had answers 200 with the line unchanged. `provisioning.view` lists
outbox events (dead letters first); `provisioning.manage` queues a dead one
again.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.core.clock import utcnow
from app.core.errors import N_
from app.provisioning import services as outbox
from app.provisioning.models import ProvisioningEvent
from app.subscribers import lifecycle
from app.subscribers import services as subscribers
from app.subscribers.errors import LineNotFound
from app.subscribers.models import Customer, Line
from app.web.api import bp
from app.web.api.lines_schemas import EventOut, EventPage, EventQuery, LineActionIn, LineOut
from app.web.api.security import requires
from app.web.context import current_actor, db_session, settings
from plans.models import Plan

MAX_MSISDN = 20


def _line(msisdn: str) -> Line:
    if len(msisdn) > MAX_MSISDN or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in msisdn):
        raise LineNotFound(N_("No line with number %(msisdn)s."), msisdn=msisdn[:MAX_MSISDN])
    return subscribers.get_line_by_msisdn(db_session(), msisdn)


def _line_out(line: Line) -> dict[str, Any]:
    session = db_session()
    customer = session.get(Customer, line.customer_id)
    plan = session.get(Plan, line.plan_id)
    next_plan = session.get(Plan, line.next_plan_id) if line.next_plan_id else None
    return {
        "msisdn": line.msisdn,
        "customer_ref": customer.ref if customer else "",
        "plan": plan.code if plan else "",
        "next_plan": next_plan.code if next_plan else None,
        "status": line.status,
        "status_changed_at": line.status_changed_at,
    }


def _common(line: Line, data: dict[str, Any]) -> dict[str, Any]:
    assert line.id is not None
    return {"line_id": line.id, "reason": data["reason"], "actor": current_actor(), "now": utcnow()}


_DOC = {404: "No line with this number", 409: "The line's status does not allow it"}


@bp.post("/lines/<msisdn>/suspend")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineOut)
@bp.doc(responses=_DOC)
def line_suspend(msisdn: str, data: dict[str, Any]) -> Any:
    """Suspend an active line (a suspended one is returned as it is)."""
    line = lifecycle.suspend_line(db_session(), **_common(_line(msisdn), data))
    return _line_out(line)


@bp.post("/lines/<msisdn>/resume")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineOut)
@bp.doc(responses=_DOC)
def line_resume(msisdn: str, data: dict[str, Any]) -> Any:
    """Resume a suspended line (an active one is returned as it is)."""
    line = lifecycle.resume_line(db_session(), **_common(_line(msisdn), data))
    return _line_out(line)


@bp.post("/lines/<msisdn>/terminate")
@requires("lines.manage")
@bp.input(LineActionIn, arg_name="data")
@bp.output(LineOut)
@bp.doc(responses=_DOC)
def line_terminate(msisdn: str, data: dict[str, Any]) -> Any:
    """Terminate a line: its number goes to quarantine, its SIM is retired."""
    line = lifecycle.terminate_line(
        db_session(),
        quarantine_days=settings().number_quarantine_days,
        **_common(_line(msisdn), data),
    )
    return _line_out(line)


def _events(events: list[ProvisioningEvent]) -> list[dict[str, Any]]:
    session = db_session()
    msisdns: dict[int, str] = {}
    for line_id in sorted({e.line_id for e in events}):
        line = session.get(Line, line_id)
        msisdns[line_id] = line.msisdn if line else ""
    return [{**e.model_dump(), "msisdn": msisdns[e.line_id]} for e in events]


@bp.get("/provisioning-events")
@requires("provisioning.view")
@bp.input(EventQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(EventPage)
def provisioning_event_list(query: dict[str, Any]) -> Any:
    """Outbox events: dead letters first, then waiting, then delivered; newest first in each."""
    per_page = query["per_page"]
    events, total = outbox.list_events(
        db_session(),
        status=query.get("status"),
        limit=per_page,
        offset=(query["page"] - 1) * per_page,
    )
    return {"items": _events(events), "total": total, "page": query["page"], "per_page": per_page}


@bp.post("/provisioning-events/<int:event_id>/retry")
@requires("provisioning.manage")
@bp.output(EventOut)
@bp.doc(responses={404: "No such event", 409: "Only a dead event can be retried"})
def provisioning_event_retry(event_id: int) -> Any:
    """Queue a dead event again, with a fresh count of attempts."""
    event = outbox.retry_dead_event(
        db_session(), event_id=event_id, actor=current_actor(), now=utcnow()
    )
    return _events([event])[0]
