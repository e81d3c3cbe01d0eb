"""Queueing many refunds at once: the market exit's (DESIGN §12).

The same split as `refunds.request_refund`, set-based: each request's
amount goes back to its customer's card payments in its currency, newest
first, as far as each has anything left to refund, and the rest is a
refund for finance to pay out by hand (no payment). The money has already
left the customer's balance for refunds payable in the caller's entry
(`entry_id`); the Stripe calls are made later by `refunds.send_refund`
(the scheduler's job), each with its own idempotency key. A request whose
entry already has refunds is not queued again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.core.audit import Actor, AuditEntry, audit_row
from app.core.db import insert_rows
from app.ledger.accounts import in_chunks
from app.payments.models import REFUND_REASONS, Payment, Refund

_REFUND = Refund.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefundRequest:
    """Refund `amount_minor` of `currency` to a customer from refunds payable (`entry_id`)."""

    customer_id: int
    currency: str
    amount_minor: int
    entry_id: int


@dataclass(frozen=True)
class QueuedRefund:
    """One refund queued: to a card payment, or by hand (`payment_id` None)."""

    refund_id: int
    customer_id: int
    payment_id: int | None
    amount_minor: int
    currency: str


def _refundable(session: Session, customer_ids: list[int]) -> dict[tuple[int, str], list[Any]]:
    """(customer, currency) → [payment id, left to refund], newest payment first."""
    taken = (
        sa_select(col(Refund.payment_id), func.sum(col(Refund.amount_minor)).label("taken"))
        .where(col(Refund.payment_id).is_not(None))
        .group_by(col(Refund.payment_id))
        .subquery()
    )
    found: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for chunk in in_chunks(customer_ids):
        rows = session.execute(
            sa_select(
                col(Payment.id),
                col(Payment.customer_id),
                col(Payment.currency),
                col(Payment.amount_minor) - func.coalesce(taken.c.taken, 0),
            )
            .outerjoin(taken, taken.c.payment_id == col(Payment.id))
            .where(
                col(Payment.customer_id).in_(chunk),
                col(Payment.method) == "stripe",
                col(Payment.status) == "succeeded",
                col(Payment.stripe_payment_intent_id).is_not(None),
            )
            .order_by(col(Payment.id).desc())
            .with_for_update(of=Payment.__table__)  # type: ignore[attr-defined]
        )
        for payment_id, customer_id, currency, left in rows:
            if left > 0:
                found[(customer_id, currency)].append([payment_id, int(left)])
    return found


def _already_queued(session: Session, entry_ids: list[int]) -> set[int]:
    done: set[int] = set()
    for chunk in in_chunks(sorted(entry_ids)):
        done.update(
            session.execute(
                sa_select(col(Refund.journal_entry_id))
                .where(col(Refund.journal_entry_id).in_(chunk))
                .distinct()
            ).scalars()
        )
    return done


def queue_refunds(
    session: Session,
    *,
    requests: list[RefundRequest],
    reason: str,
    note: str,
    actor: Actor,
    now: datetime,
) -> list[QueuedRefund]:
    """Queue the refunds of `requests`, split over card payments newest first, audited.

    Locks the customers' card payments. Returns the refunds queued now.
    """
    assert reason in REFUND_REASONS, reason
    done = _already_queued(session, [r.entry_id for r in requests])
    todo = [r for r in requests if r.entry_id not in done and r.amount_minor > 0]
    if not todo:
        return []
    payments = _refundable(session, sorted({r.customer_id for r in todo}))
    parts: list[tuple[RefundRequest, int | None, int]] = []
    for request in todo:
        left = request.amount_minor
        for payment in payments.get((request.customer_id, request.currency), []):
            if left == 0:
                break
            part = min(payment[1], left)
            if part:
                parts.append((request, payment[0], part))
                payment[1] -= part
                left -= part
        if left:
            parts.append((request, None, left))
    label = actor.label or actor.kind
    rows: list[dict[str, Any]] = [
        {
            "customer_id": request.customer_id,
            "payment_id": payment_id,
            "reason": reason,
            "status": "pending",
            "amount_minor": amount,
            "currency": request.currency,
            "stripe_refund_id": None,
            "attempts": 1,
            "last_error": "",
            "note": note,
            "journal_entry_id": request.entry_id,
            "created_by": label,
            "created_at": now,
            "updated_at": now,
            "completed_at": None,
        }
        for request, payment_id, amount in parts
    ]
    # (entry, payment) is unique among the parts: it tells the returned ids apart.
    returned = insert_rows(
        session, _REFUND, rows, returning=("id", "journal_entry_id", "payment_id")
    )
    id_of = {(entry_id, payment_id): refund_id for refund_id, entry_id, payment_id in returned}
    queued = [
        QueuedRefund(
            refund_id=id_of[(row["journal_entry_id"], row["payment_id"])],
            customer_id=row["customer_id"],
            payment_id=row["payment_id"],
            amount_minor=row["amount_minor"],
            currency=row["currency"],
        )
        for row in rows
    ]
    insert_rows(session, _AUDIT, [_audit_row(q, reason, note, actor, now) for q in queued])
    return queued


def _audit_row(
    queued: QueuedRefund, reason: str, note: str, actor: Actor, now: datetime
) -> dict[str, Any]:
    """The `refund.request` record of one queued refund, as `refunds.request_refund` writes it."""
    details = {
        "customer_id": queued.customer_id,
        "payment_id": queued.payment_id,
        "amount_minor": queued.amount_minor,
        "reason": reason,
        "note": note,
    }
    return audit_row(
        actor,
        "refund.request",
        now,
        target_type="refund",
        target_id=queued.refund_id,
        details=details,
    )
