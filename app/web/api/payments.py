"""JSON API of the money side: balances, ledger history, payments, refunds, vouchers.

The console's money pages for integrations (DESIGN §5, §14). Money is integers
in minor units with the currency beside them; times are ISO 8601 with offset.

Who may do what: reading balances, history, payments, refunds and voucher
batches needs `ledger.view` (care and auditors answer questions about money);
moving money — adjustments, offline payments, refunds, printing and voiding
vouchers — needs `payments.manage`; redeeming a customer's voucher for them
needs `vouchers.redeem`.

Replays: an adjustment carries the client's idempotency key, and the same key
with the same amount and reason answers 201 with the first entry again (the
balance shown is the balance now); another amount or reason under that key is a
409. An offline
payment is idempotent per (method, reference).

A wrong voucher PIN is a 422 whose failed attempt is kept (the error's
`keeps_transaction`, honoured by `app.web`), so five of them lock the
customer out (429) even for the right PIN.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE
from sqlmodel import Session, col, select

from app.core.clock import utcnow
from app.core.errors import N_
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.balances import customer_balance as ledger_customer_balance
from app.ledger.balances import customer_history
from app.ledger.cap import cap_headroom_minor, prepaid_cap_minor
from app.ledger.models import LedgerAccount, Posting
from app.payments import checkout, queries, vouchers
from app.payments import refunds as payment_refunds
from app.payments.errors import VoucherNotFound
from app.payments.models import Payment, Refund, Voucher, VoucherBatch
from app.payments.services import MoneyPolicy, adjust_balance, list_payments, record_offline_payment
from app.payments.stripe_gateway import StripeGateway
from app.subscribers.models import Customer
from app.web.api import bp
from app.web.api.common import customer_by_ref, page_args, page_out
from app.web.api.payments_schemas import (
    AdjustmentIn,
    BalanceOut,
    BatchCreated,
    BatchDetail,
    BatchIn,
    BatchList,
    BatchQuery,
    EntryOut,
    LedgerPage,
    PaidOfflineIn,
    PaymentIn,
    PaymentOut,
    PaymentPage,
    PaymentQuery,
    RedemptionIn,
    RedemptionOut,
    RefundIn,
    RefundList,
    RefundOut,
    RefundPage,
    RefundQuery,
    VoucherOut,
)
from app.web.api.schemas import PageQuery
from app.web.api.security import requires
from app.web.context import (
    client_ip,
    current_actor,
    database,
    db_session,
    own_units_of_work,
    settings,
)


def _policy() -> MoneyPolicy:
    return MoneyPolicy.from_settings(settings())


def _customer_id(ref: str) -> int:
    customer_id = customer_by_ref(ref).id
    assert customer_id is not None
    return customer_id


def _refs(session: Session, customer_ids: set[int]) -> dict[int, str]:
    return queries.customer_refs(session, customer_ids)


def _entry_out(customer: Customer, entry: Any, amount_minor: int) -> dict[str, Any]:
    assert customer.id is not None
    return {
        "customer_ref": customer.ref,
        "entry_id": entry.id,
        "kind": entry.kind,
        "at": entry.at,
        "amount_minor": amount_minor,
        "balance_minor": ledger_customer_balance(db_session(), customer_id=customer.id),
        "currency": _policy().currency,
    }


def _prepaid_amount(session: Session, *, entry_id: int, customer_id: int) -> int:
    """What an entry moved on the customer's prepaid balance."""
    amounts = session.exec(
        select(Posting.amount_minor)
        .join(LedgerAccount, col(LedgerAccount.id) == col(Posting.account_id))
        .where(
            Posting.entry_id == entry_id,
            LedgerAccount.kind == CUSTOMER_PREPAID,
            LedgerAccount.customer_id == customer_id,
        )
    ).all()
    return sum(amounts)


def _payment(payment: Payment, refs: dict[int, str]) -> dict[str, Any]:
    return {**payment.model_dump(), "customer_ref": refs.get(payment.customer_id, "")}


def _refund(refund: Refund, refs: dict[int, str]) -> dict[str, Any]:
    return {**refund.model_dump(), "customer_ref": refs.get(refund.customer_id, "")}


