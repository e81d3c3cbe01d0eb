"""Posting to the prepaid ledger (DESIGN §5).

Rules:

* `post_entry` is the one function that writes postings. An entry's
  postings are non-zero and sum to zero; entries are never edited — a
  correction is a new, reversing entry.
* Signs: an account's balance is the sum of its postings. A customer's
  prepaid balance is what the platform owes the customer, so a top-up
  posts +amount to `customer_prepaid` and −amount to the cash account.
* Idempotency: the same key with the same payload (kind and postings)
  returns the first entry and changes nothing; the same key with a
  different payload is `IdempotencyConflict` (409).
* Locking: the affected accounts are locked in primary-key order
  (`SELECT … FOR UPDATE` on PostgreSQL; SQLite already holds the write
  lock from `BEGIN IMMEDIATE`), and postings and cached balances are
  written in the same transaction.
* A customer's prepaid balance may not go below zero (arrears come only
  from late usage, posted with `allow_negative`), and a credit may not take
  it above the cap: months × the monthly fees of the customer's lines that
  are not final, or months × the reference fee when there are none.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, String, any_, bindparam, delete, func, update
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select

from app.core.audit import Actor, record_audit
from app.core.db import insert_rows, insert_unique
from app.core.errors import N_, Conflict, InvalidInput, clean_text
from app.core.money import check_amount, format_plain
from app.ledger.errors import CapExceeded, IdempotencyConflict, InsufficientBalance
from app.ledger.models import ACCOUNT_KINDS, JournalEntry, LedgerAccount, Posting
from app.subscribers.models import FINAL_LINE_STATUSES, Customer, Line
from plans.models import Plan
from plans.pricing import monthly_fee_minor, monthly_fee_of

CUSTOMER_PREPAID = "customer_prepaid"
CREDIT_SOURCES = ("cash_offline", "cash_stripe", "voucher_float", "adjustments")
MAX_KEY_LENGTH = 200


class _DuplicateKey(Exception):
    """Another transaction inserted the same idempotency key first."""


@dataclass(frozen=True)
class LedgerCheck:
    ok: bool
    entries: int
    postings: int
    problems: list[str] = field(default_factory=list)


# A system account (cash, revenue, refunds payable, …) takes part in almost
# every entry, and on PostgreSQL its row stays locked from its balance UPDATE
# until the commit is on disk: one row would serialise every payment. So
# each is kept as SYSTEM_SHARDS accounts (scopes "system", "system:1", …)
# and an entry posts to one of them at random; its balance is the sum of its
# shards (`system_balance`). Every shard is an ordinary account: its cached
# balance equals its postings.
SYSTEM_SHARDS = 8


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


# The posting path's statements are built once (values travel as bound
# parameters): building and cache-keying SQLAlchemy statements was most of
# post_entry's CPU time (bench/bench_postings.py).
_ACCOUNTS = LedgerAccount.__table__  # type: ignore[attr-defined]
_ENTRIES = JournalEntry.__table__  # type: ignore[attr-defined]
_POSTINGS = Posting.__table__  # type: ignore[attr-defined]
_LOCK_CUSTOMER_ACCOUNTS = (
    sa_select(_ACCOUNTS)
    .where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    .where(_ACCOUNTS.c.kind == CUSTOMER_PREPAID)
    .order_by(_ACCOUNTS.c.id)
    .with_for_update()
)
_READ_SYSTEM_ACCOUNTS = sa_select(_ACCOUNTS).where(
    _ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)),
    _ACCOUNTS.c.kind != CUSTOMER_PREPAID,
)
_ADD_TO_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account"))
    .values(balance_minor=_ACCOUNTS.c.balance_minor + bindparam("change"))
)
_INSERT_ENTRY = {
    dialect: insert(_ENTRIES)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_ENTRIES.c.id)
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_INSERT_POSTINGS = sa_insert(_POSTINGS)


def _lock_accounts(session: Session, account_ids: list[int]) -> dict[int, Any]:
    """Lock the customer accounts among `account_ids` in primary-key order; read the rest.

    Returns plain rows (id, kind, customer_id, scope, currency,
    balance_minor) read afresh. System accounts (cash, revenue, refunds
    payable) take part in nearly every entry, so they are not locked here:
    `post_entry` changes their balances with one atomic UPDATE each as its
    last statements, and their rows are held only from that UPDATE to the
    commit. Their cached balance is never read to decide anything.

    The posting path runs Core statements on the session's connection: the
    ORM's per-statement work was most of its CPU time (bench/bench_postings.py).
    """
    ids = sorted(set(account_ids))
    session.flush()  # Core statements follow: the ORM's pending rows go first
    connection = session.connection()
    accounts = {row.id: row for row in connection.execute(_LOCK_CUSTOMER_ACCOUNTS, {"ids": ids})}
    if len(accounts) < len(ids):
        for row in connection.execute(_READ_SYSTEM_ACCOUNTS, {"ids": ids}):
            accounts[row.id] = row
    return accounts


def _insert_entry(
    session: Session, connection: Connection, values: dict[str, Any]
) -> JournalEntry | None:
    """INSERT the entry unless its key exists (then None), without a savepoint.

    The row is written by Core and the returned object attached to the
    session as already persistent, so no second SELECT reads it back.
    """
    statement = _INSERT_ENTRY[session.get_bind().dialect.name]
    entry_id = connection.execute(statement, values).scalar()
    if entry_id is None:
        return None
    entry = JournalEntry(id=entry_id, **values)
    make_transient_to_detached(entry)
    session.add(entry)
    return entry


def _add_to_balances(
    session: Session, connection: Connection, accounts: dict[int, Any], net: dict[int, int]
) -> None:
    """Customer accounts (locked) first, then the shared system accounts, each in id order.

    Any LedgerAccount objects of these accounts in the session are expired,
    so they read the new balance.
    """
    order = sorted(net, key=lambda a: (accounts[a].kind != CUSTOMER_PREPAID, a))
    connection.execute(_ADD_TO_BALANCE, [{"account": a, "change": net[a]} for a in order])
    _expire_balances(session, order)


def _expire_balances(session: Session, account_ids: list[int]) -> None:
    """Expire the balance of any loaded LedgerAccount among `account_ids` (changed by Core)."""
    for account_id in account_ids:
        loaded = session.identity_map.get(session.identity_key(LedgerAccount, account_id))
        if loaded is not None:
            session.expire(loaded, ["balance_minor"])


def _request_hash(kind: str, postings: list[tuple[int, int]], accounts: dict[int, Any]) -> str:
    """The payload's fingerprint: accounts by what they are, not by shard, so a
    replay that happens to pick another shard of a system account still matches."""
    named = sorted(
        [accounts[a].kind, accounts[a].customer_id, accounts[a].currency, m] for a, m in postings
    )
    payload = json.dumps([kind, named], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def find_entry(session: Session, key: str) -> JournalEntry | None:
    """The entry posted under an idempotency key, if any."""
    return session.exec(select(JournalEntry).where(JournalEntry.idempotency_key == key)).first()


def _replay(entry: JournalEntry, request_hash: str) -> JournalEntry:
    if entry.request_hash != request_hash:
        raise IdempotencyConflict(
            N_("The key %(key)s was already used for a different ledger entry."),
            field="idempotency_key",
            key=entry.idempotency_key,
        )
    return entry


def _check_key(key: str) -> str:
    if not key or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            N_("An idempotency key of 1 to %(max)s characters is required."),
            field="idempotency_key",
            max=MAX_KEY_LENGTH,
        )
    return key


def post_entry(
    session: Session,
    *,
    kind: str,
    idempotency_key: str,
    postings: list[tuple[int, int]],
    actor: Actor,
    now: datetime,
    memo: str = "",
    external_ref: str | None = None,
    allow_negative: frozenset[int] = frozenset(),
) -> JournalEntry:
    """Post one balanced entry: postings plus cached balances, in the caller's transaction.

    Locks the affected accounts in primary-key order. Idempotent per key.
    :raises InvalidInput: no postings, a zero amount, postings that do not sum
        to zero, an unknown account or mixed currencies.
    :raises IdempotencyConflict: the key was used with a different payload.
    :raises InsufficientBalance: a customer prepaid balance would go below
        zero and its account is not in `allow_negative`.
    """
    _check_key(idempotency_key)
    _check_postings(postings)
    accounts = _lock_accounts(session, [account_id for account_id, _ in postings])
    return _post_locked(
        session,
        accounts,
        kind=kind,
        idempotency_key=idempotency_key,
        postings=postings,
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
        allow_negative=allow_negative,
    )


def _post_locked(
    session: Session,
    accounts: dict[int, Any],
    *,
    kind: str,
    idempotency_key: str,
    postings: list[tuple[int, int]],
    actor: Actor,
    now: datetime,
    memo: str,
    external_ref: str | None,
    allow_negative: frozenset[int] = frozenset(),
) -> JournalEntry:
    """`post_entry` once its postings are checked and `accounts` locked by `_lock_accounts`.

    Callers that lock first to decide (the cap) pass their accounts here
    instead of locking them a second time.
    """
    missing = sorted({a for a, _ in postings} - accounts.keys())
    if missing:
        raise InvalidInput(
            N_("No ledger account %(id)s."), field="postings", id=", ".join(map(str, missing))
        )
    request_hash = _request_hash(kind, postings, accounts)
    if len({account.currency for account in accounts.values()}) != 1:
        raise InvalidInput(N_("An entry's accounts must share one currency."), field="postings")
    # The entry row goes in first: a key already used (committed, or being
    # committed by a concurrent transaction, which the unique index waits
    # for) means a replay, whatever the balances are now.
    connection = session.connection()
    entry = _insert_entry(
        session,
        connection,
        {
            "kind": kind,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "external_ref": external_ref,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_label": actor.label,
            "memo": memo,
            "at": now,
        },
    )
    if entry is None:
        winner = find_entry(session, idempotency_key)
        assert winner is not None
        return _replay(winner, request_hash)

    net: dict[int, int] = defaultdict(int)
    for account_id, amount in postings:
        net[account_id] += amount
    for account_id, change in net.items():
        account = accounts[account_id]
        after = account.balance_minor + change
        # Only a debit is refused: a credit to a balance in arrears clears them first.
        if (
            account.kind == CUSTOMER_PREPAID
            and change < 0
            and after < 0
            and account_id not in allow_negative
        ):
            # Take the entry row back out, so a caller that carries on after
            # the refusal does not commit an entry without postings.
            connection.execute(delete(_ENTRIES).where(_ENTRIES.c.id == entry.id))
            session.expunge(entry)
            raise InsufficientBalance(
                N_("The balance %(balance)s is less than %(amount)s."),
                balance=format_plain(account.balance_minor),
                amount=format_plain(-change),
            )
    assert entry.id is not None
    connection.execute(
        _INSERT_POSTINGS,
        [
            {"entry_id": entry.id, "account_id": account_id, "amount_minor": amount}
            for account_id, amount in postings
        ],
    )
    _add_to_balances(session, connection, accounts, net)
    return entry


# -- many entries at once (renewals, migration imports) ------------------------------

_CHUNK = 5000
_FIND_ENTRIES = sa_select(_ENTRIES.c.id, _ENTRIES.c.idempotency_key, _ENTRIES.c.request_hash).where(
    _ENTRIES.c.idempotency_key.in_(bindparam("keys", expanding=True))
)
# PostgreSQL takes the id and key lists of a batch as one array parameter
# (`= ANY(:ids)`) rather than one parameter per element.
_IDS = bindparam("ids", type_=ARRAY(BigInteger))
_KEYS = bindparam("keys", type_=ARRAY(String))
_PG_LOCK_CUSTOMER_ACCOUNTS = (
    sa_select(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == any_(_IDS), _ACCOUNTS.c.kind == CUSTOMER_PREPAID)
    .order_by(_ACCOUNTS.c.id)
    .with_for_update()
)
_PG_READ_SYSTEM_ACCOUNTS = sa_select(_ACCOUNTS).where(
    _ACCOUNTS.c.id == any_(_IDS), _ACCOUNTS.c.kind != CUSTOMER_PREPAID
)
_PG_FIND_ENTRIES = sa_select(
    _ENTRIES.c.id, _ENTRIES.c.idempotency_key, _ENTRIES.c.request_hash
).where(_ENTRIES.c.idempotency_key == any_(_KEYS))
_FIND_CUSTOMER_ACCOUNTS = sa_select(_ACCOUNTS.c.id, _ACCOUNTS.c.customer_id).where(
    _ACCOUNTS.c.kind == CUSTOMER_PREPAID,
    _ACCOUNTS.c.currency == bindparam("currency"),
    _ACCOUNTS.c.customer_id.in_(bindparam("ids", expanding=True)),
)
_PG_FIND_CUSTOMER_ACCOUNTS = sa_select(_ACCOUNTS.c.id, _ACCOUNTS.c.customer_id).where(
    _ACCOUNTS.c.kind == CUSTOMER_PREPAID,
    _ACCOUNTS.c.currency == bindparam("currency"),
    _ACCOUNTS.c.customer_id == any_(_IDS),
)


@dataclass(frozen=True)
class BulkEntry:
    """One entry for `post_entries`: (account id, signed amount) postings summing to zero."""

    kind: str
    idempotency_key: str
    postings: tuple[tuple[int, int], ...]
    memo: str = ""
    external_ref: str | None = None


@dataclass
class BulkResult:
    posted: dict[str, int] = field(default_factory=dict)  # key -> new entry id
    replayed: dict[str, int] = field(default_factory=dict)  # key -> entry posted before
    refused: dict[str, str] = field(default_factory=dict)  # key -> reason code


def _chunks(values: list[Any]) -> Any:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _check_postings(postings: list[tuple[int, int]]) -> None:
    if not postings:
        raise InvalidInput(N_("A ledger entry needs postings."), field="postings")
    for _, amount in postings:
        if amount == 0:
            raise InvalidInput(N_("A posting amount may not be zero."), field="postings")
        check_amount(amount, field="postings", allow_negative=True)
    total = sum(amount for _, amount in postings)
    if total != 0:
        raise InvalidInput(
            N_("The postings sum to %(total)s, not zero."), field="postings", total=total
        )


def post_entries(
    session: Session, *, entries: list[BulkEntry], actor: Actor, now: datetime
) -> BulkResult:
    """Post many balanced entries with `post_entry`'s rules, set-based, in the caller's transaction.

    For batch work (renewals, migration imports), where one `post_entry` per
    entry would cost a round of statements each. The customer prepaid
    accounts of all entries are locked `FOR UPDATE` in id order up front;
    the entries are then decided in the given order against running
    balances: a replay (key posted before with the same payload) is reported
    in `replayed`, a debit that would take a customer balance below zero is
    refused (`refused[key] = "insufficient_balance"`, nothing written for
    it), and the rest go in with one multi-row INSERT each for entries and
    postings and one UPDATE per changed account. The cap is the caller's to
    check (it depends on lines the caller is creating).
    :raises InvalidInput: a bad entry (as `post_entry`) or a key given twice.
    :raises IdempotencyConflict: a key was used before with another payload.
    :raises Conflict: another transaction posted one of the keys meanwhile;
        roll back and retry.
    """
    result = BulkResult()
    if not entries:
        return result
    keys = [_check_key(entry.idempotency_key) for entry in entries]
    if len(set(keys)) != len(keys):
        raise InvalidInput(N_("An idempotency key is given twice."), field="idempotency_key")
    for entry in entries:
        _check_postings(list(entry.postings))
    ids = sorted({account_id for entry in entries for account_id, _ in entry.postings})
    session.flush()
    connection = session.connection()
    postgres = session.get_bind().dialect.name == "postgresql"
    lock = _PG_LOCK_CUSTOMER_ACCOUNTS if postgres else _LOCK_CUSTOMER_ACCOUNTS
    read = _PG_READ_SYSTEM_ACCOUNTS if postgres else _READ_SYSTEM_ACCOUNTS
    find = _PG_FIND_ENTRIES if postgres else _FIND_ENTRIES
    accounts: dict[int, Any] = {}
    for chunk in _chunks(ids):
        accounts.update((row.id, row) for row in connection.execute(lock, {"ids": chunk}))
    for chunk in _chunks([a for a in ids if a not in accounts]):
        accounts.update((row.id, row) for row in connection.execute(read, {"ids": chunk}))
    missing = [a for a in ids if a not in accounts]
    if missing:
        raise InvalidInput(
            N_("No ledger account %(id)s."), field="postings", id=", ".join(map(str, missing[:10]))
        )
    existing: dict[str, Any] = {}
    for chunk in _chunks(keys):
        existing.update(
            (row.idempotency_key, row) for row in connection.execute(find, {"keys": chunk})
        )

    balances = {a: row.balance_minor for a, row in accounts.items() if row.kind == CUSTOMER_PREPAID}
    net: dict[int, int] = defaultdict(int)
    rows: list[dict[str, Any]] = []
    postings_of: dict[str, tuple[tuple[int, int], ...]] = {}
    for entry in entries:
        postings = list(entry.postings)
        if len({accounts[a].currency for a, _ in postings}) != 1:
            raise InvalidInput(N_("An entry's accounts must share one currency."), field="postings")
        request_hash = _request_hash(entry.kind, postings, accounts)
        before = existing.get(entry.idempotency_key)
        if before is not None:
            if before.request_hash != request_hash:
                raise IdempotencyConflict(
                    N_("Idempotency key %(key)s was already used for a different entry."),
                    key=entry.idempotency_key,
                )
            result.replayed[entry.idempotency_key] = before.id
            continue
        change: dict[int, int] = defaultdict(int)
        for account_id, amount in postings:
            change[account_id] += amount
        if any(
            delta < 0 and a in balances and balances[a] + delta < 0 for a, delta in change.items()
        ):
            result.refused[entry.idempotency_key] = "insufficient_balance"
            continue
        for account_id, delta in change.items():
            if account_id in balances:
                balances[account_id] += delta
            net[account_id] += delta
        postings_of[entry.idempotency_key] = entry.postings
        rows.append(
            {
                "kind": entry.kind,
                "idempotency_key": entry.idempotency_key,
                "request_hash": request_hash,
                "external_ref": entry.external_ref,
                "actor_kind": actor.kind,
                "actor_id": actor.id,
                "actor_label": actor.label,
                "memo": entry.memo,
                "at": now,
            }
        )
    if not rows:
        return result
    for entry_id, key in insert_rows(
        session, _ENTRIES, rows, dedupe="idempotency_key", returning=("id", "idempotency_key")
    ):
        result.posted[key] = entry_id
    if len(result.posted) != len(rows):
        raise Conflict(N_("Another posting used the same idempotency key; try again."))
    insert_rows(
        session,
        _POSTINGS,
        [
            {"entry_id": result.posted[key], "account_id": account_id, "amount_minor": amount}
            for key, postings in postings_of.items()
            for account_id, amount in postings
        ],
    )
    changed = {a: d for a, d in net.items() if d}
    if postgres:
        # The customer accounts are locked already: one UPDATE for all of them;
        # the shared system accounts one by one in id order (as post_entry).
        customers = sorted(a for a in changed if accounts[a].kind == CUSTOMER_PREPAID)
        connection.exec_driver_sql(
            "UPDATE ledger_account SET balance_minor = balance_minor + v.change"
            " FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, change)"
            " WHERE ledger_account.id = v.id",
            (customers, [changed[a] for a in customers]),
        )
        _expire_balances(session, customers)
        changed = {a: d for a, d in changed.items() if a not in set(customers)}
    if changed:
        _add_to_balances(session, connection, accounts, changed)
    return result


def customer_account_ids(
    session: Session, *, customer_ids: list[int], currency: str
) -> dict[int, int]:
    """customer id → prepaid account id, creating the missing accounts in one INSERT."""
    wanted = sorted(set(customer_ids))
    session.flush()
    connection = session.connection()
    postgres = session.get_bind().dialect.name == "postgresql"
    find = _PG_FIND_CUSTOMER_ACCOUNTS if postgres else _FIND_CUSTOMER_ACCOUNTS

    def read() -> dict[int, int]:
        found: dict[int, int] = {}
        for chunk in _chunks(wanted):
            params = {"ids": chunk, "currency": currency}
            found.update((row.customer_id, row.id) for row in connection.execute(find, params))
        return found

    found = read()
    absent = [c for c in wanted if c not in found]
    if absent:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(_ACCOUNTS).on_conflict_do_nothing(
            index_elements=["kind", "scope", "currency"]
        )
        for chunk in _chunks(absent):
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
    """One shard, at random, of a system account kind (see SYSTEM_SHARDS)."""
    return _system_account_id(session, kind, currency)


def _active_line_plans(session: Session, customer_id: int) -> list[Plan]:
    return list(
        session.exec(
            select(Plan)
            .join(Line, col(Line.plan_id) == col(Plan.id))
            .where(Line.customer_id == customer_id)
            .where(col(Line.status).not_in(FINAL_LINE_STATUSES))
        )
    )


def prepaid_cap_minor(
    session: Session, *, customer_id: int, settings_months: int, reference_monthly_minor: int
) -> int:
    """The most a customer may hold prepaid (DESIGN §5)."""
    plans = _active_line_plans(session, customer_id)
    if not plans:
        return settings_months * reference_monthly_minor
    return settings_months * sum(monthly_fee_minor(plan) for plan in plans)


def ensure_within_cap(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    cap_months: int,
    reference_monthly_minor: int,
    balance_minor: int | None = None,
) -> None:
    """Refuse a credit of `amount_minor` that would take the balance above the cap.

    :raises CapExceeded: naming the cap and the largest amount allowed now.
    """
    if balance_minor is None:
        balance_minor = customer_balance(session, customer_id=customer_id)
    cap = prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    if balance_minor + amount_minor > cap:
        allowed = max(cap - balance_minor, 0)
        raise CapExceeded(
            N_(
                "This would take the balance above the prepayment cap of %(cap)s;"
                " the largest amount allowed now is %(allowed)s."
            ),
            field="amount",
            cap=format_plain(cap),
            allowed=format_plain(allowed),
            allowed_minor=allowed,
        )


def _check_credit(amount_minor: int, source_kind: str, idempotency_key: str) -> None:
    check_amount(amount_minor)
    if source_kind not in CREDIT_SOURCES:
        raise InvalidInput(N_("Unknown source %(kind)s."), field="source_kind", kind=source_kind)
    _check_key(idempotency_key)


def credit_customer(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    source_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    cap_months: int,
    reference_monthly_minor: int,
    currency: str,
    memo: str = "",
    external_ref: str | None = None,
) -> JournalEntry:
    """Credit a customer's prepaid account from `source_kind`, refusing to pass the cap.

    Locks the customer's and the source account. Idempotent per key (a
    replay is returned even if the cap has since moved).
    :raises InvalidInput: amount not positive, or an unknown source.
    :raises CapExceeded: the balance would pass the cap; names the largest
        amount allowed now.
    :raises IdempotencyConflict: the key was used for something else.
    """
    _check_credit(amount_minor, source_kind, idempotency_key)
    customer_account = get_or_create_account(
        session, kind=CUSTOMER_PREPAID, customer_id=customer_id, currency=currency
    )
    source_id = _system_account_id(session, source_kind, currency)
    assert customer_account.id is not None
    postings = [(source_id, -amount_minor), (customer_account.id, amount_minor)]
    kind = f"credit.{source_kind}"
    locked = _lock_accounts(session, [source_id, customer_account.id])
    existing = find_entry(session, idempotency_key)
    if existing is not None:
        return _replay(existing, _request_hash(kind, postings, locked))
    ensure_within_cap(
        session,
        customer_id=customer_id,
        amount_minor=amount_minor,
        balance_minor=locked[customer_account.id].balance_minor,
        cap_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    entry = _post_locked(
        session,
        locked,
        kind=kind,
        idempotency_key=idempotency_key,
        postings=postings,
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
    )
    record_audit(
        session,
        actor=actor,
        action="ledger.credit",
        now=now,
        target_type="customer",
        target_id=customer_id,
        details={"entry_id": entry.id, "amount_minor": amount_minor, "source": source_kind},
    )
    return entry


def _customer_account_id(session: Session, customer_id: int, currency: str) -> int:
    account = get_or_create_account(
        session, kind=CUSTOMER_PREPAID, customer_id=customer_id, currency=currency
    )
    assert account.id is not None
    return account.id


def _system_account_id(session: Session, kind: str, currency: str) -> int:
    """One shard of a system account, at random (see SYSTEM_SHARDS)."""
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


def cap_headroom_minor(
    session: Session, *, customer_id: int, cap_months: int, reference_monthly_minor: int
) -> int:
    """The largest credit the customer's prepaid balance can take now (never negative)."""
    cap = prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    return max(cap - customer_balance(session, customer_id=customer_id), 0)


