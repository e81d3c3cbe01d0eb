"""One subscriber's line ending with its refund: termination and port-out (DESIGN §10, §12).

The same refund as the market exit, for one line (`owed.line_refund`),
worked out at `now` before the line ends: the unused value of its periods
past now, plus the customer's positive balance when it is their last line
not ended in that currency; arrears are paid from it first (no write-off:
the customer may stay).

In the caller's transaction, after locking the line and the customer's
prepaid account:

1. the line ends through the lifecycle — terminated (the number rests in
   quarantine) or ported out (the number is marked ported out); the SIM is
   retired and the host gets its provisioning event;
2. the unused value comes back from plan revenue to the prepaid balance
   (entry `line_end_unused`, key `line-end:<line>:unused`);
3. the refund leaves the balance for refunds payable and is queued to the
   customer's card payments in its currency, newest first, the rest listed
   for finance to pay by hand (`app.payments.refunds.request_refund`,
   reason `termination`, key `line-end:<line>`); the scheduler's refund job
   sends the card refunds to Stripe;
4. the customer is told (`exit_refund` with the amount, else `termination`
   for a termination) and the whole is audited (`line.end_refund`, beside
   the lifecycle's `line.terminate` / `line.port_out` and each refund's
   `refund.request`).

A second call for a line that already ended the same way (a double submit)
pays nothing and returns the first call's refunds; a line that ended
otherwise is refused, and so is a subscriber's call for a line not theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from app.auth.models import SubscriberAccount
from app.core.audit import Actor, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_, Forbidden
from app.core.money import format_plain
from app.exit.owed import LineRefund, line_refund
from app.ledger.accounts import customer_account_id, system_account_id
from app.ledger.posting import BulkEntry, find_entry, lock_accounts, post_entries
from app.payments.models import Refund
from app.payments.refunds import request_refund
from app.subscribers import lifecycle
from app.subscribers.errors import LineNotFound, LineStateError
from app.subscribers.models import FINAL_LINE_STATUSES, Customer, Line
from app.subscribers.notices import notify_customer
from plans.models import Plan

__all__ = [
    "LineEnded",
    "line_end_key",
    "port_out_with_refund",
    "quote_line_end",
    "terminate_with_refund",
]

REFUND_REASON = "termination"
UNUSED_KIND = "line_end_unused"
_ENDED = {"terminate": "terminated", "port_out": "ported_out"}


@dataclass(frozen=True)
class LineEnded:
    """What ending a line did: the line, the refund and the refunds queued for it."""

    line: Line
    refund_minor: int
    currency: str
    refunds: list[Refund] = field(default_factory=list)
    # True when the line had already ended this way: nothing was paid now.
    replayed: bool = False

    @property
    def to_cards_minor(self) -> int:
        return sum(r.amount_minor for r in self.refunds if r.payment_id is not None)

    @property
    def by_hand_minor(self) -> int:
        return sum(r.amount_minor for r in self.refunds if r.payment_id is None)


def line_end_key(line_id: int) -> str:
    """The idempotency key of a line's ending money (its entries derive from it)."""
    return f"line-end:{line_id}"


def _own(line: Line, customer_id: int | None) -> None:
    if customer_id is not None and line.customer_id != customer_id:
        raise Forbidden(N_("This line is not yours."), field="line")


def quote_line_end(
    session: Session, *, line_id: int, now: datetime, customer_id: int | None = None
) -> LineRefund:
    """What ending the line now would refund, for a confirmation page; writes nothing.

    :raises LineNotFound: no such line.
    :raises Forbidden: `customer_id` is given and the line is not theirs.
    :raises LineStateError: the line has already ended.
    """
    line = session.get(Line, line_id)
    if line is None:
        raise LineNotFound(N_("No line %(id)s."), id=line_id)
    _own(line, customer_id)
    if line.status in FINAL_LINE_STATUSES:
        raise _ended(line)
    return line_refund(session, line_id=line_id, at=now)


def _ended(line: Line) -> LineStateError:
    return LineStateError(
        N_("Line %(msisdn)s has already ended: its status is %(status)s."),
        field="status",
        msisdn=line.msisdn,
        status=line.status,
    )


def terminate_with_refund(
    session: Session,
    *,
    line_id: int,
    reason: str,
    quarantine_days: int,
    actor: Actor,
    now: datetime,
    customer_id: int | None = None,
) -> LineEnded:
    """Terminate the line and refund it (see the module docstring).

    Locks the line and the customer's prepaid account. Idempotent: a
    terminated line returns its first refunds and pays nothing.
    :raises LineNotFound: no such line.
    :raises Forbidden: `customer_id` is given and the line is not theirs.
    :raises LineStateError: the line was transferred or ported out.
    :raises InvalidInput: no reason, or negative quarantine days.
    """
    return _end(
        session,
        line_id=line_id,
        change="terminate",
        reason=reason,
        quarantine_days=quarantine_days,
        actor=actor,
        now=now,
        customer_id=customer_id,
    )


