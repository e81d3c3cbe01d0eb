"""Posting to the prepaid ledger (DESIGN §5): the one set of posting rules.

Rules, applied by `post_entry` (one entry) and `post_entries` (a batch)
through the same functions:

* An entry's postings are non-zero, within the amount limit and sum to
  zero; its accounts exist and share one currency. Entries are never edited
  — a correction is a new, reversing entry.
* Signs: an account's balance is the sum of its postings. A customer's
  prepaid balance is what the platform owes the customer, so a top-up
  posts +amount to `customer_prepaid` and −amount to the cash account.
* Idempotency: the same key with the same payload (kind and postings)
  returns the first entry and changes nothing; the same key with a
  different payload is `IdempotencyConflict` (409).
* Locking: the affected customer accounts are locked in primary-key order
  (`SELECT … FOR UPDATE` on PostgreSQL; SQLite already holds the write
  lock from `BEGIN IMMEDIATE`), and postings and cached balances are
  written in the same transaction.
* A debit may not take a customer's prepaid balance below zero (arrears
  come only from late usage, posted with `allow_negative`). The cap on
  credits is `app.ledger.cap`'s, checked by the credit paths before they post.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, String, any_, bindparam, delete, update
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from app.core.audit import Actor
from app.core.db import insert_rows
from app.core.errors import N_, Conflict, InvalidInput
from app.core.money import check_amount, format_plain
from app.ledger.accounts import CUSTOMER_PREPAID, in_chunks
from app.ledger.activity import MAX_TAG, add_activity
from app.ledger.errors import IdempotencyConflict, InsufficientBalance
from app.ledger.models import JournalEntry, LedgerAccount, Posting

MAX_KEY_LENGTH = 200
# Up to this many accounts (one entry's), ids bind as separate parameters.
_FEW = 8

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


@dataclass(frozen=True)
class BulkEntry:
    """One entry for `post_entries`: (account id, signed amount) postings summing to zero."""

    kind: str
    idempotency_key: str
    postings: tuple[tuple[int, int], ...]
    memo: str = ""
    external_ref: str | None = None
    # Late usage may take the customer's balance below zero (arrears, DESIGN §5).
    allow_arrears: bool = False
    tag: str = ""


@dataclass
class BulkResult:
    posted: dict[str, int] = field(default_factory=dict)  # key -> new entry id
    replayed: dict[str, int] = field(default_factory=dict)  # key -> entry posted before
    refused: dict[str, str] = field(default_factory=dict)  # key -> reason code


# -- the rules ------------------------------------------------------------------------


def check_key(key: str) -> str:
    """`key` if it is a usable idempotency key (1 to MAX_KEY_LENGTH characters, not blank).

    :raises InvalidInput: otherwise.
    """
    if not key or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            N_("An idempotency key of 1 to %(max)s characters is required."),
            field="idempotency_key",
            max=MAX_KEY_LENGTH,
        )
    return key


def _check_postings(postings: Sequence[tuple[int, int]]) -> None:
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


def _check_accounts(account_ids: Iterable[int], accounts: dict[int, Any]) -> None:
    # Membership per id: `set - dict.keys()` would copy every key of `accounts`
    # on each call, quadratic over a batch.
    missing = sorted({a for a in account_ids if a not in accounts})
    if missing:
        raise InvalidInput(
            N_("No ledger account %(id)s."), field="postings", id=", ".join(map(str, missing[:10]))
        )


def request_hash(kind: str, postings: Sequence[tuple[int, int]], accounts: dict[int, Any]) -> str:
    """The payload's fingerprint, stored with the entry and compared on a replay.

    Accounts count by what they are, not by shard, so a replay that happens
    to pick another shard of a system account still matches.
    """
    named = sorted(
        [accounts[a].kind, accounts[a].customer_id, accounts[a].currency, m] for a, m in postings
    )
    payload = json.dumps([kind, named], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _fingerprint(kind: str, postings: Sequence[tuple[int, int]], accounts: dict[int, Any]) -> str:
    """Check that the entry's accounts exist and share a currency; its request hash."""
    _check_accounts((a for a, _ in postings), accounts)
    if len({accounts[a].currency for a, _ in postings}) != 1:
        raise InvalidInput(N_("An entry's accounts must share one currency."), field="postings")
    return request_hash(kind, postings, accounts)


def replay(entry: Any, request_hash: str) -> Any:
    """`entry` (posted before under the same key) if its payload matches `request_hash`.

    :raises IdempotencyConflict: it was posted with another payload.
    """
    if entry.request_hash != request_hash:
        raise IdempotencyConflict(
            N_("The key %(key)s was already used for a different ledger entry."),
            field="idempotency_key",
            key=entry.idempotency_key,
        )
    return entry


def _net(postings: Iterable[tuple[int, int]]) -> dict[int, int]:
    net: dict[int, int] = defaultdict(int)
    for account_id, amount in postings:
        net[account_id] += amount
    return net


