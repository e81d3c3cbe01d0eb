"""Stripe's webhooks: verified events applied once (DESIGN §5).

The caller verifies the signature on the raw body; `handle_stripe_event`
stores the event id (primary key) in the same transaction as its effect,
so a redelivery is a no-op, and answers what it did, also for a duplicate
or an unknown type. Events may come in any order: a paid session wins over
an expiry, a final refund state is never left.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from app.core.db import insert_unique
from app.payments.models import Payment, Refund, StripeEvent
from app.payments.refunds import apply_remote_refund
from app.payments.services import MoneyPolicy
from app.payments.stripe_gateway import RemoteRefund
from app.payments.stripe_payments import close_stripe_payment, complete_stripe_payment

log = logging.getLogger(__name__)


class _Duplicate(Exception):
    pass


def _int_or_none(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _stripe_payment_for(session: Session, obj: dict[str, Any]) -> Payment | None:
    metadata = obj.get("metadata") or {}
    payment_id = _int_or_none(metadata.get("payment_id") or obj.get("client_reference_id"))
    payment = session.get(Payment, payment_id) if payment_id else None
    if payment is None and isinstance(obj.get("id"), str):
        payment = session.exec(
            select(Payment).where(Payment.stripe_session_id == obj["id"])
        ).first()
    if payment is None or payment.method != "stripe":
        return None
    if payment.stripe_session_id not in (None, obj.get("id")):
        return None
    return payment


def _refund_for(session: Session, obj: dict[str, Any]) -> Refund | None:
    refund_id = _int_or_none((obj.get("metadata") or {}).get("refund_id"))
    refund = session.get(Refund, refund_id) if refund_id else None
    if refund is None and isinstance(obj.get("id"), str):
        refund = session.exec(select(Refund).where(Refund.stripe_refund_id == obj["id"])).first()
    return refund


def handle_stripe_event(
    session: Session, *, event: dict[str, Any], now: datetime, policy: MoneyPolicy
) -> str:
    """Apply one verified webhook event, once; returns what was done.

    The event id is stored in the same transaction as the effect, so a
    redelivery is a no-op. Events may come in any order: a paid session
    wins over an expiry, a final refund state is never left.
    """
    record = StripeEvent(id=event["id"][:255], type=event["type"][:100], received_at=now)
    try:
        insert_unique(session, record, _Duplicate())
    except _Duplicate:
        if record in session:
            session.expunge(record)
        return "duplicate"
    outcome = _dispatch(session, event, now=now, policy=policy)
    record.outcome = outcome[:200]
    session.add(record)
    session.flush()
    return outcome


def _dispatch(
    session: Session, event: dict[str, Any], *, now: datetime, policy: MoneyPolicy
) -> str:
    kind = event["type"]
    obj = event["data"]["object"]
    if kind.startswith("checkout.session."):
        payment = _stripe_payment_for(session, obj)
        if payment is None:
            return "no matching payment"
        assert payment.id is not None
        paid = kind == "checkout.session.async_payment_succeeded" or (
            kind == "checkout.session.completed" and obj.get("payment_status") == "paid"
        )
        if paid:
            amount = _int_or_none(obj.get("amount_total"))
            currency = str(obj.get("currency") or "").upper()
            if amount is None or currency != payment.currency:
                log.error("stripe event %s: amount/currency do not match", event["id"])
                return "amount or currency mismatch"
            complete_stripe_payment(
                session,
                payment_id=payment.id,
                amount_received_minor=amount,
                stripe_session_id=str(obj.get("id")),
                payment_intent_id=obj.get("payment_intent")
                if isinstance(obj.get("payment_intent"), str)
                else None,
                now=now,
                policy=policy,
            )
            return f"payment {payment.id} succeeded"
        if kind == "checkout.session.expired":
            close_stripe_payment(session, payment_id=payment.id, status="expired", now=now)
            return f"payment {payment.id} expired"
        if kind == "checkout.session.async_payment_failed":
            close_stripe_payment(session, payment_id=payment.id, status="failed", now=now)
            return f"payment {payment.id} failed"
        return "waiting for payment"
    if kind.startswith("refund.") or kind == "charge.refund.updated":
        refund = _refund_for(session, obj)
        if refund is None or refund.id is None or not isinstance(obj.get("id"), str):
            return "no matching refund"
        remote = RemoteRefund(
            id=obj["id"],
            status=str(obj.get("status") or "pending"),
            failure_reason=str(obj.get("failure_reason") or ""),
        )
        refund = apply_remote_refund(session, refund_id=refund.id, remote=remote, now=now)
        return f"refund {refund.id} {refund.status}"
    return "ignored"
