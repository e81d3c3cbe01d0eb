"""Renewals at period end (DESIGN §9).

Rules:

* **Due.** A line `active` or `suspended` whose `period_end <= now` is due,
  except a suspended line whose renewal already went unpaid
  (`renewal_failed_at` set): it waits for a credit or for termination.
* **Renewal.** The next period is on `next_plan_id` when one is set (then
  cleared, and the switch audited), else on the line's plan; a retired plan
  keeps its terms. With auto-renew on and the prepaid balance covering the
  price, the price is debited (journal entry kind `renewal`, to
  `revenue_plans`, idempotency key `renewal:<line id>:<old period end ISO>`,
  so a rerun never posts a period twice) and the next period opens exactly
  at the old end: `end = start + validity_days × 24 h`.
* **Catch-up.** While the new end is still not after `now` the line renews
  again, each period its own entry, so a run far ahead (`--now`) renews
  period after period while the money lasts. The lines of one batch are
  renewed in the order of their period ends, so two lines of one customer
  share the balance in time order.
* **Unpaid.** Otherwise (auto-renew off, or the balance short) the line is
  suspended through the lifecycle (reason "renewal unpaid", provisioning
  `suspend`) as of the end of its last paid period, and `renewal_failed_at`
  records that instant. A line a member of staff resumed while unpaid is
  due again; its next period, paid or not, starts at `now`, not at the old
  end: the customer does not pay for the time the line was barred.
* **Suspended by staff.** A line suspended by staff for another reason
  (fraud, a lost phone) keeps renewing while paid: a suspension bars
  service but the number and its fees go on. When such a line's renewal
  goes unpaid it is marked like the others but stays the staff's
  suspension: a credit does not lift it. The suspension is the renewal's
  own exactly while `renewal_failed_at == status_changed_at` (every staff
  suspend or resume moves `status_changed_at`).
* **Credit.** A credit during a renewal suspension renews and resumes the
  line (`renew_suspended_lines`, called by every service that credits a
  customer, in the same transaction): the new period starts at the credit,
  oldest suspension first, while the balance covers; lines with auto-renew
  off wait for a manual `renew_now`. The job also resumes any such line
  whose customer's balance covers it now, in case money arrived another way.
* **Termination.** A suspended line whose renewal has been unpaid for
  `UNPAID_DAYS_BEFORE_TERMINATION` (90) days — its failed renewal and its
  current suspension both at least that old — is terminated and its number
  quarantined for `NUMBER_QUARANTINE_DAYS`. A line suspended by staff with
  paid periods is never terminated by this job.
* **Notices** (outbox, one per period through their dedupe keys):
  `renewal` (the latest period renewed in a run), `suspension` (renewal
  unpaid), `renewal_failed` (unpaid while already suspended by staff),
  `resumed`, `termination`, and `low_balance` after a renewal when the
  balance will not cover the next one.

Speed (bench/bench_renewals.py): due lines are taken in batches, one
transaction each, `FOR UPDATE SKIP LOCKED` on PostgreSQL in id order (so two
runs never take the same line and never wait for each other); plans,
accounts and balances are read set-based, the entries posted by
`post_entries`, and periods, line updates, audit records (one per renewal)
and notices written with one multi-row statement each. Only the rarer
suspensions and terminations go through the lifecycle line by line.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, bindparam, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.auth.models import SubscriberAccount
from app.care.models import Notification
from app.care.notifications import notify_customer
from app.charging.errors import RenewalRefused
from app.charging.models import LinePeriod
from app.charging.periods import latest_period, open_period
from app.core.audit import Actor, AuditEntry, record_audit
from app.core.db import Database, insert_rows, lock_by_id
from app.core.errors import N_
from app.core.money import format_plain
from app.ledger.accounts import CUSTOMER_PREPAID, customer_account_ids, system_account_id
from app.ledger.balances import customer_balance
from app.ledger.errors import InsufficientBalance
from app.ledger.models import JournalEntry, LedgerAccount
from app.ledger.posting import BulkEntry, post_entries
from app.subscribers import lifecycle
from app.subscribers.errors import LineNotFound
from app.subscribers.models import Customer, Line
from plans.models import MAX_VALIDITY_DAYS, Plan

__all__ = [
    "ENTRY_KIND",
    "RenewalReport",
    "renew_now",
    "renew_suspended_lines",
    "renewal_key",
    "run_renewals",
]

ENTRY_KIND = "renewal"
REVENUE_KIND = "revenue_plans"
UNPAID_REASON = "renewal unpaid"
RESUME_REASON = "renewal paid"
TERMINATION_REASON = "renewal unpaid for 90 days"
UNPAID_DAYS_BEFORE_TERMINATION = 90
DEFAULT_BATCH_SIZE = 1000
# Parallel batch takers on PostgreSQL (the CLI and the job): the work is mostly
# the server's, so a second transaction in flight uses the time one waits.
DEFAULT_WORKERS = 2
CUSTOMER_BATCH_SIZE = 200
TERMINATION_BATCH_SIZE = 200

_LINE = Line.__table__  # type: ignore[attr-defined]
_PLAN = Plan.__table__  # type: ignore[attr-defined]
_PERIOD = LinePeriod.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
_NOTICE = Notification.__table__  # type: ignore[attr-defined]
_ACCOUNT = LedgerAccount.__table__  # type: ignore[attr-defined]
_CUSTOMER = Customer.__table__  # type: ignore[attr-defined]
_SUBSCRIBER = SubscriberAccount.__table__  # type: ignore[attr-defined]

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
    )
)
_MARK_UNPAID = (
    update(_LINE).where(_LINE.c.id == bindparam("line")).values(renewal_failed_at=bindparam("at"))
)
_CUSTOMERS = (
    sa_select(
        _CUSTOMER.c.id,
        _CUSTOMER.c.email,
        _CUSTOMER.c.subscriber_account_id,
        func.coalesce(_SUBSCRIBER.c.locale, "zh_Hans").label("locale"),
    )
    .select_from(
        _CUSTOMER.outerjoin(_SUBSCRIBER, _SUBSCRIBER.c.id == _CUSTOMER.c.subscriber_account_id)
    )
    .where(_CUSTOMER.c.id.in_(bindparam("ids", expanding=True)))
)


def renewal_key(line_id: int, period_end: datetime) -> str:
    """The idempotency key of the renewal that follows the period ending at `period_end`."""
    return f"renewal:{line_id}:{_iso(period_end)}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class _Terms:
    """What a period on a plan costs and holds (a plan version never changes)."""

    id: int
    code: str
    currency: str
    price_minor: int
    length: timedelta
    data_kb: int
    voice_s: int
    sms: int


@dataclass
class RenewalReport:
    """What a run did; `as_dict` is the CLI's JSON."""

    now: datetime
    lines_seen: int = 0
    renewed: int = 0
    periods_opened: int = 0
    suspended: int = 0
    unpaid: int = 0
    resumed: int = 0
    terminated: int = 0

    def add(self, other: RenewalReport) -> None:
        for name in ("lines_seen", "renewed", "periods_opened", "suspended", "unpaid"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": _iso(self.now),
            "lines_seen": self.lines_seen,
            "renewed": self.renewed,
            "periods_opened": self.periods_opened,
            "suspended": self.suspended,
            "unpaid": self.unpaid,
            "resumed": self.resumed,
            "terminated": self.terminated,
        }