@dataclass(frozen=True)
class Receipt:
    """How money that arrived was booked: credited to the balance, the rest to refund."""

    entry: JournalEntry
    credited_minor: int
    excess_minor: int


def receive_money(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    source_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    cap_months: int,
    reference_monthly_minor: int,
    currency: str,
    memo: str = "",
    external_ref: str | None = None,
) -> Receipt:
    """Book money that has already arrived (a completed card payment).

    It cannot be refused, so it is credited only up to the cap (DESIGN §5);
    the excess goes to refunds payable, for the caller to refund to where it
    came from. A balance in arrears is cleared first, as with any credit.
    Idempotent per key: a replay returns the first split.
    :raises InvalidInput: amount not positive or unknown source.
    :raises IdempotencyConflict: the key was used for something else.
    """
    _check_credit(amount_minor, source_kind, idempotency_key)
    customer_id_ = _customer_account_id(session, customer_id, currency)
    source_id = _system_account_id(session, source_kind, currency)
    payable_id = _system_account_id(session, "refunds_payable", currency)
    locked = _lock_accounts(session, [customer_id_, source_id, payable_id])
    kind = f"receipt.{source_kind}"
    existing = find_entry(session, idempotency_key)
    if existing is not None:
        by_kind = dict(
            session.exec(
                select(LedgerAccount.kind, Posting.amount_minor)
                .join(LedgerAccount, col(LedgerAccount.id) == col(Posting.account_id))
                .where(Posting.entry_id == existing.id)
            ).all()
        )
        credited, excess = by_kind.get(CUSTOMER_PREPAID, 0), by_kind.get("refunds_payable", 0)
        expected = _receipt_postings(source_id, customer_id_, payable_id, amount_minor, credited)
        _replay(existing, _request_hash(kind, expected, locked))
        return Receipt(existing, credited, excess)
    cap = prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    credited = min(amount_minor, max(cap - locked[customer_id_].balance_minor, 0))
    postings = _receipt_postings(source_id, customer_id_, payable_id, amount_minor, credited)
    entry = _post_locked(
        session,
        locked,
        kind=kind,
        idempotency_key=idempotency_key,
        postings=postings,
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
    )
    record_audit(
        session,
        actor=actor,
        action="ledger.receive",
        now=now,
        target_type="customer",
        target_id=customer_id,
        details={
            "entry_id": entry.id,
            "amount_minor": amount_minor,
            "credited_minor": credited,
            "excess_minor": amount_minor - credited,
            "source": source_kind,
        },
    )
    return Receipt(entry, credited, amount_minor - credited)


