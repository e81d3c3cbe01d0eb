"""One batch of due lines, decided and written set-based (the rules: app/charging/renewals.py).

A batch locks its due lines (`FOR UPDATE SKIP LOCKED` on PostgreSQL, id
order), then their customers' prepaid accounts (id order) with their
balances; reads the plans' terms and the renewals already in the ledger
with one query each; decides every line in the order of period ends, so a
customer's lines share the balance in time order and a line far behind
renews period after period while the money lasts; posts the debits with
one `post_entries`; and writes the periods, the line updates, the audit
records (one per renewal) and the notices with one multi-row statement
each. Only the unpaid lines go through the lifecycle line by line
(app/charging/unpaid_lines.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from app.charging.horizon import exit_horizon, renewal_terms_at
from app.charging.models import LinePeriod
from app.charging.renewal_notices import renewal_notices, write_notices
from app.charging.renewal_terms import (
    ENTRY_KIND,
    REVENUE_KIND,
    DueLine,
    PlanTerms,
    RenewalReport,
    expire_lines,
    renewal_key,
    utc_iso,
)
from app.charging.unpaid_lines import suspend_unpaid
from app.core.audit import Actor, AuditEntry, audit_row
from app.core.db import insert_rows
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.activity import plan_tag
from app.ledger.models import JournalEntry, LedgerAccount
from app.ledger.posting import BulkEntry, post_entries
from app.subscribers.models import Line
from plans.models import Plan

_LINE = Line.__table__  # type: ignore[attr-defined]
_PLAN = Plan.__table__  # type: ignore[attr-defined]
_PERIOD = LinePeriod.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
_ACCOUNT = LedgerAccount.__table__  # type: ignore[attr-defined]

# A suspended line whose renewal went unpaid waits for a credit or termination.
_DUE = (
    sa_select(
        _LINE.c.id,
        _LINE.c.customer_id,
        _LINE.c.msisdn,
        _LINE.c.status,
        _LINE.c.auto_renew,
        _LINE.c.plan_id,
        _LINE.c.next_plan_id,
        _LINE.c.period_end,
        _LINE.c.renewal_failed_at,
        _LINE.c.status_changed_at,
    )
    .where(
        _LINE.c.id > bindparam("after"),
        _LINE.c.period_end <= bindparam("now"),
        _LINE.c.status.in_(("active", "suspended")),
        or_(_LINE.c.status == "active", _LINE.c.renewal_failed_at.is_(None)),
    )
    .order_by(_LINE.c.id)
    .limit(bindparam("size"))
    .with_for_update(skip_locked=True)
)
_ENTRY = JournalEntry.__table__  # type: ignore[attr-defined]
_FIND_ENTRIES = {
    # One array parameter on PostgreSQL: an IN list of a thousand keys costs more to
    # send and plan than the index lookups themselves.
    "postgresql": sa_select(_ENTRY.c.idempotency_key, _ENTRY.c.id).where(
        _ENTRY.c.idempotency_key == func.any(bindparam("keys", type_=ARRAY(String)))
    ),
    "sqlite": sa_select(_ENTRY.c.idempotency_key, _ENTRY.c.id).where(
        _ENTRY.c.idempotency_key.in_(bindparam("keys", expanding=True))
    ),
}
_LOCK_BALANCES = (
    sa_select(_ACCOUNT.c.id, _ACCOUNT.c.balance_minor)
    .where(_ACCOUNT.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_ACCOUNT.c.id)
    .with_for_update()
)
_UPDATE_RENEWED = (
    update(_LINE)
    .where(_LINE.c.id == bindparam("line"))
    .values(
        plan_id=bindparam("plan"),
        period_end=bindparam("end"),
        next_plan_id=None,
        renewal_failed_at=None,
        period_gap_at=func.coalesce(_LINE.c.period_gap_at, bindparam("gap")),
    )
)


@dataclass
class _Accounts:
    """A batch's prepaid accounts, locked, and their balances as the batch spends them."""

    account_of: dict[tuple[int, str], int]  # (customer id, currency) -> account id
    revenue_of: dict[str, int]  # currency -> plan revenue account id
    balances: dict[int, int]  # account id -> balance


