"""Executing the market exit (DESIGN §12): every line ends, every balance goes to zero.

In one transaction, at or after the exit instant (refused before it):

1. Every line not ended gets its outcome — transferred when its subscriber
   chose transfer, else terminated — and the unused value of its periods
   past the instant (`owed.exit_breakdown`).
2. The ledger, per customer and currency, set-based (`post_entries`, keys
   `exit:<id>:<step>:<customer>:<currency>`, so nothing posts twice):
   the unused value comes back from plan revenue to the prepaid balance;
   arrears are written off from adjustments (audited, `exit.write_off`);
   the refund leaves for refunds payable, and the carried balance
   (`EXIT_BALANCE_POLICY=carry`) for host payable.
3. The refunds are queued to the customers' card payments, newest first,
   the rest for finance by hand (`app.payments.bulk_refunds`); the
   scheduler's refund job sends them to Stripe with idempotency keys.
4. The lines end (`app.subscribers.endings`, which writes the provisioning
   events `transfer_to_host` / `terminate`), every number of every block
   is marked returned, and what was decided is kept (`ExitLine`,
   `ExitCustomer`).
5. The invariant is checked before commit — refunds + carried = positive
   balances + unused value to the minor unit, every prepaid account at
   zero, every line ended with exactly one outcome — and a breach rolls
   the whole execution back (`ExitInvariantBroken`).

A crash anywhere before commit leaves nothing behind, so a rerun starts
afresh and pays nothing twice; once committed the exit is `executed`, and
a rerun only writes the files again (the same bytes, from what was kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.charging.unused_value import Owed, owed_at
from app.core.audit import Actor, AuditEntry, audit_row, record_audit
from app.core.db import insert_rows
from app.core.errors import N_
from app.core.faults import crash_point
from app.exit.choices import choices_of
from app.exit.errors import ExitInvariantBroken, ExitRefused
from app.exit.models import ExitCustomer, ExitLine, MarketExit
from app.exit.owed import Breakdown, exit_breakdown
from app.exit.schedule import lock_current_exit
from app.ledger.accounts import CUSTOMER_PREPAID, customer_account_ids, system_account_id
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.ledger.posting import BulkEntry, post_entries
from app.payments.bulk_refunds import RefundRequest, queue_refunds
from app.subscribers.endings import end_lines
from app.subscribers.models import FINAL_LINE_STATUSES, Line
from numbering.lifecycle import return_all_numbers

_EXIT_LINE = ExitLine.__table__  # type: ignore[attr-defined]
_EXIT_CUSTOMER = ExitCustomer.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
REASON = "market exit"


def _ready(session: Session, *, now: datetime) -> MarketExit:
    found = lock_current_exit(session)
    if found.state in ("executed", "completed"):
        return found
    if found.state != "announced":
        raise ExitRefused(
            N_("Only an announced exit can be executed; this one is %(state)s."),
            state=found.state,
        )
    if now < found.exit_at:
        raise ExitRefused(
            N_("The exit cannot be executed before its instant, %(at)s."),
            at=found.exit_at.isoformat(),
        )
    return found


def execute_exit(session: Session, *, policy: str, actor: Actor, now: datetime) -> MarketExit:
    """Carry out the announced exit in the caller's transaction; see the module docstring.

    Idempotent: an executed (or completed) exit is returned as it is.
    :raises ExitNotFound: nothing is planned.
    :raises ExitRefused: the exit is not announced, or its instant has not come.
    :raises ExitInvariantBroken: the money does not add up (roll back).
    """
    found = _ready(session, now=now)
    if found.state != "announced":
        return found
    assert found.id is not None
    before = owed_at(session, at=found.exit_at)
    breakdown = exit_breakdown(
        session,
        at=found.exit_at,
        choices=choices_of(session, exit_id=found.id),
        carry=policy == "carry",
    )
    _post_money(session, found, breakdown, actor=actor, now=now)
    crash_point("exit.money_posted")
    ended = end_lines(
        session,
        outcomes={line.line_id: line.outcome for line in breakdown.lines},
        reason=REASON,
        actor=actor,
        now=now,
    )
    returned = return_all_numbers(session, now=now)
    _keep(session, found, breakdown)
    _check_invariant(session, found, breakdown, before=before)
    found.state, found.executed_at, found.balance_policy = "executed", now, policy
    found.summary = {
        "lines": len(breakdown.lines),
        "transferred": ended.transferred,
        "terminated": ended.terminated,
        "refunds": breakdown.refunds_minor,
        "transferred_balances": breakdown.carried_minor,
        "liability_before": breakdown.liability_minor,
        "written_off": breakdown.written_off_minor,
        "numbers_returned": returned,
        "customers": len(breakdown.customers),
    }
    session.add(found)
    record_audit(
        session,
        actor=actor,
        action="exit.execute",
        now=now,
        target_type="market_exit",
        target_id=found.id,
        details={**found.summary, "policy": policy},
    )
    session.flush()
    crash_point("exit.before_commit")
    return found


def _post_money(
    session: Session, found: MarketExit, breakdown: Breakdown, *, actor: Actor, now: datetime
) -> None:
    """The ledger entries and refunds of the execution (step 2 and 3 of the module docstring)."""
    entries: list[BulkEntry] = []
    write_offs: list[dict[str, Any]] = []
    refunds: list[tuple[int, str, int, str]] = []
    moving = [c for c in breakdown.customers if c.balance_minor or c.unused_minor]
    for currency in sorted({c.currency for c in moving}):
        customers = [c for c in moving if c.currency == currency]
        accounts = customer_account_ids(
            session, customer_ids=[c.customer_id for c in customers], currency=currency
        )
        system = {
            kind: system_account_id(session, kind=kind, currency=currency)
            for kind in ("revenue_plans", "adjustments", "refunds_payable", "host_payable")
        }
        for owed in customers:
            account, key = (
                accounts[owed.customer_id],
                f"exit:{found.id}:%s:{owed.customer_id}:{currency}",
            )
            steps = (
                ("unused", "revenue_plans", owed.unused_minor),
                ("writeoff", "adjustments", owed.written_off_minor),
                ("refund", "refunds_payable", -owed.refund_minor),
                ("carry", "host_payable", -owed.carried_minor),
            )
            for step, kind, amount in steps:
                if amount:
                    entries.append(
                        BulkEntry(
                            kind=f"exit_{step}",
                            idempotency_key=key % step,
                            postings=((account, amount), (system[kind], -amount)),
                            memo=f"market exit: {step}",
                        )
                    )
            if owed.written_off_minor:
                write_offs.append(
                    {
                        "customer_id": owed.customer_id,
                        "currency": currency,
                        "amount_minor": owed.written_off_minor,
                        "key": key % "writeoff",
                    }
                )
            if owed.refund_minor:
                refunds.append((owed.customer_id, currency, owed.refund_minor, key % "refund"))
    result = post_entries(session, entries=entries, actor=actor, now=now)
    if result.refused:
        raise ExitInvariantBroken(
            N_("The exit's ledger entries were refused: %(keys)s."),
            keys=", ".join(sorted(result.refused)[:5]),
        )
    entry_of = {**result.replayed, **result.posted}
    insert_rows(
        session,
        _AUDIT,
        [_write_off_audit(w, entry_of[w["key"]], found, actor, now) for w in write_offs],
    )
    queue_refunds(
        session,
        requests=[
            RefundRequest(customer_id=c, currency=cur, amount_minor=amount, entry_id=entry_of[key])
            for c, cur, amount, key in refunds
        ],
        reason="exit",
        note=f"market exit {found.exit_date.isoformat()}",
        actor=actor,
        now=now,
    )


def _write_off_audit(
    write_off: dict[str, Any], entry_id: int, found: MarketExit, actor: Actor, now: datetime
) -> dict[str, Any]:
    details = {
        "exit_id": found.id,
        "amount_minor": write_off["amount_minor"],
        "currency": write_off["currency"],
        "entry_id": entry_id,
    }
    return audit_row(
        actor,
        "exit.write_off",
        now,
        target_type="customer",
        target_id=write_off["customer_id"],
        details=details,
    )


def _keep(session: Session, found: MarketExit, breakdown: Breakdown) -> None:
    """Write what the execution decided, for the files and the console."""
    insert_rows(
        session,
        _EXIT_LINE,
        [
            {
                "exit_id": found.id,
                "line_id": line.line_id,
                "customer_id": line.customer_id,
                "msisdn": line.msisdn,
                "plan_code": line.plan_code,
                "status_before": line.status,
                "outcome": line.outcome,
                "currency": line.currency,
                "unused_minor": line.unused_minor,
                "carried_minor": line.carried_minor,
            }
            for line in breakdown.lines
        ],
    )
    insert_rows(
        session,
        _EXIT_CUSTOMER,
        [
            {
                "exit_id": found.id,
                "customer_id": c.customer_id,
                "currency": c.currency,
                "balance_minor": c.balance_minor,
                "unused_minor": c.unused_minor,
                "refund_minor": c.refund_minor,
                "carried_minor": c.carried_minor,
                "written_off_minor": c.written_off_minor,
                "refunded_to_cards_minor": 0,
                "refund_by_hand_minor": 0,
            }
            for c in breakdown.customers
        ],
    )


def _sum(session: Session, query: Any) -> int:
    return int(session.execute(query).scalar() or 0)


def _check_invariant(
    session: Session, found: MarketExit, breakdown: Breakdown, *, before: Owed
) -> None:
    """DESIGN §12's invariant, from the database as it stands before commit.

    `before` is what was owed before the execution, by the dashboard's own
    computation (`app.charging.unused_value.owed_at`), not the breakdown's.

    :raises ExitInvariantBroken: naming what does not hold.
    """
    problems: list[str] = []
    kept = session.execute(
        sa_select(
            func.coalesce(func.sum(ExitCustomer.refund_minor), 0),
            func.coalesce(func.sum(ExitCustomer.carried_minor), 0),
        ).where(col(ExitCustomer.exit_id) == found.id)
    ).one()
    refunded, carried = (int(v) for v in kept)
    refunds_and_carried = refunded + carried
    owed = sum(before.total(currency) for currency in before.currencies)
    if refunded + carried != owed:
        problems.append(
            f"refunds {refunded} + carried {carried} != balances and unused value {owed}"
        )
    paid_out = -_sum(
        session,
        sa_select(func.sum(Posting.amount_minor))
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(Posting.account_id))
        .where(col(LedgerAccount.kind) == CUSTOMER_PREPAID)
        .where(col(JournalEntry.kind).in_(("exit_refund", "exit_carry")))
        .where(col(JournalEntry.idempotency_key).startswith(f"exit:{found.id}:")),
    )
    if paid_out != refunds_and_carried:
        problems.append(f"the ledger paid out {paid_out}, not {refunds_and_carried}")
    nonzero = _sum(
        session,
        sa_select(func.count())
        .select_from(LedgerAccount)
        .where(col(LedgerAccount.kind) == CUSTOMER_PREPAID, col(LedgerAccount.balance_minor) != 0),
    )
    if nonzero:
        problems.append(f"{nonzero} prepaid accounts not at zero")
    live = _sum(
        session,
        sa_select(func.count())
        .select_from(Line)
        .where(col(Line.status).not_in(FINAL_LINE_STATUSES)),
    )
    if live:
        problems.append(f"{live} lines not ended")
    outcomes = _sum(
        session,
        sa_select(func.count()).select_from(ExitLine).where(col(ExitLine.exit_id) == found.id),
    )
    if outcomes != len(breakdown.lines) or len({li.line_id for li in breakdown.lines}) != outcomes:
        problems.append(f"{outcomes} outcomes for {len(breakdown.lines)} lines")
    if problems:
        raise ExitInvariantBroken(
            N_("The exit does not add up and was not executed: %(problems)s."),
            problems="; ".join(problems),
        )


def exit_lines(session: Session, *, exit_id: int) -> Iterable[ExitLine]:
    """The lines an executed exit ended, in line id order."""
    return session.exec(
        select(ExitLine).where(col(ExitLine.exit_id) == exit_id).order_by(col(ExitLine.line_id))
    )