def _receipt_postings(
    source_id: int, customer_id: int, payable_id: int, amount: int, credited: int
) -> list[tuple[int, int]]:
    postings = [(source_id, -amount)]
    if credited:
        postings.append((customer_id, credited))
    if amount - credited:
        postings.append((payable_id, amount - credited))
    return postings


REVENUE_KINDS = ("revenue_plans", "revenue_usage")


def charge_customer(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    revenue_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    currency: str,
    allow_arrears: bool = False,
    memo: str = "",
    external_ref: str | None = None,
) -> JournalEntry:
    """Take `amount_minor` from the prepaid balance as revenue (a renewal, usage).

    Only late usage may take the balance below zero (`allow_arrears`); the
    next credit then clears the arrears first. Idempotent per key.
    :raises InsufficientBalance: the balance does not cover it.
    """
    check_amount(amount_minor)
    if revenue_kind not in REVENUE_KINDS:
        raise InvalidInput(N_("Unknown revenue %(kind)s."), field="revenue_kind", kind=revenue_kind)
    account_id = _customer_account_id(session, customer_id, currency)
    revenue_id = _system_account_id(session, revenue_kind, currency)
    return post_entry(
        session,
        kind=f"charge.{revenue_kind}",
        idempotency_key=idempotency_key,
        postings=[(account_id, -amount_minor), (revenue_id, amount_minor)],
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
        allow_negative=frozenset({account_id}) if allow_arrears else frozenset(),
    )


