"""Moving customer money through the ledger (DESIGN §5): credits, receipts of money
that arrived, charges, adjustments and refunds, each one entry posted by
`app.ledger.posting`.

Rules:

* A credit (payment, voucher, adjustment) that would take the prepaid
  balance above the cap is refused with `CapExceeded` before anything is
  written; money that has already arrived (`receive_money`) cannot be
  refused, so it is credited up to the cap and the excess goes to refunds
  payable.
* A debit may not take the balance below zero, except a late usage charge
  (`allow_arrears`); the next credit clears arrears first.
* Every function is idempotent per key: a replay returns the first entry
  (even if the cap has moved since), another payload under the same key is
  `IdempotencyConflict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.errors import N_, InvalidInput, clean_text
from app.core.money import check_amount
from app.ledger.accounts import (
    CUSTOMER_PREPAID,
    customer_account_id,
    get_or_create_account,
    system_account_id,
)
from app.ledger.cap import ensure_within_cap, headroom_minor, prepaid_cap_minor
from app.ledger.errors import IdempotencyConflict
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.ledger.posting import (
    check_key,
    find_entry,
    lock_accounts,
    post_entry,
    post_locked,
    replay,
    request_hash,
)

CREDIT_SOURCES = ("cash_offline", "cash_stripe", "voucher_float", "adjustments")


def _check_credit(amount_minor: int, source_kind: str, idempotency_key: str) -> None:
    check_amount(amount_minor)
    if source_kind not in CREDIT_SOURCES:
        raise InvalidInput(N_("Unknown source %(kind)s."), field="source_kind", kind=source_kind)
    check_key(idempotency_key)


def credit_customer(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    source_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    cap_months: int,
    reference_monthly_minor: int,
    currency: str,
    memo: str = "",
    external_ref: str | None = None,
) -> JournalEntry:
    """Credit a customer's prepaid account from `source_kind`, refusing to pass the cap.

    Locks the customer's and the source account. Idempotent per key (a
    replay is returned even if the cap has since moved).
    :raises InvalidInput: amount not positive, or an unknown source.
    :raises CapExceeded: the balance would pass the cap; names the largest
        amount allowed now.
    :raises IdempotencyConflict: the key was used for something else.
    """
    _check_credit(amount_minor, source_kind, idempotency_key)
    customer_account = get_or_create_account(
        session, kind=CUSTOMER_PREPAID, customer_id=customer_id, currency=currency
    )
    source_id = system_account_id(session, kind=source_kind, currency=currency)
    assert customer_account.id is not None
    postings = [(source_id, -amount_minor), (customer_account.id, amount_minor)]
    kind = f"credit.{source_kind}"
    locked = lock_accounts(session, [source_id, customer_account.id])
    existing = find_entry(session, idempotency_key)
    if existing is not None:
        return replay(existing, request_hash(kind, postings, locked))
    ensure_within_cap(
        session,
        customer_id=customer_id,
        amount_minor=amount_minor,
        balance_minor=locked[customer_account.id].balance_minor,
        cap_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    entry = post_locked(
        session,
        locked,
        kind=kind,
        idempotency_key=idempotency_key,
        postings=postings,
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
    )
    record_audit(
        session,
        actor=actor,
        action="ledger.credit",
        now=now,
        target_type="customer",
        target_id=customer_id,
        details={"entry_id": entry.id, "amount_minor": amount_minor, "source": source_kind},
    )
    return entry


@dataclass(frozen=True)
class Receipt:
    """How money that arrived was booked: credited to the balance, the rest to refund."""

    entry: JournalEntry
    credited_minor: int
    excess_minor: int


def receive_money(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    source_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    cap_months: int,
    reference_monthly_minor: int,
    currency: str,
    memo: str = "",
    external_ref: str | None = None,
) -> Receipt:
    """Book money that has already arrived (a completed card payment).

    It cannot be refused, so it is credited only up to the cap (DESIGN §5);
    the excess goes to refunds payable, for the caller to refund to where it
    came from. A balance in arrears is cleared first, as with any credit.
    Idempotent per key: a replay returns the first split.
    :raises InvalidInput: amount not positive or unknown source.
    :raises IdempotencyConflict: the key was used for something else.
    """
    _check_credit(amount_minor, source_kind, idempotency_key)
    customer_id_ = customer_account_id(session, customer_id=customer_id, currency=currency)
    source_id = system_account_id(session, kind=source_kind, currency=currency)
    payable_id = system_account_id(session, kind="refunds_payable", currency=currency)
    locked = lock_accounts(session, [customer_id_, source_id, payable_id])
    kind = f"receipt.{source_kind}"
    existing = find_entry(session, idempotency_key)
    if existing is not None:
        by_kind = dict(
            session.exec(
                select(LedgerAccount.kind, Posting.amount_minor)
                .join(LedgerAccount, col(LedgerAccount.id) == col(Posting.account_id))
                .where(Posting.entry_id == existing.id)
            ).all()
        )
        credited, excess = by_kind.get(CUSTOMER_PREPAID, 0), by_kind.get("refunds_payable", 0)
        expected = _receipt_postings(source_id, customer_id_, payable_id, amount_minor, credited)
        replay(existing, request_hash(kind, expected, locked))
        return Receipt(existing, credited, excess)
    cap = prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    credited = min(amount_minor, headroom_minor(cap, locked[customer_id_].balance_minor))
    postings = _receipt_postings(source_id, customer_id_, payable_id, amount_minor, credited)
    entry = post_locked(
        session,
        locked,
        kind=kind,
        idempotency_key=idempotency_key,
        postings=postings,
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
    )
    record_audit(
        session,
        actor=actor,
        action="ledger.receive",
        now=now,
        target_type="customer",
        target_id=customer_id,
        details={
            "entry_id": entry.id,
            "amount_minor": amount_minor,
            "credited_minor": credited,
            "excess_minor": amount_minor - credited,
            "source": source_kind,
        },
    )
    return Receipt(entry, credited, amount_minor - credited)


def _receipt_postings(
    source_id: int, customer_id: int, payable_id: int, amount: int, credited: int
) -> list[tuple[int, int]]:
    postings = [(source_id, -amount)]
    if credited:
        postings.append((customer_id, credited))
    if amount - credited:
        postings.append((payable_id, amount - credited))
    return postings


REVENUE_KINDS = ("revenue_plans", "revenue_usage")


def charge_customer(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    revenue_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    currency: str,
    allow_arrears: bool = False,
    memo: str = "",
    external_ref: str | None = None,
    tag: str = "",
) -> JournalEntry:
    """Take `amount_minor` from the prepaid balance as revenue (a renewal, usage).

    `tag` says what was sold (app/ledger/activity.py: a plan, an add-on).

    Only late usage may take the balance below zero (`allow_arrears`); the
    next credit then clears the arrears first. Idempotent per key.
    :raises InsufficientBalance: the balance does not cover it.
    """
    check_amount(amount_minor)
    if revenue_kind not in REVENUE_KINDS:
        raise InvalidInput(N_("Unknown revenue %(kind)s."), field="revenue_kind", kind=revenue_kind)
    account_id = customer_account_id(session, customer_id=customer_id, currency=currency)
    revenue_id = system_account_id(session, kind=revenue_kind, currency=currency)
    return post_entry(
        session,
        kind=f"charge.{revenue_kind}",
        idempotency_key=idempotency_key,
        postings=[(account_id, -amount_minor), (revenue_id, amount_minor)],
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
        allow_negative=frozenset({account_id}) if allow_arrears else frozenset(),
        tag=tag,
    )


def adjust_balance(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    reason: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    cap_months: int,
    reference_monthly_minor: int,
    currency: str,
) -> JournalEntry:
    """A manual correction by finance staff: signed amount, mandatory reason, audited.

    A positive adjustment is a credit like any other (the cap applies); a
    negative one may not take the balance below zero.
    :raises InvalidInput: zero amount or no reason.
    :raises CapExceeded, InsufficientBalance: refused.
    """
    reason = clean_text(reason, field="reason", max_length=limits.NOTE, required=True)
    check_amount(amount_minor, allow_negative=True)
    check_key(idempotency_key)
    replay = find_entry(session, idempotency_key)
    if replay is not None and replay.memo != reason:
        raise IdempotencyConflict(
            N_("The key %(key)s was already used for a different ledger entry."),
            field="idempotency_key",
            key=idempotency_key,
        )
    if amount_minor > 0:
        entry = credit_customer(
            session,
            customer_id=customer_id,
            amount_minor=amount_minor,
            source_kind="adjustments",
            idempotency_key=idempotency_key,
            actor=actor,
            now=now,
            cap_months=cap_months,
            reference_monthly_minor=reference_monthly_minor,
            currency=currency,
            memo=reason,
        )
    else:
        account_id = customer_account_id(session, customer_id=customer_id, currency=currency)
        adjustments_id = system_account_id(session, kind="adjustments", currency=currency)
        entry = post_entry(
            session,
            kind="debit.adjustments",
            idempotency_key=idempotency_key,
            postings=[(account_id, amount_minor), (adjustments_id, -amount_minor)],
            actor=actor,
            now=now,
            memo=reason,
        )
    if replay is not None:
        return entry  # the first call was audited
    record_audit(
        session,
        actor=actor,
        action="ledger.adjust",
        now=now,
        target_type="customer",
        target_id=customer_id,
        details={"entry_id": entry.id, "amount_minor": amount_minor, "reason": reason},
    )
    return entry


def move_to_refunds_payable(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    currency: str,
    memo: str = "",
) -> JournalEntry:
    """Take money out of the prepaid balance to be refunded (staff or exit refunds).

    :raises InsufficientBalance: the balance does not cover it.
    """
    check_amount(amount_minor)
    account_id = customer_account_id(session, customer_id=customer_id, currency=currency)
    payable_id = system_account_id(session, kind="refunds_payable", currency=currency)
    return post_entry(
        session,
        kind="refund.request",
        idempotency_key=idempotency_key,
        postings=[(account_id, -amount_minor), (payable_id, amount_minor)],
        actor=actor,
        now=now,
        memo=memo,
    )


PAYOUT_KINDS = ("cash_stripe", "cash_offline")


def pay_out_refund(
    session: Session,
    *,
    amount_minor: int,
    cash_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    currency: str,
    memo: str = "",
    external_ref: str | None = None,
) -> JournalEntry:
    """A refund has left: refunds payable goes down, and so does the cash."""
    check_amount(amount_minor)
    if cash_kind not in PAYOUT_KINDS:
        raise InvalidInput(N_("Unknown source %(kind)s."), field="cash_kind", kind=cash_kind)
    payable_id = system_account_id(session, kind="refunds_payable", currency=currency)
    cash_id = system_account_id(session, kind=cash_kind, currency=currency)
    return post_entry(
        session,
        kind=f"refund.paid.{cash_kind}",
        idempotency_key=idempotency_key,
        postings=[(payable_id, -amount_minor), (cash_id, amount_minor)],
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
    )