def renew_batch(
    session: Session,
    *,
    after_id: int,
    size: int,
    now: datetime,
    actor: Actor,
    terms: dict[int, PlanTerms],
) -> tuple[RenewalReport, int]:
    """Decide and write one batch of due lines; returns its counts and its last line id.

    Locks, in this order: the due lines (id order, SKIP LOCKED), then their
    customers' prepaid accounts (id order). `terms` caches the plans' terms
    across the batches of one run.
    """
    report = RenewalReport(now=now)
    due = _take_due(session, after_id=after_id, size=size, now=now, terms=terms)
    if not due:
        return report, after_id
    report.lines_seen = len(due)
    accounts = _lock_accounts(session, due.values(), terms=terms)
    paid_before = _renewals_posted(session, due.values())
    entries = _decide(
        due,
        terms=terms,
        accounts=accounts,
        paid_before=paid_before,
        now=now,
        horizon=exit_horizon(session),
    )
    entry_ids = _post_debits(session, entries, paid_before=paid_before, actor=actor, now=now)

    renewed = [line for line in due.values() if line.periods]
    report.renewed = len(renewed)
    report.periods_opened = sum(len(line.periods) for line in renewed)
    if renewed:
        _write_renewals(session, renewed, entry_ids=entry_ids, terms=terms, actor=actor, now=now)
    notices = renewal_notices(
        renewed, account_of=accounts.account_of, balances=accounts.balances, terms=terms
    )

    failed = sorted((line for line in due.values() if line.failed_at), key=lambda d: d.id)
    report.unpaid = len(failed)
    report.suspended = sum(line.status == "active" for line in failed)
    notices += suspend_unpaid(
        session,
        failed,
        terms=terms,
        account_of=accounts.account_of,
        balances=accounts.balances,
        actor=actor,
    )
    write_notices(session, notices, now=now)
    return report, max(due)


def _take_due(
    session: Session, *, after_id: int, size: int, now: datetime, terms: dict[int, PlanTerms]
) -> dict[int, DueLine]:
    """Lock up to `size` due lines after `after_id` (id order, SKIP LOCKED), by id; loads
    the terms of their plans and pending plans into `terms`."""
    session.flush()
    rows = session.connection().execute(_DUE, {"after": after_id, "now": now, "size": size}).all()
    if not rows:
        return {}
    _load_terms(
        session,
        terms,
        {r.plan_id for r in rows} | {r.next_plan_id for r in rows if r.next_plan_id is not None},
    )
    return {
        r.id: DueLine(
            id=r.id,
            customer_id=r.customer_id,
            msisdn=r.msisdn,
            status=r.status,
            auto_renew=r.auto_renew,
            status_changed_at=r.status_changed_at,
            plan_id=r.plan_id,
            next_plan_id=r.next_plan_id,
            end=r.period_end,
            restart=r.renewal_failed_at is not None,
        )
        for r in rows
    }


def _load_terms(session: Session, cache: dict[int, PlanTerms], ids: set[int]) -> None:
    """Read the terms of the plans in `ids` not cached yet, in one query."""
    wanted = sorted(ids - cache.keys())
    if not wanted:
        return
    rows = session.connection().execute(
        sa_select(
            _PLAN.c.id,
            _PLAN.c.code,
            _PLAN.c.currency,
            _PLAN.c.price_minor,
            _PLAN.c.validity_days,
            _PLAN.c.data_mb,
            _PLAN.c.voice_min,
            _PLAN.c.sms,
        ).where(_PLAN.c.id.in_(wanted))
    )
    for row in rows:
        cache[row.id] = PlanTerms(
            id=row.id,
            code=row.code,
            currency=row.currency,
            price_minor=row.price_minor,
            length=timedelta(hours=24 * row.validity_days),
            data_kb=row.data_mb * 1024,
            voice_s=row.voice_min * 60,
            sms=row.sms,
        )


def _lock_accounts(
    session: Session, due: Iterable[DueLine], *, terms: dict[int, PlanTerms]
) -> _Accounts:
    """One prepaid account per (customer, currency) met in the batch, locked in id order
    with its balance, and the plan revenue account of each currency."""
    wanted: dict[str, set[int]] = {}
    for line in due:
        for plan_id in (line.plan_id, line.next_plan_id):
            if plan_id is not None:
                wanted.setdefault(terms[plan_id].currency, set()).add(line.customer_id)
    account_of: dict[tuple[int, str], int] = {}
    revenue_of: dict[str, int] = {}
    for currency, customers in wanted.items():
        found = customer_account_ids(session, customer_ids=sorted(customers), currency=currency)
        account_of.update(((c, currency), a) for c, a in found.items())
        revenue_of[currency] = system_account_id(session, kind=REVENUE_KIND, currency=currency)
    balances = {
        row.id: row.balance_minor
        for row in session.connection().execute(
            _LOCK_BALANCES, {"ids": sorted(set(account_of.values()))}
        )
    }
    return _Accounts(account_of=account_of, revenue_of=revenue_of, balances=balances)


