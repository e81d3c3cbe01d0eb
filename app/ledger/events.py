"""Events the ledger's callers announce to the floors above them (app/core/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.core.audit import Actor


@dataclass(frozen=True)
class CustomerCredited:
    """Money reached a customer's prepaid account (a payment, a voucher, a staff credit).

    Announced after the credit is posted, in the same unit of work; charging
    renews the lines an unpaid renewal suspended.
    """

    customer_id: int
    actor: Actor
    now: datetime
