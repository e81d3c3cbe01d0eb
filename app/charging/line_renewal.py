"""Renewing one line at a time: self-care's "renew now", and the renewal a credit pays.

The batch job (app/charging/renewals.py) renews lines set-based; these
functions renew one locked line through the ORM, with the same entry kind,
idempotency key, audit records and notices. The customer's prepaid account
is locked before the line, in the order of every credit, so a credit, the
job and a manual renewal never deadlock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select as sa_select
from sqlmodel import Session

from app.charging.errors import RenewalRefused
from app.charging.horizon import exit_horizon, renewal_terms_at
from app.charging.models import LinePeriod
from app.charging.periods import latest_period, open_period
from app.charging.renewal_notices import low_balance_notice, notify, renewal_notice
from app.charging.renewal_terms import (
    ENTRY_KIND,
    RESUME_REASON,
    REVENUE_KIND,
    PlanTerms,
    renewal_key,
    terms_of,
    utc_iso,
)
from app.core.audit import Actor, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_
from app.core.money import format_plain
from app.ledger.accounts import CUSTOMER_PREPAID, customer_account_ids, system_account_id
from app.ledger.activity import plan_tag
from app.ledger.balances import customer_balance
from app.ledger.errors import InsufficientBalance
from app.ledger.models import LedgerAccount
from app.ledger.posting import BulkEntry, BulkResult, post_entries
from app.subscribers import lifecycle
from app.subscribers.errors import LineNotFound
from app.subscribers.models import Line
from plans.models import MAX_VALIDITY_DAYS, Plan

_ACCOUNT = LedgerAccount.__table__  # type: ignore[attr-defined]


def lock_customer_accounts(session: Session, customer_id: int) -> None:
    """Lock the customer's prepaid accounts (`FOR UPDATE`, id order), as a credit does."""
    session.flush()
    session.connection().execute(
        sa_select(_ACCOUNT.c.id)
        .where(_ACCOUNT.c.kind == CUSTOMER_PREPAID, _ACCOUNT.c.customer_id == customer_id)
        .order_by(_ACCOUNT.c.id)
        .with_for_update()
    ).all()


def is_renewal_suspended(line: Line) -> bool:
    """The line's suspension is its unpaid renewal's own (not a staff suspension)."""
    return (
        line.status == "suspended"
        and line.renewal_failed_at is not None
        and line.renewal_failed_at == line.status_changed_at
    )


def renew_line(
    session: Session, line: Line, *, start: datetime, actor: Actor, now: datetime, manual: bool
) -> LinePeriod | None:
    """Debit and open one period of a locked line from `start`; None when the balance is short.

    Applies and clears `next_plan_id` and clears `renewal_failed_at`; writes
    the audit records and the renewal (and low-balance) notices. The debit's
    idempotency key is `renewal_key(line, old period end)`: a replay opens
    the period without debiting again. Nothing is written when refused.
    """
    assert line.id is not None and line.period_end is not None
    plan_row = session.get(Plan, line.next_plan_id or line.plan_id)
    assert plan_row is not None
    plan = terms_of(plan_row)
    price_minor, end = _terms_before_exit(session, line, plan_row, start=start)
    key = renewal_key(line.id, line.period_end)
    entry_id = None
    if price_minor:
        result = _post_debit(session, line, plan, price_minor, key=key, actor=actor, now=now)
        if result.refused:
            return None
        entry_id = result.posted.get(key) or result.replayed[key]
    switched_from = line.plan_id if line.next_plan_id is not None else None
    period = open_period(
        session,
        line=line,
        plan=plan_row,
        start=start,
        now=now,
        entry_id=entry_id,
        price_minor=price_minor,
        end=end,
    )
    line.next_plan_id = None
    line.renewal_failed_at = None
    session.add(line)
    session.flush()
    _audit_renewal(
        session,
        line,
        plan,
        period,
        switched_from=switched_from,
        entry_id=entry_id,
        manual=manual,
        actor=actor,
        now=now,
    )
    _notify_renewal(session, line, plan, period, now=now)
    return period


def _terms_before_exit(
    session: Session, line: Line, plan: Plan, *, start: datetime
) -> tuple[int, datetime]:
    """(price, end) of the period from `start`: shortened and pro-rated at an announced exit.

    :raises RenewalRefused: the period would start at or after the exit instant.
    """
    horizon = exit_horizon(session)
    terms = renewal_terms_at(
        price_minor=plan.price_minor, validity_days=plan.validity_days, start=start, horizon=horizon
    )
    if terms is None:
        assert horizon is not None
        raise RenewalRefused(
            N_(
                "Service ends at the market exit on %(at)s; line %(msisdn)s is not renewed past it."
            ),
            field="line",
            at=utc_iso(horizon),
            msisdn=line.msisdn,
        )
    return terms


def _post_debit(
    session: Session,
    line: Line,
    plan: PlanTerms,
    price_minor: int,
    *,
    key: str,
    actor: Actor,
    now: datetime,
) -> BulkResult:
    """Post the renewal's debit (`price_minor`) of the customer's balance to plan revenue."""
    account = customer_account_ids(
        session, customer_ids=[line.customer_id], currency=plan.currency
    )[line.customer_id]
    revenue = system_account_id(session, kind=REVENUE_KIND, currency=plan.currency)
    return post_entries(
        session,
        entries=[
            BulkEntry(
                kind=ENTRY_KIND,
                idempotency_key=key,
                postings=((account, -price_minor), (revenue, price_minor)),
                memo=f"renewal of {line.msisdn} on {plan.code}",
                tag=plan_tag(plan.code),
            )
        ],
        actor=actor,
        now=now,
    )


