"""Ledger accounts (DESIGN §5): one per (kind, customer or system shard, currency).

Rules:

* A `customer_prepaid` account belongs to exactly one customer; every other
  kind (cash, revenue, refunds payable, …) is a system account and has none.
* A system account takes part in almost every entry, and on PostgreSQL its
  row stays locked from its balance UPDATE until the commit is on disk: one
  row would serialise every payment. So each is kept as SYSTEM_SHARDS
  accounts (scopes "system", "system:1", …) and an entry posts to one of
  them at random; its balance is the sum of its shards (`system_balance`).
  Every shard is an ordinary account: its cached balance equals its postings.
* Accounts are created on first use; a concurrent creation is caught by the
  unique constraint on (kind, scope, currency).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, func
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.core.db import insert_unique
from app.core.errors import N_, InvalidInput
from app.ledger.models import ACCOUNT_KINDS, LedgerAccount

CUSTOMER_PREPAID = "customer_prepaid"
SYSTEM_SHARDS = 8
# Batch statements take ids and keys in chunks of this many values.
CHUNK = 5000

_ACCOUNTS = LedgerAccount.__table__  # type: ignore[attr-defined]
_FIND_CUSTOMER_ACCOUNTS = sa_select(_ACCOUNTS.c.id, _ACCOUNTS.c.customer_id).where(
    _ACCOUNTS.c.kind == CUSTOMER_PREPAID,
    _ACCOUNTS.c.currency == bindparam("currency"),
    _ACCOUNTS.c.customer_id.in_(bindparam("ids", expanding=True)),
)
# PostgreSQL takes the id list of a batch as one array parameter (`= ANY(:ids)`).
_PG_FIND_CUSTOMER_ACCOUNTS = sa_select(_ACCOUNTS.c.id, _ACCOUNTS.c.customer_id).where(
    _ACCOUNTS.c.kind == CUSTOMER_PREPAID,
    _ACCOUNTS.c.currency == bindparam("currency"),
    _ACCOUNTS.c.customer_id == any_(bindparam("ids", type_=ARRAY(BigInteger))),
)


class _DuplicateKey(Exception):
    """Another transaction inserted the same account first."""


def in_chunks(values: list[Any]) -> Iterator[list[Any]]:
    """`values` in consecutive slices of at most CHUNK (the batch statements' size)."""
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _scope(customer_id: int | None, shard: int = 0) -> str:
    if customer_id is not None:
        return f"customer:{customer_id}"
    return "system" if shard == 0 else f"system:{shard}"


def get_or_create_account(
    session: Session,
    *,
    kind: str,
    customer_id: int | None = None,
    currency: str,
    shard: int = 0,
) -> LedgerAccount:
    """The account (kind, customer or system shard, currency), created on first use.

    Idempotent; a concurrent creation is caught by the unique constraint.
    :raises InvalidInput: unknown kind, or a customer given for a system kind
        (or missing for a customer kind), or a shard out of range.
    """
    if not 0 <= shard < SYSTEM_SHARDS or (shard and customer_id is not None):
        raise InvalidInput(N_("No such ledger account shard."), field="shard")
    if kind not in ACCOUNT_KINDS:
        raise InvalidInput(N_("Unknown ledger account kind %(kind)s."), field="kind", kind=kind)
    if (kind == CUSTOMER_PREPAID) != (customer_id is not None):
        raise InvalidInput(
            N_("Account kind %(kind)s needs a customer exactly when it is customer_prepaid."),
            field="customer_id",
            kind=kind,
        )
    query = select(LedgerAccount).where(
        LedgerAccount.kind == kind,
        LedgerAccount.scope == _scope(customer_id, shard),
        LedgerAccount.currency == currency,
    )
    account = session.exec(query).first()
    if account is not None:
        return account
    # A system account gets all its shards at once, so which shard a later
    # entry (or a replay) picks never creates a row.
    shards = range(SYSTEM_SHARDS) if customer_id is None else [0]
    for each in shards:
        row = LedgerAccount(
            kind=kind, customer_id=customer_id, scope=_scope(customer_id, each), currency=currency
        )
        try:
            insert_unique(session, row, _DuplicateKey())
        except _DuplicateKey:
            if row in session:
                session.expunge(row)
    return session.exec(query).one()


def customer_account_id(session: Session, *, customer_id: int, currency: str) -> int:
    """The id of the customer's prepaid account in `currency`, created on first use."""
    account = get_or_create_account(
        session, kind=CUSTOMER_PREPAID, customer_id=customer_id, currency=currency
    )
    assert account.id is not None
    return account.id


def customer_account_ids(
    session: Session, *, customer_ids: list[int], currency: str
) -> dict[int, int]:
    """customer id → prepaid account id, creating the missing accounts in one INSERT.

    Idempotent: an account created meanwhile by another transaction is
    skipped by the unique constraint and read back.
    """
    wanted = sorted(set(customer_ids))
    session.flush()
    connection = session.connection()
    postgres = session.get_bind().dialect.name == "postgresql"
    find = _PG_FIND_CUSTOMER_ACCOUNTS if postgres else _FIND_CUSTOMER_ACCOUNTS

    def read() -> dict[int, int]:
        found: dict[int, int] = {}
        for chunk in in_chunks(wanted):
            params = {"ids": chunk, "currency": currency}
            found.update((row.customer_id, row.id) for row in connection.execute(find, params))
        return found

    found = read()
    absent = [c for c in wanted if c not in found]
    if absent:
        insert = pg_insert if postgres else sqlite_insert
        statement = insert(_ACCOUNTS).on_conflict_do_nothing(
            index_elements=["kind", "scope", "currency"]
        )
        for chunk in in_chunks(absent):
            connection.execute(
                statement,
                [
                    {
                        "kind": CUSTOMER_PREPAID,
                        "customer_id": c,
                        "scope": _scope(c),
                        "currency": currency,
                        "balance_minor": 0,
                    }
                    for c in chunk
                ],
            )
        found = read()
    return found


def system_account_id(session: Session, *, kind: str, currency: str) -> int:
    """One shard, at random, of a system account kind (see SYSTEM_SHARDS), created on first use."""
    shard = random.randrange(SYSTEM_SHARDS)  # noqa: S311 (spreads load; not a secret)
    account = get_or_create_account(session, kind=kind, currency=currency, shard=shard)
    assert account.id is not None
    return account.id


def system_balance(session: Session, *, kind: str, currency: str) -> int:
    """A system account's balance: the sum of its shards' cached balances."""
    total = session.exec(
        select(func.coalesce(func.sum(LedgerAccount.balance_minor), 0)).where(
            LedgerAccount.kind == kind,
            LedgerAccount.currency == currency,
            col(LedgerAccount.customer_id).is_(None),
        )
    ).one()
    return int(total)