def _shortfall(
    net: dict[int, int], balances: dict[int, int], allow_negative: frozenset[int]
) -> int | None:
    """The customer account `net` would take below zero, if any.

    `balances` holds the customer prepaid accounts' balances. Only a debit
    is refused: a credit to a balance in arrears clears them first.
    """
    for account_id, change in net.items():
        balance = balances.get(account_id)
        if (
            balance is not None
            and change < 0
            and balance + change < 0
            and account_id not in allow_negative
        ):
            return account_id
    return None


def _customer_balances(accounts: dict[int, Any]) -> dict[int, int]:
    return {a: row.balance_minor for a, row in accounts.items() if row.kind == CUSTOMER_PREPAID}


def _entry_row(
    *,
    kind: str,
    idempotency_key: str,
    request_hash: str,
    actor: Actor,
    now: datetime,
    memo: str,
    external_ref: str | None,
    tag: str = "",
) -> dict[str, Any]:
    if len(tag) > MAX_TAG:
        raise InvalidInput(
            N_("A ledger entry's tag has at most %(max)s characters."), field="tag", max=MAX_TAG
        )
    return {
        "kind": kind,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "external_ref": external_ref,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "memo": memo,
        "at": now,
        "tag": tag,
    }


# -- reading and writing --------------------------------------------------------------


def lock_accounts(session: Session, account_ids: Iterable[int]) -> dict[int, Any]:
    """Lock the customer accounts among `account_ids` in primary-key order; read the rest.

    Returns plain rows (id, kind, customer_id, scope, currency,
    balance_minor) read afresh; unknown ids are absent. System accounts
    (cash, revenue, refunds payable) take part in nearly every entry, so
    they are not locked here: the posting functions change their balances
    with one atomic UPDATE each as their last statements, and their rows are
    held only from that UPDATE to the commit. Their cached balance is never
    read to decide anything.

    The posting path runs Core statements on the session's connection: the
    ORM's per-statement work was most of its CPU time (bench/bench_postings.py).
    """
    ids = sorted(set(account_ids))
    session.flush()  # Core statements follow: the ORM's pending rows go first
    connection = session.connection()
    # A batch's ids go to PostgreSQL as one array; one entry's few ids bind
    # faster as separate parameters (bench/bench_postings.py).
    arrays = len(ids) > _FEW and session.get_bind().dialect.name == "postgresql"
    lock = _PG_LOCK_CUSTOMER_ACCOUNTS if arrays else _LOCK_CUSTOMER_ACCOUNTS
    read = _PG_READ_SYSTEM_ACCOUNTS if arrays else _READ_SYSTEM_ACCOUNTS
    accounts: dict[int, Any] = {}
    for chunk in in_chunks(ids):
        accounts.update((row.id, row) for row in connection.execute(lock, {"ids": chunk}))
    rest = [a for a in ids if a not in accounts]
    for chunk in in_chunks(rest):
        accounts.update((row.id, row) for row in connection.execute(read, {"ids": chunk}))
    return accounts


def find_entry(session: Session, key: str) -> JournalEntry | None:
    """The entry posted under an idempotency key, if any."""
    return session.exec(select(JournalEntry).where(JournalEntry.idempotency_key == key)).first()


def _find_entries(session: Session, keys: list[str]) -> dict[str, Any]:
    """key → (id, idempotency_key, request_hash) of the entries posted under `keys`."""
    postgres = session.get_bind().dialect.name == "postgresql"
    find = _PG_FIND_ENTRIES if postgres else _FIND_ENTRIES
    connection = session.connection()
    found: dict[str, Any] = {}
    for chunk in in_chunks(keys):
        found.update(
            (row.idempotency_key, row) for row in connection.execute(find, {"keys": chunk})
        )
    return found


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


def _add_to_balances_in_bulk(
    session: Session, connection: Connection, accounts: dict[int, Any], net: dict[int, int]
) -> None:
    """`_add_to_balances` for a batch: on PostgreSQL one UPDATE for all customer accounts."""
    changed = {a: d for a, d in net.items() if d}
    if session.get_bind().dialect.name == "postgresql":
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
        done = set(customers)
        changed = {a: d for a, d in changed.items() if a not in done}
    if changed:
        _add_to_balances(session, connection, accounts, changed)


def _expire_balances(session: Session, account_ids: list[int]) -> None:
    """Expire the balance of any loaded LedgerAccount among `account_ids` (changed by Core)."""
    for account_id in account_ids:
        loaded = session.identity_map.get(session.identity_key(LedgerAccount, account_id))
        if loaded is not None:
            session.expire(loaded, ["balance_minor"])


def _write_postings(
    session: Session,
    connection: Connection,
    entries: Sequence[tuple[int, Sequence[tuple[int, int]]]],
) -> None:
    """INSERT the postings of (entry id, postings) pairs: a multi-row statement for a batch."""
    rows = [
        {"entry_id": entry_id, "account_id": account_id, "amount_minor": amount}
        for entry_id, postings in entries
        for account_id, amount in postings
    ]
    if len(entries) == 1:
        connection.execute(_INSERT_POSTINGS, rows)
    else:
        insert_rows(session, _POSTINGS, rows)


