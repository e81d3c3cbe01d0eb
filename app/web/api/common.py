"""What the JSON API's modules share: path lookups, line answers, paging."""

from __future__ import annotations

from typing import Any

from app.core.clock import utcnow
from app.core.errors import N_
from app.subscribers import services as subscribers
from app.subscribers.errors import CustomerNotFound, LineNotFound
from app.subscribers.models import Customer, Line
from app.web.context import current_actor, db_session
from plans.models import Plan

MAX_MSISDN = 20
MAX_REF = 20

LINE_ACTION_DOC = {404: "No line with this number", 409: "The line's status does not allow it"}


def _unusable(text: str, longest: int) -> bool:
    """A path part no row could have: too long, or with control characters."""
    return len(text) > longest or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def line_by_msisdn(msisdn: str) -> Line:
    """The line named in the path; a number no line could have is simply not found."""
    if _unusable(msisdn, MAX_MSISDN):
        raise LineNotFound(N_("No line with number %(msisdn)s."), msisdn=msisdn[:MAX_MSISDN])
    return subscribers.get_line_by_msisdn(db_session(), msisdn)


def customer_by_ref(ref: str) -> Customer:
    """The customer named in the path; a ref no customer could have is simply not found."""
    if _unusable(ref, MAX_REF):
        raise CustomerNotFound(N_("No customer %(ref)s."), ref=ref[:MAX_REF])
    return subscribers.get_customer_by_ref(db_session(), ref)


def line_out(line: Line) -> dict[str, Any]:
    """A line as `LineOut` answers it."""
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


def line_action_args(line: Line, data: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments every audited line change takes: line, reason, actor, now."""
    assert line.id is not None
    return {"line_id": line.id, "reason": data["reason"], "actor": current_actor(), "now": utcnow()}


def page_args(query: dict[str, Any]) -> dict[str, int]:
    """`limit` and `offset` for a paged query's `page` and `per_page`."""
    return {"limit": query["per_page"], "offset": (query["page"] - 1) * query["per_page"]}


def page_out(items: list[Any], total: int, query: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One page of a list as the API answers it."""
    return {
        **extra,
        "items": items,
        "total": total,
        "page": query["page"],
        "per_page": query["per_page"],
    }
