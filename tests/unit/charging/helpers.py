"""Setting up balances for charging tests (add-ons, renewals, self-care)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.ledger.movements import credit_customer
from tests.factories import NOW
from tests.unit.subscribers.helpers import STAFF, World

CAP = {"cap_months": 24, "reference_monthly_minor": 5000}


def fund(
    session: Session, world: World, amount: int, *, now: datetime = NOW, key: str | None = None
) -> None:
    """Credit the world's customer `amount` straight through the ledger (no renewal hook).

    The key defaults to one per customer and amount: the same credit again is a replay.
    """
    assert world.customer.id is not None
    credit_customer(
        session,
        customer_id=world.customer.id,
        amount_minor=amount,
        source_kind="cash_offline",
        idempotency_key=key or f"fund:{world.customer.id}:{amount}",
        actor=STAFF,
        now=now,
        currency="CNY",
        **CAP,
    )