def _refunds(refunds: list[Refund]) -> list[dict[str, Any]]:
    refs = _refs(db_session(), {r.customer_id for r in refunds})
    return [_refund(r, refs) for r in refunds]


def _batch(batch: VoucherBatch, counts: dict[int, dict[str, int]]) -> dict[str, Any]:
    return {**batch.model_dump(), "counts": counts.get(batch.id or 0, {})}


# -- balance and ledger -------------------------------------------------------------------


@bp.get("/customers/<ref>/balance")
@requires("ledger.view")
@bp.output(BalanceOut)
@bp.doc(responses={404: "No such customer"})
def customer_balance(ref: str) -> Any:
    """The customer's prepaid balance, its cap and the largest credit it can take now."""
    session = db_session()
    customer = customer_by_ref(ref)
    assert customer.id is not None
    policy = _policy()
    return {
        "customer_ref": customer.ref,
        "balance_minor": ledger_customer_balance(session, customer_id=customer.id),
        "cap_minor": prepaid_cap_minor(
            session,
            customer_id=customer.id,
            settings_months=policy.cap_months,
            reference_monthly_minor=policy.reference_monthly_minor,
        ),
        "headroom_minor": cap_headroom_minor(
            session, customer_id=customer.id, **policy.cap_kwargs()
        ),
        "currency": policy.currency,
    }


