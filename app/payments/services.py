"""Payments and refunds: money in and out of the prepaid ledger (DESIGN §5).

Money in:

* Offline payments (cash, bank transfer) are recorded by finance staff with
  the receipt or bank reference; (method, reference) is UNIQUE, so the same
  payment recorded twice is one payment. The cap refuses them before the
  money is accepted.
* Stripe Checkout: `create_stripe_payment` refuses above the cap and writes
  our payment row; `begin_checkout` commits it, then asks Stripe for a
  Checkout Session with the row's id as the idempotency key. The money is
  booked only when Stripe's signed webhook says the session was paid
  (`handle_stripe_event`), by `receive_money`: up to the cap on the
  balance, any excess to refunds payable with a refund queued back to the
  same payment.

Money out: a refund always leaves from refunds payable. Staff (and exit)
refunds first move the money there from the balance; cap-excess refunds
are put there on arrival. A refund to a Stripe payment is sent by
`send_refund` (from the scheduler's job or the console), which calls Stripe
outside any transaction with the idempotency key
`mvno-refund-<id>-<attempt>` — a crash after the call and before our
commit repeats the same call and gets the same refund back. Stripe's
answer or a later webhook settles it; a failed refund stays in refunds
payable until staff retry it or pay it out by hand.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, literal
from sqlmodel import Session, col, select

from app.charging.renewals import renew_suspended_lines
from app.core.audit import Actor, record_audit
from app.core.db import Database, insert_unique, lock_by_id
from app.core.errors import N_, InvalidInput, clean_text
from app.core.money import check_amount
from app.ledger.cap import ensure_within_cap
from app.ledger.models import JournalEntry, LedgerAccount
from app.ledger.movements import adjust_balance as ledger_adjust_balance
from app.ledger.movements import (
    credit_customer,
    move_to_refunds_payable,
    pay_out_refund,
    receive_money,
)
from app.payments.errors import (
    PaymentConflict,
    PaymentNotFound,
    RefundNotFound,
    RefundStateError,
)
from app.payments.models import (
    FINAL_REFUND_STATUSES,
    PAYMENT_PURPOSES,
    REFUND_REASONS,
    Payment,
    Refund,
    StripeEvent,
)
from app.payments.stripe_gateway import RemoteRefund, StripeGateway
from app.subscribers.services import get_customer

log = logging.getLogger(__name__)
OFFLINE_METHODS = ("cash", "bank_transfer")
MAX_REFERENCE = 200


@dataclass(frozen=True)
class MoneyPolicy:
    """The settings every money movement needs (DESIGN §3, §5)."""

    currency: str
    cap_months: int
    reference_monthly_minor: int

    @classmethod
    def from_settings(cls, settings: Any) -> MoneyPolicy:
        return cls(
            currency=settings.currency,
            cap_months=settings.prepay_cap_months,
            reference_monthly_minor=settings.prepay_reference_monthly_minor,
        )

    def cap_kwargs(self) -> dict[str, Any]:
        return {
            "cap_months": self.cap_months,
            "reference_monthly_minor": self.reference_monthly_minor,
        }


class _Duplicate(Exception):
    pass


def _positive(amount_minor: int) -> None:
    check_amount(amount_minor)


# -- money in ---------------------------------------------------------------------------


def record_offline_payment(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    method: str,
    reference: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
    memo: str = "",
    renew_suspended: bool = True,
) -> Payment:
    """Record cash or a bank transfer received by staff, and credit it.

    The credit then renews and resumes the customer's lines suspended for an
    unpaid renewal (app/charging/renewals.py), unless `renew_suspended` is
    False: money paid for a store order must reach the order first.
    Idempotent per (method, reference): recording the same payment again
    returns the first one.
    :raises InvalidInput: bad method, amount or reference.
    :raises PaymentConflict: the reference was recorded with another customer or amount.
    :raises CapExceeded: the credit would pass the cap; nothing is recorded.
    """
    if method not in OFFLINE_METHODS:
        raise InvalidInput(N_("Unknown payment method %(method)s."), field="method", method=method)
    _positive(amount_minor)
    reference = clean_text(reference, field="reference", max_length=MAX_REFERENCE, required=True)
    memo = clean_text(memo, field="memo", max_length=500)
    get_customer(session, customer_id)
    payment = Payment(
        customer_id=customer_id,
        method=method,
        purpose="topup",
        status="succeeded",
        amount_minor=amount_minor,
        credited_minor=amount_minor,
        currency=policy.currency,
        reference=reference,
        memo=memo,
        created_by=actor.label or actor.kind,
        created_at=now,
        completed_at=now,
    )
    try:
        insert_unique(session, payment, _Duplicate())
    except _Duplicate:
        if payment in session:
            session.expunge(payment)
        first = session.exec(
            select(Payment).where(Payment.method == method, Payment.reference == reference)
        ).one()
        if first.customer_id != customer_id or first.amount_minor != amount_minor:
            raise PaymentConflict(
                N_("The reference %(reference)s was already recorded for another payment."),
                field="reference",
                reference=reference,
            ) from None
        return first
    assert payment.id is not None
    entry = credit_customer(
        session,
        customer_id=customer_id,
        amount_minor=amount_minor,
        source_kind="cash_offline",
        idempotency_key=f"payment:{payment.id}",
        actor=actor,
        now=now,
        currency=policy.currency,
        memo=memo or f"{method} payment",
        external_ref=reference,
        **policy.cap_kwargs(),
    )
    payment.journal_entry_id = entry.id
    session.add(payment)
    record_audit(
        session,
        actor=actor,
        action="payment.record",
        now=now,
        target_type="payment",
        target_id=payment.id,
        details={
            "customer_id": customer_id,
            "method": method,
            "amount_minor": amount_minor,
            "reference": reference,
        },
    )
    session.flush()
    if renew_suspended:
        renew_suspended_lines(session, customer_id=customer_id, actor=actor, now=now)
    return payment


def adjust_balance(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    reason: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
) -> JournalEntry:
    """A staff correction of a balance (ledger `adjust_balance`: signed, with a reason,
    audited); a positive one is a credit, so it then renews and resumes the customer's
    lines suspended for an unpaid renewal.

    :raises InvalidInput, CapExceeded, InsufficientBalance, IdempotencyConflict: refused.
    """
    entry = ledger_adjust_balance(
        session,
        customer_id=customer_id,
        amount_minor=amount_minor,
        reason=reason,
        idempotency_key=idempotency_key,
        actor=actor,
        now=now,
        currency=policy.currency,
        **policy.cap_kwargs(),
    )
    if amount_minor > 0:
        renew_suspended_lines(session, customer_id=customer_id, actor=actor, now=now)
    return entry


def create_stripe_payment(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    purpose: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
) -> Payment:
    """Our row for a card payment, written before Stripe hears of it.

    :raises CapExceeded: the amount would pass the cap (refused before any
        money is taken), naming the largest amount allowed now.
    """
    _positive(amount_minor)
    if purpose not in PAYMENT_PURPOSES:
        raise InvalidInput(N_("Unknown purpose %(purpose)s."), field="purpose", purpose=purpose)
    get_customer(session, customer_id)
    ensure_within_cap(
        session, customer_id=customer_id, amount_minor=amount_minor, **policy.cap_kwargs()
    )
    payment = Payment(
        customer_id=customer_id,
        method="stripe",
        purpose=purpose,
        status="created",
        amount_minor=amount_minor,
        currency=policy.currency,
        created_by=actor.label or actor.kind,
        created_at=now,
    )
    session.add(payment)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="payment.create",
        now=now,
        target_type="payment",
        target_id=payment.id,
        details={"customer_id": customer_id, "method": "stripe", "amount_minor": amount_minor},
    )
    return payment


def begin_checkout(
    db: Database,
    gateway: StripeGateway,
    *,
    customer_id: int,
    amount_minor: int,
    purpose: str,
    actor: Actor,
    now: datetime,
    policy: MoneyPolicy,
    urls: Callable[[int], tuple[str, str]],
    description: str,
    locale: str | None = None,
) -> Payment:
    """Create our payment (committed), then its Stripe Checkout Session.

    `urls(payment_id)` gives the success and cancel addresses. Runs its own
    transactions so no database lock is held while Stripe is called.
    :raises CapExceeded: refused before any money is taken.
    :raises PaymentProviderError: Stripe did not answer; the payment stays
        `created` and can be opened again with `open_checkout`.
    """
    with db.transaction() as session:
        payment = create_stripe_payment(
            session,
            customer_id=customer_id,
            amount_minor=amount_minor,
            purpose=purpose,
            actor=actor,
            now=now,
            policy=policy,
        )
        payment_id = payment.id
    assert payment_id is not None
    success_url, cancel_url = urls(payment_id)
    return open_checkout(
        db,
        gateway,
        payment_id=payment_id,
        success_url=success_url,
        cancel_url=cancel_url,
        description=description,
        locale=locale,
    )


def open_checkout(
    db: Database,
    gateway: StripeGateway,
    *,
    payment_id: int,
    success_url: str,
    cancel_url: str,
    description: str,
    locale: str | None = None,
) -> Payment:
    """The payment with its Checkout Session; asks Stripe only if it has none yet.

    Safe to repeat: the idempotency key is the payment's id.
    """
    with db.transaction(write=False) as session:
        payment = _get_payment(session, payment_id)
        if payment.stripe_session_id is not None or payment.status != "created":
            session.expunge(payment)
            return payment
        customer = get_customer(session, payment.customer_id)
        amount, currency, ref, email = (
            payment.amount_minor,
            payment.currency,
            customer.ref,
            customer.email,
        )
    checkout = gateway.create_checkout_session(
        payment_id=payment_id,
        amount_minor=amount,
        currency=currency,
        description=description,
        customer_ref=ref,
        customer_email=email,
        success_url=success_url,
        cancel_url=cancel_url,
        locale=locale,
    )
    with db.transaction() as session:
        payment = _lock_payment(session, payment_id)
        if payment.stripe_session_id is None:
            payment.stripe_session_id = checkout.id
            payment.checkout_url = checkout.url
            if payment.status == "created":
                payment.status = "pending"
            session.add(payment)
            session.flush()
        session.expunge(payment)
    return payment


def _get_payment(session: Session, payment_id: int) -> Payment:
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound(N_("No payment %(id)s."), id=payment_id)
    return payment


def _lock_payment(session: Session, payment_id: int) -> Payment:
    payment = lock_by_id(session, Payment, payment_id)
    if payment is None:
        raise PaymentNotFound(N_("No payment %(id)s."), id=payment_id)
    return payment


def complete_stripe_payment(
    session: Session,
    *,
    payment_id: int,
    amount_received_minor: int,
    stripe_session_id: str,
    payment_intent_id: str | None,
    now: datetime,
    policy: MoneyPolicy,
) -> Payment:
    """Book a paid Checkout Session. Idempotent; wins over an earlier expiry.

    Credited up to the cap; any excess is queued as a refund to this payment.
    A top-up then renews and resumes the customer's lines suspended for an
    unpaid renewal (a purchase's money goes to its order first).
    """
    payment = _lock_payment(session, payment_id)
    if payment.status == "succeeded":
        return payment
    actor = Actor.system("stripe")
    receipt = receive_money(
        session,
        customer_id=payment.customer_id,
        amount_minor=amount_received_minor,
        source_kind="cash_stripe",
        idempotency_key=f"payment:{payment.id}",
        actor=actor,
        now=now,
        currency=payment.currency,
        memo=f"card payment {payment.id}",
        external_ref=payment_intent_id or stripe_session_id,
        **policy.cap_kwargs(),
    )
    payment.status = "succeeded"
    payment.amount_minor = amount_received_minor
    payment.credited_minor = receipt.credited_minor
    payment.stripe_session_id = payment.stripe_session_id or stripe_session_id
    payment.stripe_payment_intent_id = payment_intent_id
    payment.journal_entry_id = receipt.entry.id
    payment.completed_at = now
    session.add(payment)
    session.flush()
    if receipt.excess_minor:
        refund = Refund(
            customer_id=payment.customer_id,
            payment_id=payment.id,
            reason="cap_excess",
            status="pending",
            amount_minor=receipt.excess_minor,
            currency=payment.currency,
            attempts=1,
            journal_entry_id=receipt.entry.id,
            note="above the prepayment cap",
            created_by=actor.label,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="refund.queue",
            now=now,
            target_type="refund",
            target_id=refund.id,
            details={"payment_id": payment.id, "amount_minor": refund.amount_minor},
        )
    if payment.purpose == "topup":
        renew_suspended_lines(session, customer_id=payment.customer_id, actor=actor, now=now)
    return payment


def close_stripe_payment(
    session: Session, *, payment_id: int, status: str, now: datetime
) -> Payment:
    """A Checkout Session expired or its payment failed; a paid one stays paid."""
    payment = _lock_payment(session, payment_id)
    if payment.status in ("created", "pending"):
        payment.status = status
        payment.completed_at = now
        session.add(payment)
        session.flush()
    return payment


# -- money out --------------------------------------------------------------------------


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
    _positive(amount_minor)
    if reason not in REFUND_REASONS:
        raise InvalidInput(N_("Unknown refund reason %(reason)s."), field="reason", reason=reason)
    note = clean_text(note, field="note", max_length=500, required=reason == "staff")
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
    payments = session.exec(
        select(Payment)
        .where(
            Payment.customer_id == customer_id,
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
    refunds = []
    for payment_id, part in parts:
        refund = Refund(
            customer_id=customer_id,
            payment_id=payment_id,
            reason=reason,
            status="pending",
            amount_minor=part,
            currency=currency,
            attempts=1,
            note=note,
            journal_entry_id=entry.id,
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
                "amount_minor": part,
                "reason": reason,
                "note": note,
            },
        )
        refunds.append(refund)
    session.flush()
    return refunds


def get_refund(session: Session, refund_id: int) -> Refund:
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
    note = clean_text(note, field="note", max_length=500, required=True)
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
        payment = _get_payment(session, refund.payment_id)
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


# -- Stripe webhooks --------------------------------------------------------------------


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


# -- invariants -------------------------------------------------------------------------


def check_payments(session: Session) -> list[str]:
    """Payments and refunds agree with the ledger (for `mvno ledger check`).

    * refunds payable holds exactly the refunds not yet paid out;
    * every succeeded payment and every paid refund has its journal entry.
    """
    problems: list[str] = []
    owed = dict(
        session.exec(
            select(Refund.currency, func.sum(Refund.amount_minor))
            .where(col(Refund.status).not_in(FINAL_REFUND_STATUSES))
            .group_by(col(Refund.currency))
        ).all()
    )
    payable = dict(
        session.exec(
            select(LedgerAccount.currency, func.sum(LedgerAccount.balance_minor))
            .where(LedgerAccount.kind == "refunds_payable")
            .group_by(col(LedgerAccount.currency))
        ).all()
    )
    for currency in sorted(set(owed) | set(payable)):
        if int(owed.get(currency, 0)) != int(payable.get(currency, 0)):
            problems.append(
                f"refunds payable {currency} is {payable.get(currency, 0)} but unpaid refunds"
                f" sum to {owed.get(currency, 0)}"
            )
    unbooked = session.exec(
        select(Payment.id)
        .where(Payment.status == "succeeded", col(Payment.journal_entry_id).is_(None))
        .order_by(col(Payment.id))
    ).all()
    problems.extend(f"payment {pid} succeeded without a journal entry" for pid in unbooked)
    paid = session.exec(
        select(Refund.id)
        .where(col(Refund.status).in_(FINAL_REFUND_STATUSES))
        .where(
            ~select(JournalEntry.id)
            .where(
                JournalEntry.idempotency_key
                == literal("refund:") + cast(Refund.id, String) + literal(":paid")
            )
            .exists()
        )
        .order_by(col(Refund.id))
    ).all()
    problems.extend(f"refund {rid} is paid but its payout is not in the ledger" for rid in paid)
    return problems


# -- lists ------------------------------------------------------------------------------


def list_payments(
    session: Session,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    method: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Payment], int]:
    query = select(Payment)
    if customer_id is not None:
        query = query.where(Payment.customer_id == customer_id)
    if status:
        query = query.where(Payment.status == status)
    if method:
        query = query.where(Payment.method == method)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Payment.id).desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def list_refunds(
    session: Session,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Refund], int]:
    query = select(Refund)
    if customer_id is not None:
        query = query.where(Refund.customer_id == customer_id)
    if status:
        query = query.where(Refund.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Refund.id).desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def get_payment_of(session: Session, *, payment_id: int, customer_id: int) -> Payment:
    """A payment only if it belongs to the customer (self-care receipts)."""
    payment = session.get(Payment, payment_id)
    if payment is None or payment.customer_id != customer_id:
        raise PaymentNotFound(N_("No payment %(id)s."), id=payment_id)
    return payment
