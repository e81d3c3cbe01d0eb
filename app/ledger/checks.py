"""The ledger's invariants (DESIGN §5), as `mvno ledger check` and the tests verify them.

* All postings sum to zero, and so do each entry's.
* Every cached balance equals the sum of its postings.
* `ledger_activity` holds exactly the system accounts' postings summed per
  (account, quarter-hour, tag) (app/ledger/activity.py).
* No prepaid balance is above its cap (the registered cap policy's, see
  `app.ledger.cap`) except through recorded late usage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import column, func, table, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.core.money import format_plain
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.activity import bucket_sql
from app.ledger.cap import prepaid_caps_minor
from app.ledger.models import JournalEntry, LedgerAccount, Posting

_ACCOUNTS = LedgerAccount.__table__  # type: ignore[attr-defined]
# A prepaid account references `customer.id` (its foreign key); the check
# names a customer by the table's `ref`, read by name, without importing
# the subscribers package above the ledger.
_CUSTOMERS = table("customer", column("id"), column("ref"))


@dataclass(frozen=True)
class LedgerCheck:
    """What `check_ledger` found: ok when `problems` is empty."""

    ok: bool
    entries: int
    postings: int
    problems: list[str] = field(default_factory=list)


def _unbalanced(session: Session) -> list[str]:
    problems: list[str] = []
    total = session.exec(select(func.coalesce(func.sum(Posting.amount_minor), 0))).one()
    if total != 0:
        problems.append(f"all postings sum to {total}, not zero")
    unbalanced = session.exec(
        select(Posting.entry_id, func.sum(Posting.amount_minor))
        .group_by(col(Posting.entry_id))
        .having(func.sum(Posting.amount_minor) != 0)
        .order_by(col(Posting.entry_id))
    ).all()
    for entry_id, entry_total in unbalanced:
        problems.append(f"entry {entry_id} postings sum to {entry_total}, not zero")
    return problems


def _activity_differs(session: Session) -> list[str]:
    """Rows of `ledger_activity` that differ from the postings they sum, either way."""
    bucket = bucket_sql(session.get_bind().dialect.name, "e.at")
    summed = text(
        f"SELECT p.account_id, {bucket} AS bucket, e.tag, sum(p.amount_minor), count(*)"  # noqa: S608
        " FROM posting p JOIN journal_entry e ON e.id = p.entry_id"
        " JOIN ledger_account a ON a.id = p.account_id"
        f" WHERE a.kind <> '{CUSTOMER_PREPAID}' GROUP BY 1, 2, 3"
    )
    kept = text("SELECT account_id, bucket, tag, amount_minor, postings FROM ledger_activity")
    expected = {(a, int(b), t): (int(m), int(n)) for a, b, t, m, n in session.execute(summed)}
    found = {(a, int(b), t): (int(m), int(n)) for a, b, t, m, n in session.execute(kept)}
    problems = []
    for key in sorted(expected.keys() | found.keys()):
        if expected.get(key, (0, 0)) != found.get(key, (0, 0)):
            account, bucket_no, tag = key
            problems.append(
                f"activity of account {account} at quarter-hour {bucket_no} tag {tag!r}:"
                f" kept {found.get(key, (0, 0))} but postings give {expected.get(key, (0, 0))}"
            )
    return problems


def check_ledger(session: Session, *, cap_months: int, reference_monthly_minor: int) -> LedgerCheck:
    """Verify the ledger's invariants (DESIGN §5) and list every problem found.

    Reads only. Every customer's cap comes from the registered cap policy in
    one call; customers are named by their reference.
    :raises RuntimeError: no cap policy is registered.
    """
    problems = _unbalanced(session) + _activity_differs(session)
    entries = session.exec(select(func.count()).select_from(JournalEntry)).one()
    postings = session.exec(select(func.count()).select_from(Posting)).one()
    sums = dict(
        session.exec(
            select(Posting.account_id, func.sum(Posting.amount_minor)).group_by(
                col(Posting.account_id)
            )
        ).all()
    )
    accounts = session.execute(sa_select(_ACCOUNTS).order_by(_ACCOUNTS.c.id)).all()
    customer_ids = sorted(
        {a.customer_id for a in accounts if a.kind == CUSTOMER_PREPAID and a.customer_id}
    )
    caps = prepaid_caps_minor(
        session,
        customer_ids=customer_ids,
        cap_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    refs = {row.id: row.ref for row in session.execute(sa_select(_CUSTOMERS))}
    for account in accounts:
        summed = int(sums.get(account.id, 0))
        name = f"account {account.id} ({account.kind} {account.scope} {account.currency})"
        if account.balance_minor != summed:
            problems.append(
                f"{name}: cached balance {account.balance_minor} but postings sum to {summed}"
            )
        if account.kind == CUSTOMER_PREPAID and account.customer_id is not None:
            cap = caps[account.customer_id]
            if summed > cap:
                problems.append(
                    f"customer {refs.get(account.customer_id, account.customer_id)}:"
                    f" prepaid balance {format_plain(summed)} above its cap {format_plain(cap)}"
                )
    return LedgerCheck(ok=not problems, entries=entries, postings=postings, problems=problems)