def adjust_balance(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    reason: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    cap_months: int,
    reference_monthly_minor: int,
    currency: str,
) -> JournalEntry:
    """A manual correction by finance staff: signed amount, mandatory reason, audited.

    A positive adjustment is a credit like any other (the cap applies); a
    negative one may not take the balance below zero.
    :raises InvalidInput: zero amount or no reason.
    :raises CapExceeded, InsufficientBalance: refused.
    """
    reason = clean_text(reason, field="reason", max_length=500, required=True)
    check_amount(amount_minor, allow_negative=True)
    _check_key(idempotency_key)
    replay = find_entry(session, idempotency_key)
    if replay is not None and replay.memo != reason:
        raise IdempotencyConflict(
            N_("The key %(key)s was already used for a different ledger entry."),
            field="idempotency_key",
            key=idempotency_key,
        )
    if amount_minor > 0:
        entry = credit_customer(
            session,
            customer_id=customer_id,
            amount_minor=amount_minor,
            source_kind="adjustments",
            idempotency_key=idempotency_key,
            actor=actor,
            now=now,
            cap_months=cap_months,
            reference_monthly_minor=reference_monthly_minor,
            currency=currency,
            memo=reason,
        )
    else:
        account_id = _customer_account_id(session, customer_id, currency)
        adjustments_id = _system_account_id(session, "adjustments", currency)
        entry = post_entry(
            session,
            kind="debit.adjustments",
            idempotency_key=idempotency_key,
            postings=[(account_id, amount_minor), (adjustments_id, -amount_minor)],
            actor=actor,
            now=now,
            memo=reason,
        )
    if replay is not None:
        return entry  # the first call was audited
    record_audit(
        session,
        actor=actor,
        action="ledger.adjust",
        now=now,
        target_type="customer",
        target_id=customer_id,
        details={"entry_id": entry.id, "amount_minor": amount_minor, "reason": reason},
    )
    return entry


