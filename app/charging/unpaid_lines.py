"""Lines whose renewal went unpaid: suspension, resumption after a credit, termination.

The rules are those of app/charging/renewals.py: an unpaid renewal suspends
the line through the lifecycle as of the end of its last paid period and
records that instant in `renewal_failed_at`; the suspension is the
renewal's own exactly while `renewal_failed_at == status_changed_at`. A
credit (`renew_suspended_lines`, on every `CustomerCredited`) renews and
resumes such lines; the job also resumes those whose customer's balance
covers them now (`resume_covered_lines`) and terminates those unpaid and
suspended for `UNPAID_DAYS_BEFORE_TERMINATION` days (`terminate_unpaid_lines`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.charging.horizon import exit_horizon
from app.charging.line_renewal import lock_customer_accounts, renew_line, resume_renewed_line
from app.charging.renewal_notices import Notice, notify, unpaid_notice
from app.charging.renewal_terms import (
    TERMINATION_REASON,
    UNPAID_DAYS_BEFORE_TERMINATION,
    UNPAID_REASON,
    DueLine,
    PlanTerms,
    expire_lines,
    unit,
)
from app.core.audit import Actor
from app.core.db import Database
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.models import LedgerAccount
from app.subscribers import lifecycle
from app.subscribers.models import Line
from plans.models import Plan

CUSTOMER_BATCH_SIZE = 200
TERMINATION_BATCH_SIZE = 200

_LINE = Line.__table__  # type: ignore[attr-defined]
_PLAN = Plan.__table__  # type: ignore[attr-defined]
_ACCOUNT = LedgerAccount.__table__  # type: ignore[attr-defined]
_MARK_UNPAID = (
    update(_LINE).where(_LINE.c.id == bindparam("line")).values(renewal_failed_at=bindparam("at"))
)


def suspend_unpaid(
    session: Session,
    failed: list[DueLine],
    *,
    terms: dict[int, PlanTerms],
    account_of: dict[tuple[int, str], int],
    balances: dict[int, int],
    actor: Actor,
) -> list[Notice]:
    """Suspend a batch's unpaid lines and mark when their renewal failed; returns their notices.

    `failed` are locked due lines in id order, each with its `failed_at`.
    Each is suspended through the lifecycle as of `failed_at` (a no-op for a
    line staff suspended already), then every `renewal_failed_at` is set with
    one statement. The notice is `suspension` for a line active until now,
    else `renewal_failed`; `balances` are the batch's, after its debits.
    """
    notices: list[Notice] = []
    # The lifecycle reads each line's plan; held here, the session loads each plan once.
    plans_used = [session.get(Plan, plan_id) for plan_id in {line.plan_id for line in failed}]
    for line in failed:
        assert line.failed_at is not None
        changed = line.status == "active"
        # Suspended as of the end of the unpaid period (a no-op for a staff suspension).
        lifecycle.suspend_line(
            session, line_id=line.id, reason=UNPAID_REASON, actor=actor, now=line.failed_at
        )
        plan = terms[line.next_plan_id or line.plan_id]
        balance = balances[account_of[(line.customer_id, plan.currency)]]
        notices.append(unpaid_notice(line, plan=plan, balance_minor=balance, suspended_now=changed))
    if failed:
        session.flush()
        session.connection().execute(
            _MARK_UNPAID, [{"line": line.id, "at": line.failed_at} for line in failed]
        )
        expire_lines(session, [line.id for line in failed])
    del plans_used
    return notices


def renew_suspended_lines(
    session: Session, *, customer_id: int, actor: Actor, now: datetime
) -> list[int]:
    """After a credit: renew and resume the customer's renewal-suspended lines.

    Only lines the renewal suspended (not staff) with auto-renew on; oldest
    suspension first, each new period starting at `now`, while the balance
    covers the next one (the first that it does not cover stops the rest, so
    a cheaper, younger line never jumps the queue). Locks the customer's
    account, then those lines: the order of every credit (which holds the
    account when it calls this), so the job and a credit never deadlock.
    Returns the ids of the lines resumed; a second call finds them active and
    does nothing.
    """
    lock_customer_accounts(session, customer_id)
    lines = session.exec(
        select(Line)
        .where(
            Line.customer_id == customer_id,
            Line.status == "suspended",
            col(Line.auto_renew).is_(True),
            col(Line.renewal_failed_at).is_not(None),
            col(Line.renewal_failed_at) == col(Line.status_changed_at),
        )
        .order_by(col(Line.renewal_failed_at), col(Line.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    resumed: list[int] = []
    horizon = exit_horizon(session)
    if horizon is not None and now >= horizon:
        return resumed  # service has ended at the market exit: nothing renews past it
    for line in lines:
        assert line.id is not None
        if renew_line(session, line, start=now, actor=actor, now=now, manual=False) is None:
            break
        resume_renewed_line(session, line, actor=actor, now=now)
        resumed.append(line.id)
    return resumed


def resume_covered_lines(target: Database | Session, *, now: datetime, actor: Actor) -> int:
    """Renew and resume the renewal-suspended lines their customer's balance covers now.

    For money that arrived without a credit's event. Customers are taken in
    id order, `CUSTOMER_BATCH_SIZE` per transaction of a `Database` (or all
    in the caller's session); returns the number of lines resumed.
    """
    total = 0
    after = 0
    while True:
        with unit(target) as session:
            customers = _customers_to_resume(session, after_id=after)
            resumed = sum(
                len(renew_suspended_lines(session, customer_id=c, actor=actor, now=now))
                for c in customers
            )
        total += resumed
        if len(customers) < CUSTOMER_BATCH_SIZE:
            break
        after = customers[-1]
    return total


def _customers_to_resume(session: Session, *, after_id: int) -> list[int]:
    """Customers with a renewal-suspended, auto-renewing line their balance now covers."""
    next_plan = func.coalesce(_LINE.c.next_plan_id, _LINE.c.plan_id)
    statement = (
        sa_select(_LINE.c.customer_id)
        .distinct()
        .select_from(
            _LINE.join(_PLAN, _PLAN.c.id == next_plan).join(
                _ACCOUNT,
                and_(
                    _ACCOUNT.c.customer_id == _LINE.c.customer_id,
                    _ACCOUNT.c.kind == CUSTOMER_PREPAID,
                    _ACCOUNT.c.currency == _PLAN.c.currency,
                ),
            )
        )
        .where(
            _LINE.c.customer_id > after_id,
            _LINE.c.status == "suspended",
            _LINE.c.auto_renew.is_(True),
            _LINE.c.renewal_failed_at == _LINE.c.status_changed_at,
            _ACCOUNT.c.balance_minor >= _PLAN.c.price_minor,
        )
        .order_by(_LINE.c.customer_id)
        .limit(CUSTOMER_BATCH_SIZE)
    )
    session.flush()
    return [row[0] for row in session.connection().execute(statement)]


def terminate_unpaid_lines(
    target: Database | Session,
    *,
    now: datetime,
    actor: Actor,
    quarantine_days: int,
    limit: int | None = None,
) -> int:
    """Terminate the lines unpaid and suspended for 90 days; returns how many.

    `TERMINATION_BATCH_SIZE` lines per transaction of a `Database` (or all in
    the caller's session), in id order, at most `limit`; lines another
    transaction holds are skipped (SKIP LOCKED), left for the next run.
    """
    terminated = 0
    after = 0
    while limit is None or terminated < limit:
        size = (
            TERMINATION_BATCH_SIZE
            if limit is None
            else min(TERMINATION_BATCH_SIZE, limit - terminated)
        )
        with unit(target) as session:
            ids = _terminate_batch(
                session,
                after_id=after,
                size=size,
                now=now,
                actor=actor,
                quarantine_days=quarantine_days,
            )
        terminated += len(ids)
        if len(ids) < size:
            break
        after = ids[-1]
    return terminated


def _terminate_batch(
    session: Session,
    *,
    after_id: int,
    size: int,
    now: datetime,
    actor: Actor,
    quarantine_days: int,
) -> list[int]:
    """Terminate up to `size` lines unpaid and suspended for 90 days; returns their ids."""
    cutoff = now - timedelta(days=UNPAID_DAYS_BEFORE_TERMINATION)
    statement = (
        sa_select(_LINE.c.id)
        .where(
            _LINE.c.id > after_id,
            _LINE.c.status == "suspended",
            _LINE.c.renewal_failed_at <= cutoff,
            _LINE.c.status_changed_at <= cutoff,
        )
        .order_by(_LINE.c.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    session.flush()
    ids = [row[0] for row in session.connection().execute(statement)]
    for line_id in ids:
        line = lifecycle.terminate_line(
            session,
            line_id=line_id,
            reason=TERMINATION_REASON,
            quarantine_days=quarantine_days,
            actor=actor,
            now=now,
        )
        notify(
            session,
            (line.customer_id, "termination", {"msisdn": line.msisdn}, f"termination:{line_id}"),
            now=now,
        )
    return ids
