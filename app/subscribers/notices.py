"""Notices to a customer: the customer's address and ids handed to the outbox.

The outbox (app/notifications) knows recipients, not customers; this is where
a customer becomes one: the customer's e-mail, customer id and store login.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.notifications.services import notify
from app.subscribers.models import Customer


def notify_customer(
    session: Session,
    customer: Customer,
    *,
    kind: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    locale: str = "zh_Hans",
) -> bool:
    """Queue a notice to a customer's e-mail; False when it has none or it was queued before."""
    if not customer.email:
        return False
    return notify(
        session,
        kind=kind,
        recipient=customer.email,
        now=now,
        data=data,
        customer_id=customer.id,
        account_id=customer.subscriber_account_id,
        locale=locale,
        dedupe_key=dedupe_key,
    )