def move_to_refunds_payable(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    currency: str,
    memo: str = "",
) -> JournalEntry:
    """Take money out of the prepaid balance to be refunded (staff or exit refunds).

    :raises InsufficientBalance: the balance does not cover it.
    """
    check_amount(amount_minor)
    account_id = _customer_account_id(session, customer_id, currency)
    payable_id = _system_account_id(session, "refunds_payable", currency)
    return post_entry(
        session,
        kind="refund.request",
        idempotency_key=idempotency_key,
        postings=[(account_id, -amount_minor), (payable_id, amount_minor)],
        actor=actor,
        now=now,
        memo=memo,
    )


PAYOUT_KINDS = ("cash_stripe", "cash_offline")


def pay_out_refund(
    session: Session,
    *,
    amount_minor: int,
    cash_kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    currency: str,
    memo: str = "",
    external_ref: str | None = None,
) -> JournalEntry:
    """A refund has left: refunds payable goes down, and so does the cash."""
    check_amount(amount_minor)
    if cash_kind not in PAYOUT_KINDS:
        raise InvalidInput(N_("Unknown source %(kind)s."), field="cash_kind", kind=cash_kind)
    payable_id = _system_account_id(session, "refunds_payable", currency)
    cash_id = _system_account_id(session, cash_kind, currency)
    return post_entry(
        session,
        kind=f"refund.paid.{cash_kind}",
        idempotency_key=idempotency_key,
        postings=[(payable_id, -amount_minor), (cash_id, amount_minor)],
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
    )


