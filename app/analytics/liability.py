"""Prepaid liability now beside what would be owed if the reseller exited now
(DESIGN §5, §12).

Definitions, in one currency:

* **Book liability**: the sum of every customer's prepaid balance, arrears
  (negative balances) included — what the ledger shows as owed. Read from
  the cached balances, which the ledger keeps equal to the postings
  (`mvno ledger check`).
* **Owed if we exited now**: `app.charging.unused_value.owed_at(now)` — the
  positive balances, each customer once, plus the unused value of every
  current period (the exit's refund arithmetic, to the minor unit).
* The two differ by exactly the unused value of current periods (already
  paid for, so booked as revenue, but refundable on exit) plus the arrears
  (in the book liability, but written off on exit, not refunded):
  owed − book = unused periods + arrears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.charging.unused_value import unused_value_at
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.models import LedgerAccount


@dataclass(frozen=True)
class Liability:
    """The book liability and what an exit at `at` would owe, in minor units of `currency`."""

    at: datetime
    currency: str
    book_minor: int
    positive_balances_minor: int
    arrears_minor: int
    unused_periods_minor: int
    customers_in_credit: int
    customers_in_arrears: int

    @property
    def owed_minor(self) -> int:
        """Positive balances + unused value of current periods (`owed_at`)."""
        return self.positive_balances_minor + self.unused_periods_minor

    @property
    def difference_minor(self) -> int:
        """owed − book liability: the unused periods plus the arrears."""
        return self.owed_minor - self.book_minor


def prepaid_liability(session: Session, *, at: datetime, currency: str) -> Liability:
    """The book liability now and what would be owed on an exit at `at`, in `currency`.

    Reads only; the balances are those cached now, the periods those containing `at`.
    One pass over the prepaid accounts gives the book, the arrears and the
    positive balances (`owed_at`'s: each customer in credit once); the unused
    value is `owed_at`'s arithmetic (`unused_value_at`).
    """
    balance = col(LedgerAccount.balance_minor)
    book, positive, arrears, in_credit, in_arrears = session.execute(
        sa_select(
            func.coalesce(func.sum(balance), 0),
            func.coalesce(func.sum(case((balance > 0, balance), else_=0)), 0),
            func.coalesce(func.sum(case((balance < 0, -balance), else_=0)), 0),
            func.coalesce(func.sum(case((balance > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(case((balance < 0, 1), else_=0)), 0),
        ).where(
            col(LedgerAccount.kind) == CUSTOMER_PREPAID,
            col(LedgerAccount.currency) == currency,
        )
    ).one()
    unused = unused_value_at(session, at=at)
    return Liability(
        at=at,
        currency=currency,
        book_minor=int(book),
        positive_balances_minor=int(positive),
        arrears_minor=int(arrears),
        unused_periods_minor=unused.get(currency, 0),
        customers_in_credit=int(in_credit),
        customers_in_arrears=int(in_arrears),
    )
