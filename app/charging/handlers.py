"""What charging does when something happens below it (app/core/events.py).

Handlers run in the announcing transaction, before its commit: a refusal
here rolls the credit back with it, and a credit rolled back leaves no
renewal behind.
"""

from __future__ import annotations

from sqlmodel import Session

from app.charging.unpaid_lines import renew_suspended_lines
from app.core.events import on
from app.ledger.events import CustomerCredited


@on(CustomerCredited)
def renew_lines_after_credit(session: Session, event: CustomerCredited) -> None:
    """Renew and resume the customer's lines suspended for an unpaid renewal.

    Locks the customer's prepaid account, then those lines (see
    `renew_suspended_lines`); a second delivery of the same credit finds
    them active and does nothing.
    """
    renew_suspended_lines(session, customer_id=event.customer_id, actor=event.actor, now=event.now)