@dataclass(frozen=True)
class HistoryRow:
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


def check_ledger(session: Session, *, cap_months: int, reference_monthly_minor: int) -> LedgerCheck:
    """Verify the ledger's invariants (DESIGN §5) and list every problem found."""
    problems: list[str] = []
    entries = session.exec(select(func.count()).select_from(JournalEntry)).one()
    postings = session.exec(select(func.count()).select_from(Posting)).one()
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
    sums = dict(
        session.exec(
            select(Posting.account_id, func.sum(Posting.amount_minor)).group_by(
                col(Posting.account_id)
            )
        ).all()
    )
    accounts = session.execute(sa_select(_ACCOUNTS).order_by(_ACCOUNTS.c.id)).all()
    refs = dict(session.exec(select(Customer.id, Customer.ref)).all())
    # Every customer's cap in one query (prepaid_cap_minor, set-based): the
    # monthly fees of the plans of its lines that are not final.
    fees: dict[int, int] = defaultdict(int)
    live = session.exec(
        select(Line.customer_id, Plan.price_minor, Plan.validity_days)
        .join(Plan, col(Plan.id) == col(Line.plan_id))
        .where(col(Line.status).not_in(FINAL_LINE_STATUSES))
    )
    for customer_id, price_minor, validity_days in live:
        fees[customer_id] += monthly_fee_of(price_minor, validity_days)
    for account in accounts:
        summed = int(sums.get(account.id, 0))
        name = f"account {account.id} ({account.kind} {account.scope} {account.currency})"
        if account.balance_minor != summed:
            problems.append(
                f"{name}: cached balance {account.balance_minor} but postings sum to {summed}"
            )
        if account.kind == CUSTOMER_PREPAID and account.customer_id is not None:
            monthly = fees.get(account.customer_id, reference_monthly_minor)
            cap = cap_months * monthly
            if summed > cap:
                problems.append(
                    f"customer {refs.get(account.customer_id, account.customer_id)}:"
                    f" prepaid balance {format_plain(summed)} above its cap {format_plain(cap)}"
                )
    return LedgerCheck(ok=not problems, entries=entries, postings=postings, problems=problems)
