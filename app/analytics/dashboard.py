"""The counts the console dashboard and `GET /api/v1/dashboard` show: real figures only."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.auth import services as auth
from app.core.audit import list_audit
from numbering.services import count_sims_by_status, list_blocks
from plans.services import published_plans


def dashboard_counts(session: Session) -> dict[str, Any]:
    """The dashboard's figures: staff per role, subscribers, active API keys, audit
    entries, numbers available, SIMs in stock and plans on sale.

    Reads only; takes no locks.
    """
    _entries, audit_total = list_audit(session, per_page=1)
    return {
        "staff_by_role": auth.count_staff_by_role(session),
        "subscribers": auth.count_subscribers(session),
        "active_api_keys": sum(1 for k in auth.list_api_keys(session) if k.is_active),
        "audit_entries": audit_total,
        "numbers_available": sum(b.counts.get("available", 0) for b in list_blocks(session)),
        "sims_in_stock": count_sims_by_status(session).get("in_stock", 0),
        "plans_on_sale": len(published_plans(session)),
    }
