"""Refunds: money out of the prepaid ledger (DESIGN §5).

A refund always leaves from refunds payable. Staff (and exit) refunds
first move the money there from the balance; cap-excess refunds are put
there on arrival. A refund to a Stripe payment is sent by `send_refund`
(from the scheduler's job or the console), which calls Stripe outside any
transaction with the idempotency key `mvno-refund-<id>-<attempt>` — a
crash after the call and before our commit repeats the same call and gets
the same refund back. Stripe's answer or a later webhook settles it; a
failed refund stays in refunds payable until staff retry it or pay it out
by hand.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.db import Database, lock_by_id
from app.core.errors import N_, InvalidInput, clean_text
from app.core.money import check_amount
from app.ledger.movements import move_to_refunds_payable, pay_out_refund
from app.payments.errors import RefundNotFound, RefundStateError
from app.payments.models import FINAL_REFUND_STATUSES, REFUND_REASONS, Payment, Refund
from app.payments.services import get_payment
from app.payments.stripe_gateway import RemoteRefund, StripeGateway
from app.subscribers.services import get_customer

log = logging.getLogger(__name__)


def refundable_minor(session: Session, payment: Payment) -> int:
    """What is left of a payment to refund to it."""
    taken = session.exec(
        select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
            Refund.payment_id == payment.id
        )
    ).one()
    return max(payment.amount_minor - int(taken), 0)


def request_refund(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    reason: str,
    note: str,
    actor: Actor,
    now: datetime,
    currency: str,
    idempotency_key: str | None = None,
) -> list[Refund]:
    """Refund part of a prepaid balance (a staff refund, or an exit refund).

    The amount leaves the balance for refunds payable at once, in one
    journal entry. It goes back to the customer's card payments, newest
    first, as far as they have anything left to refund; the rest is a
    refund to pay out by hand. With an `idempotency_key` the same request
    made twice (a double submit) returns the first request's refunds.
    :raises InsufficientBalance: the balance does not cover it; nothing is written.
    :raises IdempotencyConflict: the key was used for another request.
    """
    check_amount(amount_minor)
    if reason not in REFUND_REASONS:
        raise InvalidInput(N_("Unknown refund reason %(reason)s."), field="reason", reason=reason)
    note = clean_text(note, field="note", max_length=limits.NOTE, required=reason == "staff")
    get_customer(session, customer_id)
    key = f"refund-request:{idempotency_key or uuid.uuid4().hex}"
    entry = move_to_refunds_payable(
        session,
        customer_id=customer_id,
        amount_minor=amount_minor,
        idempotency_key=key,
        actor=actor,
        now=now,
        currency=currency,
        memo=note or f"{reason} refund",
    )
    earlier = list(
        session.exec(
            select(Refund).where(Refund.journal_entry_id == entry.id).order_by(col(Refund.id))
        )
    )
    if earlier:
        return earlier
    refunds = [
        _queue_refund(
            session,
            customer_id=customer_id,
            payment_id=payment_id,
            amount_minor=part,
            reason=reason,
            note=note,
            entry_id=entry.id,
            currency=currency,
            actor=actor,
            now=now,
        )
        for payment_id, part in _split_over_card_payments(
            session, customer_id=customer_id, amount_minor=amount_minor, currency=currency
        )
    ]
    session.flush()
    return refunds


def _split_over_card_payments(
    session: Session, *, customer_id: int, amount_minor: int, currency: str
) -> list[tuple[int | None, int]]:
    """(payment id, amount) parts of a refund: the customer's card payments in `currency`,
    newest first,
    as far as each has anything left to refund (locked), then the rest (payment None)."""
    payments = session.exec(
        select(Payment)
        .where(
            Payment.customer_id == customer_id,
            Payment.currency == currency,
            Payment.method == "stripe",
            Payment.status == "succeeded",
            col(Payment.stripe_payment_intent_id).is_not(None),
        )
        .order_by(col(Payment.id).desc())
        .with_for_update()
    ).all()
    parts: list[tuple[int | None, int]] = []
    left = amount_minor
    for payment in payments:
        if left == 0:
            break
        part = min(refundable_minor(session, payment), left)
        if part:
            parts.append((payment.id, part))
            left -= part
    if left:
        parts.append((None, left))
    return parts


def _queue_refund(
    session: Session,
    *,
    customer_id: int,
    payment_id: int | None,
    amount_minor: int,
    reason: str,
    note: str,
    entry_id: int | None,
    currency: str,
    actor: Actor,
    now: datetime,
) -> Refund:
    """One pending refund of a request, audited (`refund.request`)."""
    refund = Refund(
        customer_id=customer_id,
        payment_id=payment_id,
        reason=reason,
        status="pending",
        amount_minor=amount_minor,
        currency=currency,
        attempts=1,
        note=note,
        journal_entry_id=entry_id,
        created_by=actor.label or actor.kind,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="refund.request",
        now=now,
        target_type="refund",
        target_id=refund.id,
        details={
            "customer_id": customer_id,
            "payment_id": payment_id,
            "amount_minor": amount_minor,
            "reason": reason,
            "note": note,
        },
    )
    return refund


def get_refund(session: Session, refund_id: int) -> Refund:
    """The refund `refund_id`.

    :raises RefundNotFound: no such refund.
    """
    refund = session.get(Refund, refund_id)
    if refund is None:
        raise RefundNotFound(N_("No refund %(id)s."), id=refund_id)
    return refund


def _lock_refund(session: Session, refund_id: int) -> Refund:
    refund = lock_by_id(session, Refund, refund_id)
    if refund is None:
        raise RefundNotFound(N_("No refund %(id)s."), id=refund_id)
    return refund


def _mark_paid(
    session: Session, refund: Refund, *, cash_kind: str, actor: Actor, now: datetime, status: str
) -> None:
    pay_out_refund(
        session,
        amount_minor=refund.amount_minor,
        cash_kind=cash_kind,
        idempotency_key=f"refund:{refund.id}:paid",
        actor=actor,
        now=now,
        currency=refund.currency,
        memo=f"refund {refund.id}",
        external_ref=refund.stripe_refund_id,
    )
    refund.status = status
    refund.completed_at = now


def apply_remote_refund(
    session: Session, *, refund_id: int, remote: RemoteRefund, now: datetime
) -> Refund:
    """Bring our refund in line with what Stripe says about it.

    Final states are never left; an answer about an earlier attempt (another
    Stripe refund id) is ignored.
    """
    refund = _lock_refund(session, refund_id)
    if refund.status in FINAL_REFUND_STATUSES:
        return refund
    if refund.stripe_refund_id not in (None, remote.id):
        return refund
    if refund.status == "failed" and refund.stripe_refund_id is None:
        return refund
    refund.stripe_refund_id = remote.id
    before = refund.status
    if remote.status == "succeeded":
        _mark_paid(
            session,
            refund,
            cash_kind="cash_stripe",
            actor=Actor.system("stripe"),
            now=now,
            status="succeeded",
        )
    elif remote.status in ("failed", "canceled"):
        refund.status = "failed"
        refund.last_error = (remote.failure_reason or remote.status)[:500]
    elif refund.status != "failed":
        refund.status = "processing"
    refund.updated_at = now
    session.add(refund)
    session.flush()
    if refund.status != before:
        record_audit(
            session,
            actor=Actor.system("stripe"),
            action=f"refund.{refund.status}",
            now=now,
            target_type="refund",
            target_id=refund.id,
            details={"stripe_refund_id": remote.id, "error": refund.last_error},
        )
    return refund


def retry_refund(session: Session, *, refund_id: int, actor: Actor, now: datetime) -> Refund:
    """Queue a failed card refund again, as a new attempt at Stripe."""
    refund = _lock_refund(session, refund_id)
    if refund.status != "failed" or refund.payment_id is None:
        raise RefundStateError(
            N_("Only a failed card refund can be retried."), field="refund", id=refund_id
        )
    refund.status = "pending"
    refund.attempts += 1
    refund.stripe_refund_id = None
    refund.last_error = ""
    refund.updated_at = now
    session.add(refund)
    record_audit(
        session,
        actor=actor,
        action="refund.retry",
        now=now,
        target_type="refund",
        target_id=refund.id,
        details={"attempt": refund.attempts},
    )
    session.flush()
    return refund


def mark_refund_paid_offline(
    session: Session, *, refund_id: int, note: str, actor: Actor, now: datetime
) -> Refund:
    """Finance paid a refund by hand (cash, bank transfer): it leaves refunds payable.

    :raises RefundStateError: it is already paid, or on its way at Stripe.
    """
    note = clean_text(note, field="note", max_length=limits.NOTE, required=True)
    refund = _lock_refund(session, refund_id)
    # A pending card refund may be on its way to Stripe right now; paying it
    # by hand as well would refund twice. Only a failed one, or one with no
    # card to go back to, is paid by hand.
    if not (
        refund.status == "failed" or (refund.status == "pending" and refund.payment_id is None)
    ):
        raise RefundStateError(
            N_("This refund is %(status)s; it cannot be marked as paid by hand."),
            field="refund",
            status=refund.status,
        )
    _mark_paid(
        session, refund, cash_kind="cash_offline", actor=actor, now=now, status="paid_offline"
    )
    refund.note = f"{refund.note}\n{note}".strip()[:500]
    refund.updated_at = now
    session.add(refund)
    record_audit(
        session,
        actor=actor,
        action="refund.paid_offline",
        now=now,
        target_type="refund",
        target_id=refund.id,
        details={"amount_minor": refund.amount_minor, "note": note},
    )
    session.flush()
    return refund


def send_refund(db: Database, gateway: StripeGateway, *, refund_id: int, now: datetime) -> Refund:
    """Send one pending card refund to Stripe and record the answer.

    The Stripe call runs outside any transaction, keyed by refund id and
    attempt, so repeating it (after a crash, or by two workers) makes no
    second refund.
    """
    with db.transaction(write=False) as session:
        refund = get_refund(session, refund_id)
        if refund.status != "pending" or refund.payment_id is None:
            session.expunge(refund)
            return refund
        payment = get_payment(session, refund.payment_id)
        intent, amount, attempt = (
            payment.stripe_payment_intent_id,
            refund.amount_minor,
            refund.attempts,
        )
    if not intent:
        raise RefundStateError(N_("The payment has no card charge to refund."), field="refund")
    remote = gateway.create_refund(
        refund_id=refund_id, attempt=attempt, payment_intent_id=intent, amount_minor=amount
    )
    with db.transaction() as session:
        refund = _lock_refund(session, refund_id)
        if refund.attempts == attempt:
            refund = apply_remote_refund(session, refund_id=refund_id, remote=remote, now=now)
        session.expunge(refund)
    return refund


def send_pending_refunds(
    db: Database, gateway: StripeGateway, *, now: datetime, limit: int = 100
) -> int:
    """The scheduler's job: send queued card refunds; returns how many were sent."""
    with db.transaction(write=False) as session:
        ids = list(
            session.exec(
                select(Refund.id)
                .where(Refund.status == "pending", col(Refund.payment_id).is_not(None))
                .order_by(col(Refund.id))
                .limit(limit)
            )
        )
    sent = 0
    for refund_id in ids:
        assert refund_id is not None
        try:
            send_refund(db, gateway, refund_id=refund_id, now=now)
            sent += 1
        except Exception:  # one bad refund must not stop the others
            log.exception("refund %s not sent", refund_id)
    return sent


def sync_processing_refunds(
    db: Database, gateway: StripeGateway, *, now: datetime, limit: int = 100
) -> int:
    """Ask Stripe about refunds still processing, in case a webhook was lost."""
    with db.transaction(write=False) as session:
        rows = list(
            session.exec(
                select(Refund.id, Refund.stripe_refund_id)
                .where(Refund.status == "processing", col(Refund.stripe_refund_id).is_not(None))
                .order_by(col(Refund.updated_at))
                .limit(limit)
            )
        )
    for refund_id, stripe_id in rows:
        assert refund_id is not None and stripe_id is not None
        remote = gateway.retrieve_refund(stripe_id)
        with db.transaction() as session:
            apply_remote_refund(session, refund_id=refund_id, remote=remote, now=now)
    return len(rows)


def list_refunds(
    session: Session,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Refund], int]:
    """A page of refunds, newest first, optionally of one customer or status; and how
    many match in all."""
    query = select(Refund)
    if customer_id is not None:
        query = query.where(Refund.customer_id == customer_id)
    if status:
        query = query.where(Refund.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Refund.id).desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total)