def _renewals_posted(session: Session, due: Iterable[DueLine]) -> dict[str, int]:
    """Idempotency key -> entry id of the batch's renewals already in the ledger.

    Such a renewal (posted by an earlier attempt that did not open its
    period) is paid: it opens the period and debits nothing.
    """
    keys = [renewal_key(line.id, line.end) for line in due]
    return {
        row.idempotency_key: row.id
        for row in session.connection().execute(
            _FIND_ENTRIES[session.get_bind().dialect.name], {"keys": keys}
        )
    }


def _decide(
    due: dict[int, DueLine],
    *,
    terms: dict[int, PlanTerms],
    accounts: _Accounts,
    paid_before: dict[str, int],
    now: datetime,
    horizon: datetime | None = None,
) -> list[BulkEntry]:
    """Renew or fail each due line, period after period, in the order of period ends.

    A customer's lines share the balance in time order: `accounts.balances`
    is spent as each period is paid. Each renewed period is appended to its
    line's `periods`; an unpaid line gets its `failed_at`. At an announced
    market exit (`horizon`) a period that would run past it is shortened
    and pro-rated, and none starts at or after it (app/charging/horizon.py).
    Returns the debits to post (none for a free plan or a renewal paid before).
    """
    entries: list[BulkEntry] = []
    queue = [(line.end, line.id) for line in due.values()]
    heapq.heapify(queue)
    while queue:
        end, line_id = heapq.heappop(queue)
        line = due[line_id]
        plan = terms[line.next_plan_id or line.plan_id]
        account = accounts.account_of[(line.customer_id, plan.currency)]
        key = renewal_key(line.id, end)
        paid = key in paid_before
        start = now if line.restart else end
        period = renewal_terms_at(
            price_minor=plan.price_minor,
            validity_days=plan.length.days,
            start=start,
            horizon=horizon,
        )
        if period is None:
            continue  # service ends at the market exit: no renewal past it, and no failure
        price, period_end = period
        if not paid and (not line.auto_renew or accounts.balances[account] < price):
            line.failed_at = _unpaid_as_of(line, end=end, now=now)
            continue
        if not paid and price:
            accounts.balances[account] -= price
            entries.append(
                BulkEntry(
                    kind=ENTRY_KIND,
                    idempotency_key=key,
                    postings=((account, -price), (accounts.revenue_of[plan.currency], price)),
                    memo=f"renewal of {line.msisdn} on {plan.code}",
                    tag=plan_tag(plan.code),
                )
            )
        _add_period(
            line,
            plan,
            key=key if paid or price else None,
            start=start,
            end=period_end,
            price_minor=price,
        )
        if line.end <= now:
            heapq.heappush(queue, (line.end, line.id))
    return entries


def _unpaid_as_of(line: DueLine, *, end: datetime, now: datetime) -> datetime:
    """When an unpaid line's renewal failed: `now` for a line resumed while unpaid (its
    period restarts), the period end for a suspended line, else the later of the period
    end and the line's last status change."""
    if line.restart:
        return now
    if line.status == "suspended":
        return end
    return max(end, line.status_changed_at)


def _add_period(
    line: DueLine,
    plan: PlanTerms,
    *,
    key: str | None,
    start: datetime,
    end: datetime,
    price_minor: int,
) -> None:
    """Record the period `line` renews into from `start` to `end`, and move the line to it."""
    line.periods.append(
        {
            "key": key,
            "plan": plan,
            "start": start,
            "end": end,
            "price_minor": price_minor,
            "switched_from": line.plan_id if line.next_plan_id is not None else None,
        }
    )
    if start != line.end and line.gap_at is None:
        line.gap_at = start
    line.plan_id, line.next_plan_id, line.restart = plan.id, None, False
    line.end = end


