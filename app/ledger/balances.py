"""Reading prepaid balances (DESIGN §5): now from the cached balances, or as of a
past time from the postings, and a customer's history with running balances.

Readers only; nothing here locks or writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.ledger.accounts import CUSTOMER_PREPAID, in_chunks
from app.ledger.models import JournalEntry, LedgerAccount, Posting


@dataclass(frozen=True)
class HistoryRow:
    """One prepaid posting of a customer, with the balance right after it."""

    entry_id: int
    at: datetime
    kind: str
    memo: str
    external_ref: str | None
    actor_label: str
    amount_minor: int
    balance_minor: int


def customer_history(
    session: Session, *, customer_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[HistoryRow], int]:
    """A customer's prepaid postings, newest first, each with the running balance after it.

    Returns one page and the total number of rows.
    """
    running = (
        func.sum(Posting.amount_minor)
        .over(order_by=(col(JournalEntry.at), col(JournalEntry.id), col(Posting.id)))
        .label("running")
    )
    inner = (
        sa_select(
            col(JournalEntry.id).label("entry_id"),
            col(JournalEntry.at).label("at"),
            col(JournalEntry.kind).label("kind"),
            col(JournalEntry.memo).label("memo"),
            col(JournalEntry.external_ref).label("external_ref"),
            col(JournalEntry.actor_label).label("actor_label"),
            col(Posting.amount_minor).label("amount"),
            col(Posting.id).label("posting_id"),
            running,
        )
        .join(Posting, col(Posting.entry_id) == col(JournalEntry.id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(Posting.account_id))
        .where(
            col(LedgerAccount.kind) == CUSTOMER_PREPAID,
            col(LedgerAccount.customer_id) == customer_id,
        )
        .subquery()
    )
    total = session.exec(select(func.count()).select_from(inner)).one()
    rows = session.execute(
        sa_select(inner)
        .order_by(inner.c.at.desc(), inner.c.entry_id.desc(), inner.c.posting_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        HistoryRow(
            entry_id=row.entry_id,
            at=row.at,
            kind=row.kind,
            memo=row.memo,
            external_ref=row.external_ref,
            actor_label=row.actor_label,
            amount_minor=int(row.amount),
            balance_minor=int(row.running),
        )
        for row in rows
    ], int(total)


def _posting_sum(at: datetime | None) -> Any:
    query = select(func.coalesce(func.sum(Posting.amount_minor), 0)).join(
        LedgerAccount, col(LedgerAccount.id) == col(Posting.account_id)
    )
    if at is not None:
        query = query.join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id)).where(
            col(JournalEntry.at) <= at
        )
    return query.where(LedgerAccount.kind == CUSTOMER_PREPAID)


def customer_balance(session: Session, *, customer_id: int, at: datetime | None = None) -> int:
    """The customer's prepaid balance: cached now, or summed from postings as of `at`."""
    if at is None:
        total = session.exec(
            select(func.coalesce(func.sum(LedgerAccount.balance_minor), 0)).where(
                LedgerAccount.kind == CUSTOMER_PREPAID, LedgerAccount.customer_id == customer_id
            )
        ).one()
        return int(total)
    query = _posting_sum(at).where(LedgerAccount.customer_id == customer_id)
    return int(session.exec(query).one())


def book_liability(session: Session, *, at: datetime | None = None) -> int:
    """What the platform owes all customers in prepaid balances, from postings as of `at`."""
    return int(session.exec(_posting_sum(at)).one())


def prepaid_balances(
    session: Session, *, customer_ids: list[int] | None = None, nonzero: bool = False
) -> dict[tuple[int, str], int]:
    """(customer id, currency) → cached prepaid balance, for `customer_ids` (in chunks) or all.

    With `nonzero`, accounts at zero are left out.
    """
    query = sa_select(
        col(LedgerAccount.customer_id),
        col(LedgerAccount.currency),
        col(LedgerAccount.balance_minor),
    ).where(col(LedgerAccount.kind) == CUSTOMER_PREPAID)
    if nonzero:
        query = query.where(col(LedgerAccount.balance_minor) != 0)
    if customer_ids is None:
        rows = list(session.execute(query))
    else:
        rows = [
            row
            for chunk in in_chunks(sorted(set(customer_ids)))
            for row in session.execute(query.where(col(LedgerAccount.customer_id).in_(chunk)))
        ]
    return {(customer, currency): int(balance) for customer, currency, balance in rows}
