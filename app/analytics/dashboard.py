"""The counts the console dashboard and `GET /api/v1/dashboard` show: real figures only."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.auth import api_keys
from app.auth.services import count_staff_by_role, count_subscribers
from app.core.audit import count_audit
from numbering.blocks import count_numbers
from numbering.sims import count_sims
from plans.services import published_plans


def dashboard_counts(session: Session) -> dict[str, Any]:
    """The dashboard's figures: staff per role, subscribers, active API keys, audit
    entries, numbers available, SIMs in stock and plans on sale.

    Reads only; takes no locks. Numbers and SIMs are counted through their
    status indexes, not summed from every block's or status's counts.
    """
    return {
        "staff_by_role": count_staff_by_role(session),
        "subscribers": count_subscribers(session),
        "active_api_keys": sum(1 for k in api_keys.list_api_keys(session) if k.is_active),
        "audit_entries": count_audit(session),
        "numbers_available": count_numbers(session, status="available"),
        "sims_in_stock": count_sims(session, status="in_stock"),
        "plans_on_sale": len(published_plans(session)),
    }