def _post_debits(
    session: Session,
    entries: list[BulkEntry],
    *,
    paid_before: dict[str, int],
    actor: Actor,
    now: datetime,
) -> dict[str, int]:
    """Post the batch's debits in one call; returns the entry id of every renewal key."""
    result = post_entries(session, entries=entries, actor=actor, now=now)
    if result.refused:
        # The balances were locked and read above, so this is a bug, not a customer's problem.
        raise RuntimeError(f"renewal debits refused against locked balances: {result.refused}")
    return {**paid_before, **result.replayed, **result.posted}


def _write_renewals(
    session: Session,
    renewed: list[DueLine],
    *,
    entry_ids: dict[str, int],
    terms: dict[int, PlanTerms],
    actor: Actor,
    now: datetime,
) -> None:
    """Write the renewed lines' periods, line updates and audit records, one statement each."""
    period_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    for line in renewed:
        for period in line.periods:
            entry_id = entry_ids[period["key"]] if period["key"] else None
            period_rows.append(_period_row(line, period, entry_id=entry_id, now=now))
            audit_rows.extend(
                _renewal_audit_rows(
                    line, period, entry_id=entry_id, terms=terms, actor=actor, now=now
                )
            )
    insert_rows(session, _PERIOD, period_rows)
    _update_renewed(session, renewed)
    insert_rows(session, _AUDIT, audit_rows)
    expire_lines(session, [line.id for line in renewed])


def _period_row(
    line: DueLine, period: dict[str, Any], *, entry_id: int | None, now: datetime
) -> dict[str, Any]:
    """The line_period row of a renewed period, with the plan's allowances unused."""
    plan = period["plan"]
    return {
        "line_id": line.id,
        "plan_id": plan.id,
        "start": period["start"],
        "end": period["end"],
        "price_minor": period["price_minor"],
        "data_kb": plan.data_kb,
        "voice_s": plan.voice_s,
        "sms": plan.sms,
        "data_kb_used": 0,
        "voice_s_used": 0,
        "sms_used": 0,
        "entry_id": entry_id,
        "created_at": now,
    }


def _renewal_audit_rows(
    line: DueLine,
    period: dict[str, Any],
    *,
    entry_id: int | None,
    terms: dict[int, PlanTerms],
    actor: Actor,
    now: datetime,
) -> list[dict[str, Any]]:
    """`line.plan_switch` when the period applied a pending plan change, then `line.renew`."""
    plan = period["plan"]
    rows: list[dict[str, Any]] = []
    if period["switched_from"] is not None:
        rows.append(
            _audit_row(
                actor,
                "line.plan_switch",
                line.id,
                now,
                {
                    "msisdn": line.msisdn,
                    "from_plan": terms[period["switched_from"]].code,
                    "from_plan_id": period["switched_from"],
                    "to_plan": plan.code,
                    "to_plan_id": plan.id,
                },
            )
        )
    rows.append(
        _audit_row(
            actor,
            "line.renew",
            line.id,
            now,
            {
                "msisdn": line.msisdn,
                "plan": plan.code,
                "price_minor": period["price_minor"],
                "period_start": utc_iso(period["start"]),
                "period_end": utc_iso(period["end"]),
                "entry_id": entry_id,
            },
        )
    )
    return rows


def _audit_row(
    actor: Actor, action: str, line_id: int, now: datetime, details: dict[str, Any]
) -> dict[str, Any]:
    return audit_row(actor, action, now, target_type="line", target_id=line_id, details=details)


def _update_renewed(session: Session, renewed: list[DueLine]) -> None:
    """Move each renewed line to its last period: plan, period_end, the first gap
    between its periods if it is new; clear the pending plan change and the failed
    renewal."""
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(
            _UPDATE_RENEWED,
            [
                {"line": line.id, "plan": line.plan_id, "end": line.end, "gap": line.gap_at}
                for line in renewed
            ],
        )
        return
    session.connection().exec_driver_sql(
        "UPDATE line SET plan_id = v.plan_id, period_end = v.period_end,"
        " next_plan_id = NULL, renewal_failed_at = NULL,"
        " period_gap_at = coalesce(line.period_gap_at, v.gap_at)"
        " FROM unnest(%b::bigint[], %b::bigint[], %b::timestamptz[], %b::timestamptz[])"
        " AS v(id, plan_id, period_end, gap_at)"
        " WHERE line.id = v.id",
        (
            [line.id for line in renewed],
            [line.plan_id for line in renewed],
            [line.end for line in renewed],
            [line.gap_at for line in renewed],
        ),
    )