@dataclass
class _Due:
    """A due line while its batch is decided."""

    id: int
    customer_id: int
    msisdn: str
    status: str
    auto_renew: bool
    status_changed_at: datetime
    plan_id: int
    next_plan_id: int | None
    end: datetime
    restart: bool
    periods: list[dict[str, Any]] = field(default_factory=list)
    failed_at: datetime | None = None


@contextmanager
def _unit(target: Database | Session) -> Iterator[Session]:
    """A transaction of the Database, or the caller's session as it is."""
    if isinstance(target, Session):
        yield target
        return
    with target.transaction() as session:
        yield session


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _write_rows(
    session: Session, table: Any, rows: list[dict[str, Any]], *, dedupe: str | None = None
) -> None:
    insert_rows(session, table, rows, dedupe=dedupe)


def _update_renewed(session: Session, renewed: list[_Due]) -> None:
    """Move each renewed line to its last period: plan, period_end; clear the pending
    plan change and the failed renewal."""
    if not _is_postgres(session):
        session.connection().execute(
            _UPDATE_RENEWED,
            [{"line": line.id, "plan": line.plan_id, "end": line.end} for line in renewed],
        )
        return
    session.connection().exec_driver_sql(
        "UPDATE line SET plan_id = v.plan_id, period_end = v.period_end,"
        " next_plan_id = NULL, renewal_failed_at = NULL"
        " FROM unnest(%b::bigint[], %b::bigint[], %b::timestamptz[]) AS v(id, plan_id, period_end)"
        " WHERE line.id = v.id",
        (
            [line.id for line in renewed],
            [line.plan_id for line in renewed],
            [line.end for line in renewed],
        ),
    )


