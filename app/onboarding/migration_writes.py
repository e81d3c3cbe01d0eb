"""The set-based writes of a checked subscribers migration file.

The rules are in app/onboarding/migration.py. `write_rows` inserts the
customers, lines, periods and audit rows with one bulk statement each
(PostgreSQL: COPY), takes the numbers and SIMs with one conditional UPDATE
per chunk, and credits the opening balances through the ledger's
`post_entries`. A number, SIM or ref taken by someone else after the
checks raises `Changed`; the caller's savepoint then undoes everything.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, and_, func, insert, or_, select, update
from sqlalchemy import text as sql_text
from sqlmodel import Session

from app.charging.models import LinePeriod
from app.charging.periods import allowances, period_length
from app.core.audit import Actor, AuditEntry
from app.core.pii import PiiCipher, mask_id_number
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.posting import BulkEntry, post_entries
from app.onboarding.migration_checks import among, opening_balance_key
from app.onboarding.migration_rows import ImportRow, customers
from app.subscribers.models import Customer, Line
from numbering.models import PhoneNumber, Sim

ENTRY_KIND = "opening_balance"
SOURCE_KIND = "adjustments"
# Who took an imported number (numbering keeps `reserved_by` on an assigned number).
NUMBER_HOLDER = "subscribers-import"


class Changed(Exception):
    """A number or SIM was taken (or a ref created) by someone else after the checks."""


def _new_ids(session: Session, table: Any, count: int) -> list[int]:
    """`count` fresh primary keys of `table`, so rows can be inserted without RETURNING.

    PostgreSQL: drawn from the column's sequence (safe beside concurrent
    inserts). SQLite: after the largest id, which is safe because the write
    transaction (BEGIN IMMEDIATE) excludes every other writer.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        drawn = connection.execute(
            sql_text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": count},
        )
        return [int(value) for value in drawn.scalars()]
    largest = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar() or 0
    return list(range(int(largest) + 1, int(largest) + 1 + count))


def _insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows (dicts with the same keys) the fastest way each backend has.

    PostgreSQL: COPY on the session's own connection (same transaction);
    building multi-row INSERTs with tens of thousands of parameters cost
    more than the database's own work. SQLite: one executemany.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    import psycopg

    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    names = ", ".join(f'"{name}"' for name in columns)
    driver: Any = connection.connection.driver_connection
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(
                    [json.dumps(row[c]) if c in json_columns else row[c] for c in columns]
                )
    except psycopg.errors.IntegrityError:
        # A ref or number committed by another transaction after our checks.
        raise Changed from None


def _update_among(session: Session, statement: Any, column: Any, values: list[str]) -> int:
    """Run a bulk UPDATE for the rows whose `column` is one of `values`; rows changed."""
    changed = 0
    for clause in among(session, column, values):
        result = session.connection().execute(statement.where(clause))
        changed += int(result.rowcount or 0)
    return changed


def _insert_customers(
    session: Session, grouped: dict[str, list[ImportRow]], *, cipher: PiiCipher, now: datetime
) -> tuple[dict[str, int], dict[str, str]]:
    """One customer per ref; returns (ref → id, ref → masked ID number)."""
    customers_table = Customer.__table__  # type: ignore[attr-defined]
    customer_ids = dict(zip(grouped, _new_ids(session, customers_table, len(grouped)), strict=True))
    customer_rows: list[dict[str, Any]] = []
    masked: dict[str, str] = {}
    for ref, own in grouped.items():
        first = own[0]
        masked[ref] = mask_id_number(first.id_number)
        customer_rows.append(
            {
                "id": customer_ids[ref],
                "ref": ref,
                "name": first.name,
                "email": first.email,
                "subscriber_account_id": None,
                "id_type": first.id_type,
                "id_number_enc": cipher.encrypt(first.id_number),
                "id_number_masked": masked[ref],
                "created_at": now,
            }
        )
    _insert_rows(session, customers_table, customer_rows)
    return customer_ids, masked


def _take_numbers_and_sims(session: Session, rows: list[ImportRow], *, now: datetime) -> None:
    """Assign every row's number and activate its SIM, or raise `Changed` if one is not free."""
    numbers_table = PhoneNumber.__table__  # type: ignore[attr-defined]
    sims_table = Sim.__table__  # type: ignore[attr-defined]
    free = or_(
        numbers_table.c.status == "available",
        and_(numbers_table.c.status == "reserved", numbers_table.c.reserved_until <= now),
    )
    msisdns = [row.msisdn for row in rows]
    taken = _update_among(
        session,
        update(numbers_table)
        .where(free)
        .values(
            status="assigned",
            reserved_by=NUMBER_HOLDER,
            reserved_until=None,
            status_changed_at=now,
        ),
        numbers_table.c.msisdn,
        msisdns,
    )
    iccids = [row.iccid for row in rows]
    activated = _update_among(
        session,
        update(sims_table)
        .where(sims_table.c.status == "in_stock")
        .values(status="active", status_changed_at=now),
        sims_table.c.iccid,
        iccids,
    )
    if taken != len(msisdns) or activated != len(iccids):
        raise Changed
    for instance in list(session.identity_map.values()):
        if isinstance(instance, PhoneNumber | Sim):
            session.expire(instance)