# -- posting --------------------------------------------------------------------------


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
    tag: str = "",
) -> JournalEntry:
    """Post one balanced entry: postings plus cached balances, in the caller's transaction.

    Locks the affected accounts in primary-key order. Idempotent per key,
    also against a concurrent transaction posting the same key (the unique
    index makes this one wait, then return the first entry).
    :raises InvalidInput: no postings, a zero amount, postings that do not sum
        to zero, an unknown account or mixed currencies.
    :raises IdempotencyConflict: the key was used with a different payload.
    :raises InsufficientBalance: a customer prepaid balance would go below
        zero and its account is not in `allow_negative`.
    """
    check_key(idempotency_key)
    _check_postings(postings)
    accounts = lock_accounts(session, [account_id for account_id, _ in postings])
    return post_locked(
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
        tag=tag,
    )


def post_locked(
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
    tag: str = "",
) -> JournalEntry:
    """`post_entry` once its key and postings are checked and `accounts` locked by
    `lock_accounts`.

    Callers that lock first to decide (the cap) pass their accounts here
    instead of locking them a second time. Raises as `post_entry`; on a
    refusal nothing of the entry is left in the transaction.
    """
    fingerprint = _fingerprint(kind, postings, accounts)
    # The entry row goes in first: a key already used (committed, or being
    # committed by a concurrent transaction, which the unique index waits
    # for) means a replay, whatever the balances are now.
    connection = session.connection()
    values = _entry_row(
        kind=kind,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        actor=actor,
        now=now,
        memo=memo,
        external_ref=external_ref,
        tag=tag,
    )
    entry = _insert_entry(session, connection, values)
    if entry is None:
        winner = find_entry(session, idempotency_key)
        assert winner is not None
        return replay(winner, fingerprint)
    net = _net(postings)
    short = _shortfall(net, _customer_balances(accounts), allow_negative)
    if short is not None:
        # Take the entry row back out, so a caller that carries on after
        # the refusal does not commit an entry without postings.
        connection.execute(delete(_ENTRIES).where(_ENTRIES.c.id == entry.id))
        session.expunge(entry)
        raise InsufficientBalance(
            N_("The balance %(balance)s is less than %(amount)s."),
            balance=format_plain(accounts[short].balance_minor),
            amount=format_plain(-net[short]),
        )
    assert entry.id is not None
    _write_postings(session, connection, [(entry.id, postings)])
    _add_to_balances(session, connection, accounts, net)
    add_activity(connection, accounts, [(tag, postings)], now=now)
    return entry


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
    keys = [check_key(entry.idempotency_key) for entry in entries]
    if len(set(keys)) != len(keys):
        raise InvalidInput(N_("An idempotency key is given twice."), field="idempotency_key")
    for entry in entries:
        _check_postings(entry.postings)
    ids = {account_id for entry in entries for account_id, _ in entry.postings}
    accounts = lock_accounts(session, ids)
    _check_accounts(ids, accounts)
    existing = _find_entries(session, keys)
    rows, net = _decide(entries, accounts, existing, result, actor=actor, now=now)
    if not rows:
        return result
    for entry_id, key in insert_rows(
        session, _ENTRIES, rows, dedupe="idempotency_key", returning=("id", "idempotency_key")
    ):
        result.posted[key] = entry_id
    if len(result.posted) != len(rows):
        raise Conflict(N_("Another posting used the same idempotency key; try again."))
    connection = session.connection()
    written = [entry for entry in entries if entry.idempotency_key in result.posted]
    posted = [(result.posted[entry.idempotency_key], entry.postings) for entry in written]
    _write_postings(session, connection, posted)
    _add_to_balances_in_bulk(session, connection, accounts, net)
    add_activity(connection, accounts, [(e.tag, e.postings) for e in written], now=now)
    return result


def _decide(
    entries: list[BulkEntry],
    accounts: dict[int, Any],
    existing: dict[str, Any],
    result: BulkResult,
    *,
    actor: Actor,
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Apply the rules to each entry in order, against running customer balances.

    Replays and refusals go into `result`; returns the entry rows to insert
    and the net change of every account.
    """
    balances = _customer_balances(accounts)
    net: dict[int, int] = defaultdict(int)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        fingerprint = _fingerprint(entry.kind, entry.postings, accounts)
        before = existing.get(entry.idempotency_key)
        if before is not None:
            result.replayed[entry.idempotency_key] = replay(before, fingerprint).id
            continue
        change = _net(entry.postings)
        allowed = frozenset(change) if entry.allow_arrears else frozenset()
        if _shortfall(change, balances, allowed) is not None:
            result.refused[entry.idempotency_key] = InsufficientBalance.code
            continue
        for account_id, delta in change.items():
            if account_id in balances:
                balances[account_id] += delta
            net[account_id] += delta
        rows.append(
            _entry_row(
                kind=entry.kind,
                idempotency_key=entry.idempotency_key,
                request_hash=fingerprint,
                actor=actor,
                now=now,
                memo=entry.memo,
                external_ref=entry.external_ref,
                tag=entry.tag,
            )
        )
    return rows, net