def _load_terms(session: Session, cache: dict[int, _Terms], ids: set[int]) -> None:
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
        cache[row.id] = _Terms(
            id=row.id,
            code=row.code,
            currency=row.currency,
            price_minor=row.price_minor,
            length=timedelta(hours=24 * row.validity_days),
            data_kb=row.data_mb * 1024,
            voice_s=row.voice_min * 60,
            sms=row.sms,
        )


def _terms_of(plan: Plan) -> _Terms:
    assert plan.id is not None
    return _Terms(
        id=plan.id,
        code=plan.code,
        currency=plan.currency,
        price_minor=plan.price_minor,
        length=timedelta(hours=24 * plan.validity_days),
        data_kb=plan.data_mb * 1024,
        voice_s=plan.voice_min * 60,
        sms=plan.sms,
    )


# -- the job ----------------------------------------------------------------------------


def run_renewals(
    target: Database | Session,
    *,
    now: datetime,
    quarantine_days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    workers: int = 1,
    actor: Actor | None = None,
) -> RenewalReport:
    """Renew, suspend, resume and terminate every line whose time has come (module rules).

    With a `Database`, each batch of `batch_size` due lines is its own
    transaction (and so is each batch of resumptions and terminations);
    with a `Session`, everything happens in the caller's transaction.
    `limit` caps the due lines (and separately the terminations) handled in
    this run. Lines another transaction holds are skipped, left for the next
    run. A rerun with the same `now` finds nothing to do. On PostgreSQL,
    `workers` threads take batches at once (each its own connection and
    transactions; not with `limit`, nor on a Database bound to one
    connection); the resumptions and terminations follow in one thread.
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now")
    if batch_size < 1 or workers < 1 or (limit is not None and limit < 1):
        raise ValueError("batch_size, workers and limit must be positive")
    actor = actor or Actor.system("renewals")
    report = RenewalReport(now=now)
    parallel = (
        isinstance(target, Database)
        and not target.is_sqlite
        and not target.is_bound
        and limit is None
        and workers > 1
    )
    if parallel:
        with ThreadPoolExecutor(workers, thread_name_prefix="renewals") as pool:
            for part in pool.map(
                lambda _: _renew_due(target, now=now, actor=actor, batch_size=batch_size),
                range(workers),
            ):
                report.add(part)
    else:
        report.add(_renew_due(target, now=now, actor=actor, batch_size=batch_size, limit=limit))

    after = 0
    while True:
        with _unit(target) as session:
            customers = _customers_to_resume(session, after_id=after)
            resumed = sum(
                len(renew_suspended_lines(session, customer_id=c, actor=actor, now=now))
                for c in customers
            )
        report.resumed += resumed
        if len(customers) < CUSTOMER_BATCH_SIZE:
            break
        after = customers[-1]

    after = 0
    while limit is None or report.terminated < limit:
        size = (
            TERMINATION_BATCH_SIZE
            if limit is None
            else min(TERMINATION_BATCH_SIZE, limit - report.terminated)
        )
        with _unit(target) as session:
            ids = _terminate_batch(
                session,
                after_id=after,
                size=size,
                now=now,
                actor=actor,
                quarantine_days=quarantine_days,
            )
        report.terminated += len(ids)
        if len(ids) < size:
            break
        after = ids[-1]
    return report


def _renew_due(
    target: Database | Session,
    *,
    now: datetime,
    actor: Actor,
    batch_size: int,
    limit: int | None = None,
) -> RenewalReport:
    """Renew due lines batch after batch (id order) until none is left or `limit` is reached.

    Several of these may run at once on PostgreSQL: each takes the lines no
    other holds (SKIP LOCKED), and a line it renews or suspends is no longer
    due, so each line is handled once.
    """
    report = RenewalReport(now=now)
    terms: dict[int, _Terms] = {}
    after = 0
    while limit is None or report.lines_seen < limit:
        size = batch_size if limit is None else min(batch_size, limit - report.lines_seen)
        with _unit(target) as session:
            batch, last_id = _renew_batch(
                session, after_id=after, size=size, now=now, actor=actor, terms=terms
            )
        report.add(batch)
        if batch.lines_seen < size:
            break
        after = last_id
    return report


def _renew_batch(
    session: Session,
    *,
    after_id: int,
    size: int,
    now: datetime,
    actor: Actor,
    terms: dict[int, _Terms],
) -> tuple[RenewalReport, int]:
    """Decide and write one batch of due lines; returns its counts and its last line id."""
    report = RenewalReport(now=now)
    session.flush()
    connection = session.connection()
    rows = connection.execute(_DUE, {"after": after_id, "now": now, "size": size}).all()
    if not rows:
        return report, after_id
    report.lines_seen = len(rows)
    _load_terms(
        session,
        terms,
        {r.plan_id for r in rows} | {r.next_plan_id for r in rows if r.next_plan_id is not None},
    )
    due = {
        r.id: _Due(
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

    # Accounts: one per (customer, currency) met in the batch, locked in id order.
    wanted: dict[str, set[int]] = {}
    for line in due.values():
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
        for row in connection.execute(_LOCK_BALANCES, {"ids": sorted(set(account_of.values()))})
    }

    # A renewal whose entry is already in the ledger (posted by an earlier attempt
    # that did not open its period) is paid: it opens the period and debits nothing.
    keys = [renewal_key(line.id, line.end) for line in due.values()]
    paid_before = {
        row.idempotency_key: row.id
        for row in connection.execute(
            _FIND_ENTRIES[session.get_bind().dialect.name], {"keys": keys}
        )
    }

    # Decide in the order of period ends: a customer's lines share the balance in time order.
    entries: list[BulkEntry] = []
    queue = [(line.end, line.id) for line in due.values()]
    heapq.heapify(queue)
    while queue:
        end, line_id = heapq.heappop(queue)
        line = due[line_id]
        plan = terms[line.next_plan_id or line.plan_id]
        account = account_of[(line.customer_id, plan.currency)]
        key = renewal_key(line.id, end)
        paid = key in paid_before
        if not paid and (not line.auto_renew or balances[account] < plan.price_minor):
            if line.restart:
                line.failed_at = now
            elif line.status == "suspended":
                line.failed_at = end
            else:
                line.failed_at = max(end, line.status_changed_at)
            continue
        start = now if line.restart else end
        if not paid and plan.price_minor:
            balances[account] -= plan.price_minor
            entries.append(
                BulkEntry(
                    kind=ENTRY_KIND,
                    idempotency_key=key,
                    postings=(
                        (account, -plan.price_minor),
                        (revenue_of[plan.currency], plan.price_minor),
                    ),
                    memo=f"renewal of {line.msisdn} on {plan.code}",
                )
            )
        line.periods.append(
            {
                "key": key if paid or plan.price_minor else None,
                "plan": plan,
                "start": start,
                "end": start + plan.length,
                "switched_from": line.plan_id if line.next_plan_id is not None else None,
            }
        )
        line.plan_id, line.next_plan_id, line.restart = plan.id, None, False
        line.end = start + plan.length
        if line.end <= now:
            heapq.heappush(queue, (line.end, line.id))

    result = post_entries(session, entries=entries, actor=actor, now=now)
    if result.refused:
        # The balances were locked and read above, so this is a bug, not a customer's problem.
        raise RuntimeError(f"renewal debits refused against locked balances: {result.refused}")
    entry_ids = {**paid_before, **result.replayed, **result.posted}

    renewed = [line for line in due.values() if line.periods]
    report.renewed = len(renewed)
    report.periods_opened = sum(len(line.periods) for line in renewed)
    period_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    for line in renewed:
        for period in line.periods:
            plan = period["plan"]
            entry_id = entry_ids[period["key"]] if period["key"] else None
            period_rows.append(
                {
                    "line_id": line.id,
                    "plan_id": plan.id,
                    "start": period["start"],
                    "end": period["end"],
                    "price_minor": plan.price_minor,
                    "data_kb": plan.data_kb,
                    "voice_s": plan.voice_s,
                    "sms": plan.sms,
                    "data_kb_used": 0,
                    "voice_s_used": 0,
                    "sms_used": 0,
                    "entry_id": entry_id,
                    "created_at": now,
                }
            )
            if period["switched_from"] is not None:
                audit_rows.append(
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
            audit_rows.append(
                _audit_row(
                    actor,
                    "line.renew",
                    line.id,
                    now,
                    {
                        "msisdn": line.msisdn,
                        "plan": plan.code,
                        "price_minor": plan.price_minor,
                        "period_start": _iso(period["start"]),
                        "period_end": _iso(period["end"]),
                        "entry_id": entry_id,
                    },
                )
            )
    if renewed:
        _write_rows(session, _PERIOD, period_rows)
        _update_renewed(session, renewed)
        _write_rows(session, _AUDIT, audit_rows)
        _expire_lines(session, [line.id for line in renewed])

    notices = _renewal_notices(
        session, renewed, account_of=account_of, balances=balances, terms=terms, now=now
    )
    failed = sorted((line for line in due.values() if line.failed_at), key=lambda d: d.id)
    # The lifecycle reads each line's plan; held here, the session loads each plan once.
    plans_used = [session.get(Plan, plan_id) for plan_id in {line.plan_id for line in failed}]
    for line in failed:
        assert line.failed_at is not None
        changed = line.status == "active"
        # Suspended as of the end of the unpaid period (a no-op for a staff suspension).
        lifecycle.suspend_line(
            session, line_id=line.id, reason=UNPAID_REASON, actor=actor, now=line.failed_at
        )
        report.unpaid += 1
        report.suspended += changed
        plan = terms[line.next_plan_id or line.plan_id]
        balance = balances[account_of[(line.customer_id, plan.currency)]]
        data = {
            "msisdn": line.msisdn,
            "plan": plan.code,
            "amount_minor": plan.price_minor,
            "currency": plan.currency,
            "balance_minor": balance,
            "reason": "insufficient_balance" if line.auto_renew else "auto_renew_off",
        }
        kind = "suspension" if changed else "renewal_failed"
        notices.append((line.customer_id, kind, data, f"{kind}:{line.id}:{_iso(line.end)}"))
    if failed:
        session.flush()
        connection.execute(
            _MARK_UNPAID, [{"line": line.id, "at": line.failed_at} for line in failed]
        )
        _expire_lines(session, [line.id for line in failed])
    del plans_used
    _write_notices(session, notices, now=now)
    return report, rows[-1].id


def _expire_lines(session: Session, line_ids: list[int]) -> None:
    """Line objects the session holds read their rows afresh after a Core UPDATE."""
    for line_id in line_ids:
        loaded = session.identity_map.get(session.identity_key(Line, line_id))
        if loaded is not None:
            session.expire(loaded)


def _audit_row(
    actor: Actor, action: str, line_id: int, now: datetime, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "at": now,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "target_type": "line",
        "target_id": str(line_id),
        "details": details,
        "ip": None,
    }


def _renewal_notices(
    session: Session,
    renewed: list[_Due],
    *,
    account_of: dict[tuple[int, str], int],
    balances: dict[int, int],
    terms: dict[int, _Terms],
    now: datetime,
) -> list[tuple[int, str, dict[str, Any], str]]:
    """(customer id, kind, data, dedupe key): the latest renewal of each line, and a
    low-balance notice when the balance after the batch will not cover the next one."""
    notices: list[tuple[int, str, dict[str, Any], str]] = []
    for line in renewed:
        last = line.periods[-1]
        plan = last["plan"]
        notices.append(
            (
                line.customer_id,
                "renewal",
                {
                    "msisdn": line.msisdn,
                    "plan": plan.code,
                    "amount_minor": plan.price_minor,
                    "currency": plan.currency,
                    "period_start": _iso(last["start"]),
                    "period_end": _iso(last["end"]),
                    "periods": len(line.periods),
                },
                f"renewal:{line.id}:{_iso(last['start'])}",
            )
        )
        following = terms[line.plan_id]
        balance = balances[account_of[(line.customer_id, following.currency)]]
        if balance < following.price_minor:
            notices.append(
                (
                    line.customer_id,
                    "low_balance",
                    {
                        "msisdn": line.msisdn,
                        "balance_minor": balance,
                        "currency": following.currency,
                        "next_renewal_minor": following.price_minor,
                        "period_end": _iso(last["end"]),
                    },
                    f"low_balance:{line.id}:{_iso(last['end'])}",
                )
            )
    return notices


def _write_notices(
    session: Session, notices: list[tuple[int, str, dict[str, Any], str]], *, now: datetime
) -> None:
    """Insert notices to customers with an e-mail, one row per dedupe key, in one statement."""
    if not notices:
        return
    connection = session.connection()
    customers = {
        row.id: row
        for row in connection.execute(
            _CUSTOMERS, {"ids": sorted({customer for customer, *_ in notices})}
        )
    }
    rows = [
        {
            "customer_id": customer_id,
            "account_id": customers[customer_id].subscriber_account_id,
            "channel": "email",
            "recipient": customers[customer_id].email,
            "kind": kind,
            "locale": customers[customer_id].locale,
            "data": data,
            "subject": "",
            "body": "",
            "dedupe_key": key,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
        }
        for customer_id, kind, data, key in notices
        if customers[customer_id].email
    ]
    _write_rows(session, _NOTICE, rows, dedupe="dedupe_key")


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
        _notify(
            session,
            line.customer_id,
            kind="termination",
            data={"msisdn": line.msisdn},
            key=f"termination:{line_id}",
            now=now,
        )
    return ids


# -- one line at a time: a credit, a manual renewal ---------------------------------------


def _notify(
    session: Session,
    customer_id: int,
    *,
    kind: str,
    data: dict[str, Any],
    key: str,
    now: datetime,
) -> None:
    customer = session.get(Customer, customer_id)
    if customer is None:
        return
    account = (
        session.get(SubscriberAccount, customer.subscriber_account_id)
        if customer.subscriber_account_id is not None
        else None
    )
    notify_customer(
        session,
        customer,
        kind=kind,
        now=now,
        data=data,
        dedupe_key=key,
        locale=account.locale if account is not None else "zh_Hans",
    )


def _renew_one(
    session: Session, line: Line, *, start: datetime, actor: Actor, now: datetime, manual: bool
) -> LinePeriod | None:
    """Debit and open one period of a locked line from `start`; None when the balance is short.

    Applies and clears `next_plan_id` and clears `renewal_failed_at`; writes
    the audit records and the renewal (and low-balance) notices.
    """
    assert line.id is not None and line.period_end is not None
    plan_row = session.get(Plan, line.next_plan_id or line.plan_id)
    assert plan_row is not None
    plan = _terms_of(plan_row)
    key = renewal_key(line.id, line.period_end)
    entry_id = None
    if plan.price_minor:
        account = customer_account_ids(
            session, customer_ids=[line.customer_id], currency=plan.currency
        )[line.customer_id]
        revenue = system_account_id(session, kind=REVENUE_KIND, currency=plan.currency)
        result = post_entries(
            session,
            entries=[
                BulkEntry(
                    kind=ENTRY_KIND,
                    idempotency_key=key,
                    postings=((account, -plan.price_minor), (revenue, plan.price_minor)),
                    memo=f"renewal of {line.msisdn} on {plan.code}",
                )
            ],
            actor=actor,
            now=now,
        )
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
        price_minor=plan.price_minor,
    )
    line.next_plan_id = None
    line.renewal_failed_at = None
    session.add(line)
    session.flush()
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
            "price_minor": plan.price_minor,
            "period_start": _iso(period.start),
            "period_end": _iso(period.end),
            "entry_id": entry_id,
            "manual": manual,
        },
    )
    _notify(
        session,
        line.customer_id,
        kind="renewal",
        data={
            "msisdn": line.msisdn,
            "plan": plan.code,
            "amount_minor": plan.price_minor,
            "currency": plan.currency,
            "period_start": _iso(period.start),
            "period_end": _iso(period.end),
            "periods": 1,
        },
        key=f"renewal:{line.id}:{_iso(period.start)}",
        now=now,
    )
    balance = customer_balance(session, customer_id=line.customer_id)
    if balance < plan.price_minor:
        _notify(
            session,
            line.customer_id,
            kind="low_balance",
            data={
                "msisdn": line.msisdn,
                "balance_minor": balance,
                "currency": plan.currency,
                "next_renewal_minor": plan.price_minor,
                "period_end": _iso(period.end),
            },
            key=f"low_balance:{line.id}:{_iso(period.end)}",
            now=now,
        )
    return period


def _lock_customer_accounts(session: Session, customer_id: int) -> None:
    session.flush()
    session.connection().execute(
        sa_select(_ACCOUNT.c.id)
        .where(_ACCOUNT.c.kind == CUSTOMER_PREPAID, _ACCOUNT.c.customer_id == customer_id)
        .order_by(_ACCOUNT.c.id)
        .with_for_update()
    ).all()


def _renewal_suspended(line: Line) -> bool:
    return (
        line.status == "suspended"
        and line.renewal_failed_at is not None
        and line.renewal_failed_at == line.status_changed_at
    )


def _resume(session: Session, line: Line, *, actor: Actor, now: datetime) -> None:
    assert line.id is not None
    lifecycle.resume_line(session, line_id=line.id, reason=RESUME_REASON, actor=actor, now=now)
    _notify(
        session,
        line.customer_id,
        kind="resumed",
        data={"msisdn": line.msisdn},
        key=f"resumed:{line.id}:{_iso(now)}",
        now=now,
    )


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
    _lock_customer_accounts(session, customer_id)
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
    for line in lines:
        assert line.id is not None
        if _renew_one(session, line, start=now, actor=actor, now=now, manual=False) is None:
            break
        _resume(session, line, actor=actor, now=now)
        resumed.append(line.id)
    return resumed


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
    _lock_customer_accounts(session, found.customer_id)
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
            end=_iso(line.period_end),
        )
    renewal_suspended = _renewal_suspended(line)
    period = _renew_one(session, line, start=start, actor=actor, now=now, manual=True)
    if period is None:
        plan = session.get(Plan, line.next_plan_id or line.plan_id)
        assert plan is not None
        raise InsufficientBalance(
            N_("The balance %(balance)s is less than %(amount)s."),
            balance=format_plain(customer_balance(session, customer_id=line.customer_id)),
            amount=format_plain(plan.price_minor),
        )
    if renewal_suspended:
        _resume(session, line, actor=actor, now=now)
    return period