def _insert_lines(
    session: Session, rows: list[ImportRow], customer_ids: dict[str, int], *, now: datetime
) -> None:
    """An active line per row and its first period, with the plan's allowances."""
    lines_table = Line.__table__  # type: ignore[attr-defined]
    line_rows = []
    line_ids = dict(
        zip([row.msisdn for row in rows], _new_ids(session, lines_table, len(rows)), strict=True)
    )
    for row in rows:
        assert row.plan is not None and row.period_start is not None
        line_rows.append(
            {
                "id": line_ids[row.msisdn],
                "customer_id": customer_ids[row.ref],
                "msisdn": row.msisdn,
                "plan_id": row.plan.id,
                "next_plan_id": None,
                "sim_id": row.sim_id,
                "status": "active",
                "auto_renew": row.plan.auto_renew_default,
                "period_end": row.period_start + period_length(row.plan),
                "service_started_at": row.period_start,
                "period_gap_at": None,
                "created_at": now,
                "status_changed_at": now,
            }
        )
    _insert_rows(session, lines_table, line_rows)

    period_rows = []
    for row in rows:
        assert row.plan is not None and row.period_start is not None
        period_rows.append(
            {
                "line_id": line_ids[row.msisdn],
                "plan_id": row.plan.id,
                "start": row.period_start,
                "end": row.period_start + period_length(row.plan),
                "price_minor": row.plan.price_minor,
                **allowances(row.plan),
                "data_kb_used": 0,
                "voice_s_used": 0,
                "sms_used": 0,
                "entry_id": None,
                "created_at": now,
            }
        )
    _insert_rows(session, LinePeriod.__table__, period_rows)  # type: ignore[attr-defined]


def _insert_customer_audits(
    session: Session,
    grouped: dict[str, list[ImportRow]],
    *,
    masked: dict[str, str],
    balances: dict[str, int],
    entry_ids: dict[str, int],
    filename: str,
    actor: Actor,
    now: datetime,
) -> None:
    """One `customer.import` audit record per customer."""
    audit_rows = [
        {
            "at": now,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_label": actor.label,
            "action": "customer.import",
            "target_type": "customer",
            "target_id": ref,
            "details": {
                "file": filename,
                "lines": [row.msisdn for row in own],
                "id_type": own[0].id_type,
                "id_number": masked[ref],
                "opening_balance_minor": balances[ref],
                "entry_id": entry_ids.get(ref),
            },
            "ip": None,
        }
        for ref, own in grouped.items()
    ]
    _insert_rows(session, AuditEntry.__table__, audit_rows)  # type: ignore[attr-defined]


def write_rows(
    session: Session,
    rows: list[ImportRow],
    *,
    filename: str,
    cipher: PiiCipher,
    currency: str,
    actor: Actor,
    now: datetime,
) -> dict[str, int]:
    """Insert and update everything for checked rows; returns customer ref → id.

    Run it inside a savepoint: it writes part of the file before it can
    tell that a number or SIM was taken meanwhile.
    :raises Changed: a number, SIM, ref or opening-balance key taken after
        the checks (an IntegrityError of the inserts may surface as well).
    """
    grouped = customers(rows)
    customer_ids, masked = _insert_customers(session, grouped, cipher=cipher, now=now)
    _take_numbers_and_sims(session, rows, now=now)
    _insert_lines(session, rows, customer_ids, now=now)
    balances = {ref: sum(row.balance_minor or 0 for row in own) for ref, own in grouped.items()}
    entry_ids = _credit_opening_balances(
        session,
        balances={customer_ids[ref]: (ref, amount) for ref, amount in balances.items() if amount},
        filename=filename,
        currency=currency,
        actor=actor,
        now=now,
    )
    _insert_customer_audits(
        session,
        grouped,
        masked=masked,
        balances=balances,
        entry_ids=entry_ids,
        filename=filename,
        actor=actor,
        now=now,
    )
    return customer_ids


def _credit_opening_balances(
    session: Session,
    *,
    balances: dict[int, tuple[str, int]],
    filename: str,
    currency: str,
    actor: Actor,
    now: datetime,
) -> dict[str, int]:
    """One `opening_balance` entry per customer with money; returns ref → entry id."""
    if not balances:
        return {}
    accounts = customer_account_ids(session, customer_ids=list(balances), currency=currency)
    source_id = system_account_id(session, kind=SOURCE_KIND, currency=currency)
    entries = [
        BulkEntry(
            kind=ENTRY_KIND,
            idempotency_key=opening_balance_key(ref),
            postings=((source_id, -amount), (accounts[customer_id], amount)),
            memo=f"opening balance migrated from {filename}"[:500],
            external_ref=ref,
        )
        for customer_id, (ref, amount) in balances.items()
    ]
    result = post_entries(session, entries=entries, actor=actor, now=now)
    if result.replayed or result.refused or len(result.posted) != len(entries):
        # New customers cannot have an opening balance yet: a key was used before.
        raise Changed
    return {key.removeprefix("import:"): entry_id for key, entry_id in result.posted.items()}