def _audit_renewal(
    session: Session,
    line: Line,
    plan: PlanTerms,
    period: LinePeriod,
    *,
    switched_from: int | None,
    entry_id: int | None,
    manual: bool,
    actor: Actor,
    now: datetime,
) -> None:
    """`line.plan_switch` when a pending plan change applied, then `line.renew`."""
    if switched_from is not None:
        old = session.get(Plan, switched_from)
        record_audit(
            session,
            actor=actor,
            action="line.plan_switch",
            now=now,
            target_type="line",
            target_id=line.id,
            details={
                "msisdn": line.msisdn,
                "from_plan": old.code if old else None,
                "from_plan_id": switched_from,
                "to_plan": plan.code,
                "to_plan_id": plan.id,
            },
        )
    record_audit(
        session,
        actor=actor,
        action="line.renew",
        now=now,
        target_type="line",
        target_id=line.id,
        details={
            "msisdn": line.msisdn,
            "plan": plan.code,
            "price_minor": period.price_minor,
            "period_start": utc_iso(period.start),
            "period_end": utc_iso(period.end),
            "entry_id": entry_id,
            "manual": manual,
        },
    )


def _notify_renewal(
    session: Session, line: Line, plan: PlanTerms, period: LinePeriod, *, now: datetime
) -> None:
    """The renewal notice, and a low-balance one when the balance will not pay the next."""
    assert line.id is not None
    notify(
        session,
        renewal_notice(
            line.customer_id,
            line_id=line.id,
            msisdn=line.msisdn,
            plan=plan,
            start=period.start,
            end=period.end,
            periods=1,
            amount_minor=period.price_minor,
        ),
        now=now,
    )
    balance = customer_balance(session, customer_id=line.customer_id)
    if balance < plan.price_minor:
        notify(
            session,
            low_balance_notice(
                line.customer_id,
                line_id=line.id,
                msisdn=line.msisdn,
                following=plan,
                balance_minor=balance,
                period_end=period.end,
            ),
            now=now,
        )


def resume_renewed_line(session: Session, line: Line, *, actor: Actor, now: datetime) -> None:
    """Resume a line whose unpaid renewal is now paid (lifecycle, `resumed` notice)."""
    assert line.id is not None
    lifecycle.resume_line(session, line_id=line.id, reason=RESUME_REASON, actor=actor, now=now)
    notify(
        session,
        (line.customer_id, "resumed", {"msisdn": line.msisdn}, f"resumed:{line.id}:{utc_iso(now)}"),
        now=now,
    )


def renew_now(
    session: Session,
    *,
    line_id: int,
    actor: Actor,
    now: datetime,
    expected_period_end: datetime | None = None,
) -> LinePeriod:
    """Renew a line at once (self-care "renew now", e.g. with auto-renew off).

    A line whose period has ended continues from the old end (its renewal
    suspension, if any, from `now`, and it is resumed); a running period is
    extended by the next one, at most `MAX_VALIDITY_DAYS` ahead (the 24-month
    rule). `expected_period_end` is the end the customer saw: when the line's
    period has moved on since (a double submit), the latest period is
    returned and nothing is charged. Locks the customer's account, then the line.
    :raises LineNotFound: no such line.
    :raises RenewalRefused: the line is not active or suspended, has no
        period yet, or is paid too far ahead.
    :raises InsufficientBalance: the balance does not cover the price.
    """
    found = session.get(Line, line_id)
    if found is None:
        raise LineNotFound(N_("No line %(id)s."), id=line_id)
    # The account before the line, in the order of a credit (see renew_suspended_lines).
    lock_customer_accounts(session, found.customer_id)
    line = lock_by_id(session, Line, line_id)
    assert line is not None
    if line.status not in ("active", "suspended") or line.period_end is None:
        raise RenewalRefused(
            N_("Line %(msisdn)s cannot be renewed: its status is %(status)s."),
            field="status",
            msisdn=line.msisdn,
            status=line.status,
        )
    if expected_period_end is not None and line.period_end != expected_period_end:
        current = latest_period(session, line_id=line_id)
        assert current is not None
        return current
    lapsed = line.renewal_failed_at is not None and line.period_end <= now
    start = now if lapsed else line.period_end
    if start > now + timedelta(days=MAX_VALIDITY_DAYS):
        raise RenewalRefused(
            N_("Line %(msisdn)s is already paid until %(end)s; it cannot be paid further ahead."),
            field="line",
            msisdn=line.msisdn,
            end=utc_iso(line.period_end),
        )
    renewal_suspended = is_renewal_suspended(line)
    period = renew_line(session, line, start=start, actor=actor, now=now, manual=True)
    if period is None:
        plan = session.get(Plan, line.next_plan_id or line.plan_id)
        assert plan is not None
        raise InsufficientBalance(
            N_("The balance %(balance)s is less than %(amount)s."),
            balance=format_plain(customer_balance(session, customer_id=line.customer_id)),
            amount=format_plain(plan.price_minor),
        )
    if renewal_suspended:
        resume_renewed_line(session, line, actor=actor, now=now)
    return period