@bp.get("/customers/<ref>/ledger")
@requires("ledger.view")
@bp.input(PageQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(LedgerPage)
@bp.doc(responses={404: "No such customer"})
def customer_ledger(ref: str, query: dict[str, Any]) -> Any:
    """The customer's prepaid postings, newest first, each with the running balance after it."""
    customer = customer_by_ref(ref)
    assert customer.id is not None
    rows, total = customer_history(db_session(), customer_id=customer.id, **page_args(query))
    return page_out(rows, total, query, customer_ref=customer.ref, currency=_policy().currency)


@bp.post("/customers/<ref>/adjustments")
@requires("payments.manage")
@bp.input(AdjustmentIn, arg_name="data")
@bp.output(EntryOut, status_code=201)
@bp.doc(
    responses={
        404: "No such customer",
        409: "Above the prepayment cap, below zero, or the key was used for another amount",
    }
)
def customer_adjust(ref: str, data: dict[str, Any]) -> Any:
    """Correct a balance by a signed amount, with a reason (audited).

    Idempotent per `idempotency_key`: a replay answers 201 with the first entry.
    """
    customer = customer_by_ref(ref)
    assert customer.id is not None
    policy = _policy()
    entry = adjust_balance(
        db_session(),
        customer_id=customer.id,
        amount_minor=data["amount_minor"],
        reason=data["reason"],
        # Namespaced, so a client's key never meets one the platform makes itself.
        idempotency_key=f"adjust:{data['idempotency_key']}",
        actor=current_actor(),
        now=utcnow(),
        policy=policy,
    )
    return _entry_out(customer, entry, data["amount_minor"])


# -- payments -----------------------------------------------------------------------------


@bp.post("/customers/<ref>/payments")
@requires("payments.manage")
@bp.input(PaymentIn, arg_name="data")
@bp.output(PaymentOut, status_code=201)
@bp.doc(
    responses={
        404: "No such customer",
        409: "Above the prepayment cap (the message names the largest amount allowed now), "
        "or the reference was recorded for another payment",
    }
)
def payment_record(ref: str, data: dict[str, Any]) -> Any:
    """Record cash or a bank transfer received, and credit it to the balance.

    Idempotent per (method, reference): the same payment again answers 201 with the first.
    """
    customer = customer_by_ref(ref)
    assert customer.id is not None
    payment = record_offline_payment(
        db_session(),
        customer_id=customer.id,
        amount_minor=data["amount_minor"],
        method=data["method"],
        reference=data["reference"],
        memo=data["memo"],
        actor=current_actor(),
        now=utcnow(),
        policy=_policy(),
    )
    return _payment(payment, {customer.id: customer.ref})


@bp.get("/payments")
@requires("ledger.view")
@bp.input(PaymentQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(PaymentPage)
@bp.doc(responses={404: "No such customer"})
def payment_list(query: dict[str, Any]) -> Any:
    """Payments, newest first, filtered by customer ref, status and method."""
    session = db_session()
    customer_id = _customer_id(query["customer"]) if query.get("customer") else None
    items, total = list_payments(
        session,
        customer_id=customer_id,
        status=query.get("status"),
        method=query.get("method"),
        **page_args(query),
    )
    refs = _refs(session, {p.customer_id for p in items})
    return page_out([_payment(p, refs) for p in items], total, query)


# -- refunds ------------------------------------------------------------------------------


@bp.get("/refunds")
@requires("ledger.view")
@bp.input(RefundQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(RefundPage)
@bp.doc(responses={404: "No such customer"})
def refund_list(query: dict[str, Any]) -> Any:
    """Refunds, newest first, filtered by customer ref and status."""
    customer_id = _customer_id(query["customer"]) if query.get("customer") else None
    items, total = payment_refunds.list_refunds(
        db_session(), customer_id=customer_id, status=query.get("status"), **page_args(query)
    )
    return page_out(_refunds(items), total, query)


@bp.post("/customers/<ref>/refunds")
@requires("payments.manage")
@bp.input(RefundIn, arg_name="data")
@bp.output(RefundList, status_code=201)
@bp.doc(responses={404: "No such customer", 409: "The balance does not cover it"})
def refund_request(ref: str, data: dict[str, Any]) -> Any:
    """Refund part of the balance (a staff refund).

    The amount leaves the balance at once. It goes back to the customer's card
    payments, newest first, as far as they allow; the rest is a refund to pay
    out by hand — so one request may create several refunds.
    """
    customer = customer_by_ref(ref)
    assert customer.id is not None
    refunds = payment_refunds.request_refund(
        db_session(),
        customer_id=customer.id,
        amount_minor=data["amount_minor"],
        reason="staff",
        note=data["note"],
        actor=current_actor(),
        now=utcnow(),
        currency=_policy().currency,
        idempotency_key=f"api:{data['idempotency_key']}" if data.get("idempotency_key") else None,
    )
    return {"items": _refunds(refunds)}


@bp.post("/refunds/<int:refund_id>/retry")
@requires("payments.manage")
@bp.output(RefundOut)
@bp.doc(responses={404: "No such refund", 409: "Only a failed card refund can be retried"})
def refund_retry(refund_id: int) -> Any:
    """Queue a failed card refund again, as a new attempt at Stripe."""
    refund = payment_refunds.retry_refund(
        db_session(), refund_id=refund_id, actor=current_actor(), now=utcnow()
    )
    return _refunds([refund])[0]


@bp.post("/refunds/<int:refund_id>/paid-offline")
@requires("payments.manage")
@bp.input(PaidOfflineIn, arg_name="data")
@bp.output(RefundOut)
@bp.doc(responses={404: "No such refund", 409: "Already paid, or on its way at Stripe"})
def refund_paid_offline(refund_id: int, data: dict[str, Any]) -> Any:
    """Record that finance paid a failed (or card-less) refund by hand."""
    refund = payment_refunds.mark_refund_paid_offline(
        db_session(), refund_id=refund_id, note=data["note"], actor=current_actor(), now=utcnow()
    )
    return _refunds([refund])[0]


@bp.post("/refunds/<int:refund_id>/send")
@own_units_of_work
@requires("payments.manage")
@bp.output(RefundOut)
@bp.doc(
    responses={
        404: "No such refund",
        409: "The payment has no card charge to refund",
        502: "Stripe could not be reached or refused the refund",
        503: "Stripe is not configured (`stripe_not_configured`)",
    }
)
def refund_send(refund_id: int) -> Any:
    """Send a pending card refund to Stripe now, instead of waiting for the scheduler.

    A refund that is not pending (or has no card payment) is returned as it is.
    """
    refund = checkout.send_refund_now(
        database(), StripeGateway.from_settings(settings()), refund_id=refund_id, now=utcnow()
    )
    return _refunds([refund])[0]


# -- vouchers -----------------------------------------------------------------------------


@bp.get("/voucher-batches")
@requires("ledger.view")
@bp.output(BatchList)
def batch_list() -> Any:
    """Voucher batches, newest first, with how many vouchers are in each status."""
    session = db_session()
    counts = vouchers.count_by_status(session)
    return {"items": [_batch(b, counts) for b in vouchers.list_batches(session)]}


@bp.post("/voucher-batches")
@requires("payments.manage")
@bp.input(BatchIn, arg_name="data")
@bp.output(BatchCreated, status_code=201)
def batch_create(data: dict[str, Any]) -> Any:
    """Print a batch of vouchers. The PINs are in this response only; keep it safe.

    Each PIN costs a few milliseconds to hash, so a batch of 10,000 takes about
    half a minute.
    """
    batch, pairs = vouchers.create_voucher_batch(
        db_session(),
        name=data["name"],
        value_minor=data["value_minor"],
        count=data["count"],
        expires_at=data["expires_at"],
        currency=_policy().currency,
        actor=current_actor(),
        now=utcnow(),
    )
    return {
        **batch.model_dump(),
        "counts": {"available": batch.count},
        "vouchers": [{"serial": serial, "pin": pin} for serial, pin in pairs],
    }


@bp.get("/voucher-batches/<int:batch_id>")
@requires("ledger.view")
@bp.input(BatchQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(BatchDetail)
@bp.doc(responses={404: "No such batch"})
def batch_get(batch_id: int, query: dict[str, Any]) -> Any:
    """A batch and one page of its vouchers in serial order (never their PINs)."""
    session = db_session()
    batch = vouchers.get_batch(session, batch_id)
    items, total = vouchers.list_vouchers(session, batch_id=batch_id, **page_args(query))
    refs = _refs(session, {v.redeemed_by_customer_id for v in items if v.redeemed_by_customer_id})
    return {
        **_batch(batch, vouchers.count_by_status(session)),
        "vouchers": [_voucher(v, refs) for v in items],
        "total": total,
        "page": query["page"],
        "per_page": query["per_page"],
    }


def _voucher(voucher: Voucher, refs: dict[int, str]) -> dict[str, Any]:
    customer_id = voucher.redeemed_by_customer_id
    return {
        "serial": voucher.serial,
        "batch_id": voucher.batch_id,
        "status": voucher.status,
        "redeemed_by_customer_ref": refs.get(customer_id) if customer_id else None,
        "redeemed_at": voucher.redeemed_at,
    }


@bp.post("/vouchers/<serial>/void")
@requires("payments.manage")
@bp.output(VoucherOut)
@bp.doc(responses={404: "No such voucher", 409: "Already redeemed"})
def voucher_void(serial: str) -> Any:
    """Cancel an unused voucher (lost, stolen). Idempotent."""
    if len(serial) > 40 or not all(ch.isascii() and (ch.isalnum() or ch in " -") for ch in serial):
        # No voucher has such a serial; refused before it reaches the database.
        raise VoucherNotFound(N_("No voucher %(serial)s."), field="serial", serial="")
    voucher = vouchers.void_voucher(
        db_session(), serial=serial, actor=current_actor(), now=utcnow()
    )
    refs = _refs(db_session(), {voucher.redeemed_by_customer_id or 0})
    return _voucher(voucher, refs)


@bp.post("/customers/<ref>/voucher-redemptions")
@requires("vouchers.redeem")
@bp.input(RedemptionIn, arg_name="data")
@bp.output(RedemptionOut, status_code=201)
@bp.doc(
    responses={
        404: "No such customer",
        409: "Voucher void, expired or used, or above the prepayment cap",
        429: "Too many failed attempts for this customer or address (`voucher_locked`)",
    }
)
def voucher_redeem(ref: str, data: dict[str, Any]) -> Any:
    """Redeem a voucher into the customer's balance.

    A wrong serial or PIN is a 422 (`voucher_invalid`) and counts: after five
    within 30 minutes the customer is locked out (429), even with the right PIN.
    """
    customer = customer_by_ref(ref)
    assert customer.id is not None
    policy = _policy()
    entry = vouchers.redeem_voucher(
        db_session(),
        customer_id=customer.id,
        serial=data["serial"],
        pin=data["pin"],
        ip=client_ip(),
        actor=current_actor(),
        now=utcnow(),
        policy=vouchers.VoucherPolicy(),
        **policy.cap_kwargs(),
    )
    assert entry.id is not None
    amount = _prepaid_amount(db_session(), entry_id=entry.id, customer_id=customer.id)
    return {**_entry_out(customer, entry, amount), "serial": entry.external_ref}