def port_out_with_refund(
    session: Session,
    *,
    line_id: int,
    reason: str,
    actor: Actor,
    now: datetime,
    customer_id: int | None = None,
) -> LineEnded:
    """Port the line's number out and refund the line (see the module docstring).

    Locks the line and the customer's prepaid account. Idempotent: a
    ported-out line returns its first refunds and pays nothing.
    :raises LineNotFound: no such line.
    :raises Forbidden: `customer_id` is given and the line is not theirs.
    :raises LineStateError: the line is pending or has ended otherwise.
    """
    return _end(
        session,
        line_id=line_id,
        change="port_out",
        reason=reason,
        quarantine_days=0,
        actor=actor,
        now=now,
        customer_id=customer_id,
    )


def _end(
    session: Session,
    *,
    line_id: int,
    change: str,
    reason: str,
    quarantine_days: int,
    actor: Actor,
    now: datetime,
    customer_id: int | None,
) -> LineEnded:
    line = lock_by_id(session, Line, line_id)
    if line is None:
        raise LineNotFound(N_("No line %(id)s."), id=line_id)
    _own(line, customer_id)
    if line.status == _ENDED[change]:
        return _earlier(session, line)
    if line.status in FINAL_LINE_STATUSES:
        raise _ended(line)
    account_id = customer_account_id(
        session, customer_id=line.customer_id, currency=_currency(session, line)
    )
    # The balance is read under the account's lock, so no charge lands between
    # the refund worked out and the refund paid.
    lock_accounts(session, [account_id])
    quote = line_refund(session, line_id=line_id, at=now)
    if change == "terminate":
        line = lifecycle.terminate_line(
            session,
            line_id=line_id,
            reason=reason,
            quarantine_days=quarantine_days,
            actor=actor,
            now=now,
        )
    else:
        line = lifecycle.port_out_line(
            session, line_id=line_id, reason=reason, actor=actor, now=now
        )
    refunds = _pay(session, line, quote, account_id=account_id, actor=actor, now=now)
    _tell(session, line, quote, change=change, now=now)
    record_audit(
        session,
        actor=actor,
        action="line.end_refund",
        now=now,
        target_type="line",
        target_id=line.id,
        details={
            "msisdn": line.msisdn,
            "status": line.status,
            "currency": quote.currency,
            "unused_minor": quote.unused_minor,
            "balance_minor": quote.balance_minor,
            "arrears_minor": quote.arrears_minor,
            "refund_minor": quote.refund_minor,
            "refunds": [r.id for r in refunds],
        },
    )
    return LineEnded(line, quote.refund_minor, quote.currency, refunds)


def _pay(
    session: Session,
    line: Line,
    quote: LineRefund,
    *,
    account_id: int,
    actor: Actor,
    now: datetime,
) -> list[Refund]:
    """Steps 2 and 3 of the module docstring."""
    assert line.id is not None
    key = line_end_key(line.id)
    if quote.unused_minor:
        revenue_id = system_account_id(session, kind="revenue_plans", currency=quote.currency)
        posted = post_entries(
            session,
            entries=[
                BulkEntry(
                    kind=UNUSED_KIND,
                    idempotency_key=f"{key}:unused",
                    postings=((account_id, quote.unused_minor), (revenue_id, -quote.unused_minor)),
                    memo=f"unused plan value of line {line.msisdn}",
                )
            ],
            actor=actor,
            now=now,
        )
        assert not posted.refused, posted.refused  # a credit is never refused
    if not quote.refund_minor:
        return []
    return request_refund(
        session,
        customer_id=line.customer_id,
        amount_minor=quote.refund_minor,
        reason=REFUND_REASON,
        note=f"line {line.msisdn} {line.status}",
        actor=actor,
        now=now,
        currency=quote.currency,
        idempotency_key=key,
    )


def _earlier(session: Session, line: Line) -> LineEnded:
    """A line already ended this way: the refunds its ending queued, if any."""
    assert line.id is not None
    entry = find_entry(session, f"refund-request:{line_end_key(line.id)}")
    refunds: list[Refund] = []
    if entry is not None:
        refunds = list(
            session.exec(
                select(Refund).where(Refund.journal_entry_id == entry.id).order_by(col(Refund.id))
            )
        )
    return LineEnded(
        line,
        sum(r.amount_minor for r in refunds),
        _currency(session, line),
        refunds,
        replayed=True,
    )


def _currency(session: Session, line: Line) -> str:
    plan = session.get(Plan, line.plan_id)
    assert plan is not None, f"line refers to missing plan {line.plan_id}"
    return plan.currency


def _tell(session: Session, line: Line, quote: LineRefund, *, change: str, now: datetime) -> None:
    """Tell the customer, in their language, what was refunded (or that the line ended)."""
    customer = session.get(Customer, line.customer_id)
    if customer is None:
        return
    account = (
        session.get(SubscriberAccount, customer.subscriber_account_id)
        if customer.subscriber_account_id is not None
        else None
    )
    locale = account.locale if account is not None else "zh_Hans"
    if quote.refund_minor:
        notify_customer(
            session,
            customer,
            kind="exit_refund",
            now=now,
            data={
                "msisdn": line.msisdn,
                "amount": format_plain(quote.refund_minor),
                "currency": quote.currency,
            },
            dedupe_key=f"exit_refund:line:{line.id}",
            locale=locale,
        )
    elif change == "terminate":
        notify_customer(
            session,
            customer,
            kind="termination",
            now=now,
            data={"msisdn": line.msisdn},
            dedupe_key=f"termination:{line.id}",
            locale=locale,
        )
