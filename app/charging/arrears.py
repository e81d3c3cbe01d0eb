"""Arrears: lines suspended while late usage leaves the customer's balance below zero.

Rating may take a prepaid balance below zero (DESIGN §5). The customer's
active lines are then suspended through the lifecycle (provisioning
`suspend`, reason `arrears`) and each suspension is kept as an
`ArrearsSuspension`. A credit clears the arrears first: once the balance is
back at zero or above, `resume_cleared_lines` resumes those lines (on every
`CustomerCredited`, before suspended renewals are retried).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from app.charging.models import ArrearsSuspension
from app.core.audit import Actor
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.models import LedgerAccount
from app.subscribers import lifecycle
from app.subscribers.models import Line

REASON = "arrears"
CLEARED_REASON = "arrears cleared"


def _balances(session: Session, customer_ids: list[int]) -> dict[int, int]:
    """customer id → the lowest of its prepaid balances (any currency)."""
    balances: dict[int, int] = {}
    if not customer_ids:
        return balances
    rows = session.exec(
        select(LedgerAccount.customer_id, LedgerAccount.balance_minor).where(
            LedgerAccount.kind == CUSTOMER_PREPAID, col(LedgerAccount.customer_id).in_(customer_ids)
        )
    )
    for customer_id, balance in rows:
        assert customer_id is not None
        balances[customer_id] = min(balance, balances.get(customer_id, balance))
    return balances


def suspend_lines_in_arrears(
    session: Session, *, customer_ids: list[int], actor: Actor, now: datetime
) -> list[int]:
    """Suspend the active lines of those customers whose balance is below zero; their ids."""
    session.flush()
    in_arrears = {c: b for c, b in _balances(session, customer_ids).items() if b < 0}
    if not in_arrears:
        return []
    lines = session.exec(
        select(Line.id, Line.customer_id)
        .where(col(Line.customer_id).in_(sorted(in_arrears)), Line.status == "active")
        .order_by(col(Line.id))
    ).all()
    suspended: list[int] = []
    for line_id, customer_id in lines:
        assert line_id is not None
        lifecycle.suspend_line(session, line_id=line_id, reason=REASON, actor=actor, now=now)
        session.add(
            ArrearsSuspension(
                line_id=line_id,
                customer_id=customer_id,
                balance_minor=in_arrears[customer_id],
                suspended_at=now,
            )
        )
        suspended.append(line_id)
    return suspended


def open_suspensions(session: Session, *, customer_id: int) -> list[ArrearsSuspension]:
    """The customer's arrears suspensions not yet resumed, oldest first."""
    return list(
        session.exec(
            select(ArrearsSuspension)
            .where(
                ArrearsSuspension.customer_id == customer_id,
                col(ArrearsSuspension.resumed_at).is_(None),
            )
            .order_by(col(ArrearsSuspension.id))
        )
    )


def resume_cleared_lines(
    session: Session, *, customer_id: int, actor: Actor, now: datetime
) -> list[int]:
    """Resume the customer's arrears-suspended lines once its balance is ≥ 0; their ids.

    A line that left `suspended` meanwhile (terminated, say) only has its
    suspension closed.
    """
    suspensions = open_suspensions(session, customer_id=customer_id)
    if not suspensions:
        return []
    session.flush()
    if _balances(session, [customer_id]).get(customer_id, 0) < 0:
        return []
    resumed: list[int] = []
    for suspension in suspensions:
        line = session.get(Line, suspension.line_id)
        if line is not None and line.status == "suspended":
            lifecycle.resume_line(
                session, line_id=suspension.line_id, reason=CLEARED_REASON, actor=actor, now=now
            )
            resumed.append(suspension.line_id)
        suspension.resumed_at = now
        session.add(suspension)
    return resumed
