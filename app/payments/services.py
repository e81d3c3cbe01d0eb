"""Payments: money into the prepaid ledger, and what is known of it (DESIGN §5).

* Offline payments (cash, bank transfer) are recorded by finance staff with
  the receipt or bank reference; (method, reference) is UNIQUE, so the same
  payment recorded twice is one payment. The cap refuses them before the
  money is accepted.
* Staff adjustments correct a balance either way, with a reason.
* A credit is announced (`CustomerCredited`) in the same transaction, so
  charging renews the lines an unpaid renewal suspended.

Card payments and Stripe Checkout: app/payments/stripe_payments.py; Stripe's
webhooks: app/payments/webhooks.py; refunds: app/payments/refunds.py;
vouchers: app/payments/vouchers.py. `check_payments` holds payments and
refunds against the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, literal
from sqlmodel import Session, col, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.db import insert_unique, lock_by_id
from app.core.errors import N_, InvalidInput, clean_text
from app.core.events import emit
from app.core.money import check_amount
from app.ledger.events import CustomerCredited
from app.ledger.models import JournalEntry, LedgerAccount
from app.ledger.movements import adjust_balance as ledger_adjust_balance
from app.ledger.movements import credit_customer
from app.payments.errors import PaymentConflict, PaymentNotFound
from app.payments.models import FINAL_REFUND_STATUSES, Payment, Refund
from app.subscribers.services import get_customer

OFFLINE_METHODS = ("cash", "bank_transfer")
MAX_REFERENCE = limits.REFERENCE


@dataclass(frozen=True)
class MoneyPolicy:
    """The settings every money movement needs (DESIGN §3, §5)."""

    currency: str
    cap_months: int
    reference_monthly_minor: int

    @classmethod
    def from_settings(cls, settings: Any) -> MoneyPolicy:
        """The policy of the settings CURRENCY, PREPAY_CAP_MONTHS, PREPAY_REFERENCE_MONTHLY."""
        return cls(
            currency=settings.currency,
            cap_months=settings.prepay_cap_months,
            reference_monthly_minor=settings.prepay_reference_monthly_minor,
        )

    def cap_kwargs(self) -> dict[str, Any]:
        """The cap arguments of the ledger's credit functions."""
        return {
            "cap_months": self.cap_months,
            "reference_monthly_minor": self.reference_monthly_minor,
        }


class _Duplicate(Exception):
    pass


def _check_offline_payment(
    session: Session, customer_id: int, amount_minor: int, method: str, reference: str, memo: str
) -> tuple[str, str]:
    """The cleaned reference and memo of an offline payment to an existing customer.

    :raises InvalidInput: bad method, amount or reference. :raises CustomerNotFound.
    """
    if method not in OFFLINE_METHODS:
        raise InvalidInput(N_("Unknown payment method %(method)s."), field="method", method=method)
    check_amount(amount_minor)
    reference = clean_text(reference, field="reference", max_length=MAX_REFERENCE, required=True)
    memo = clean_text(memo, field="memo", max_length=limits.MEMO)
    get_customer(session, customer_id)
    return reference, memo


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

    The credit is then announced (`CustomerCredited`, in this transaction:
    charging renews and resumes the lines an unpaid renewal suspended),
    unless `renew_suspended` is False: money paid for a store order must
    reach the order first.
    Idempotent per (method, reference): recording the same payment again
    returns the first one.
    :raises InvalidInput: bad method, amount or reference.
    :raises PaymentConflict: the reference was recorded with another customer or amount.
    :raises CapExceeded: the credit would pass the cap; nothing is recorded.
    """
    reference, memo = _check_offline_payment(
        session, customer_id, amount_minor, method, reference, memo
    )
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
    first = _insert_or_first(session, payment)
    if first is not None:
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
        emit(session, CustomerCredited(customer_id=customer_id, actor=actor, now=now))
    return payment


def _insert_or_first(session: Session, payment: Payment) -> Payment | None:
    """Insert an offline payment; None when inserted, else the one recorded first
    under its (method, reference).

    :raises PaymentConflict: the first one is for another customer or amount.
    """
    method, reference = payment.method, payment.reference
    customer_id, amount_minor = payment.customer_id, payment.amount_minor
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
    return None


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
    audited); a positive one is a credit, so it is then announced (`CustomerCredited`:
    charging renews and resumes the lines an unpaid renewal suspended).

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
        emit(session, CustomerCredited(customer_id=customer_id, actor=actor, now=now))
    return entry


def get_payment(session: Session, payment_id: int) -> Payment:
    """The payment `payment_id`.

    :raises PaymentNotFound: no such payment.
    """
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound(N_("No payment %(id)s."), id=payment_id)
    return payment


def lock_payment(session: Session, payment_id: int) -> Payment:
    """The payment `payment_id`, locked `FOR UPDATE` and read afresh.

    :raises PaymentNotFound: no such payment.
    """
    payment = lock_by_id(session, Payment, payment_id)
    if payment is None:
        raise PaymentNotFound(N_("No payment %(id)s."), id=payment_id)
    return payment


def get_payment_of(session: Session, *, payment_id: int, customer_id: int) -> Payment:
    """A payment only if it belongs to the customer (self-care receipts)."""
    payment = session.get(Payment, payment_id)
    if payment is None or payment.customer_id != customer_id:
        raise PaymentNotFound(N_("No payment %(id)s."), id=payment_id)
    return payment


def list_payments(
    session: Session,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    method: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Payment], int]:
    """A page of payments, newest first, optionally of one customer, status or method;
    and how many match in all."""
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
