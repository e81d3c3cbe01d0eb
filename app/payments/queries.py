"""Readers for the staff money pages (the refund queue, customer refs) and the fraud rules.

Reads only; nothing here locks or writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.payments.models import REFUND_STATUSES, Refund, VoucherAttempt
from app.payments.refunds import list_refunds
from app.subscribers.models import Customer


def refund_queue(
    session: Session, *, statuses: tuple[str, ...], limit: int, offset: int
) -> tuple[list[Refund], int]:
    """One page of the refunds in `statuses` and how many there are in all.

    One status, or every status, is `list_refunds` (newest first); a set of
    several statuses (the queue of refunds still to act on) is oldest first.
    """
    if len(statuses) == 1:
        return list_refunds(session, status=statuses[0], limit=limit, offset=offset)
    if len(statuses) == len(REFUND_STATUSES):
        return list_refunds(session, limit=limit, offset=offset)
    query = select(Refund).where(col(Refund.status).in_(statuses))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Refund.id)).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def customer_refs(session: Session, customer_ids: set[int]) -> dict[int, str]:
    """The ref of each customer id (for lists of payments, refunds and vouchers)."""
    if not customer_ids:
        return {}
    rows = session.exec(
        select(Customer.id, Customer.ref).where(col(Customer.id).in_(sorted(customer_ids)))
    ).all()
    return {customer_id: ref for customer_id, ref in rows if customer_id is not None}


def failed_voucher_attempts(
    session: Session, *, since: datetime, until: datetime
) -> list[tuple[int, datetime]]:
    """Failed voucher redemptions of customers in [since, until): (customer id, when).

    Ordered by customer and time; reads only (the fraud rules count them).
    """
    rows = session.exec(
        select(VoucherAttempt.customer_id, VoucherAttempt.at)
        .where(
            col(VoucherAttempt.success).is_(False),
            col(VoucherAttempt.customer_id).is_not(None),
            VoucherAttempt.at >= since,
            VoucherAttempt.at < until,
        )
        .order_by(col(VoucherAttempt.customer_id), col(VoucherAttempt.at))
    ).all()
    return [(int(customer_id), at) for customer_id, at in rows if customer_id is not None]
