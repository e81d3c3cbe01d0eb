"""The notification outbox: writing notices (DESIGN §11).

`notify` adds a row to the caller's transaction, so a notice exists exactly
when the change it reports committed. A `dedupe_key` (e.g.
`renewal:<period id>`) makes the same notice from a retried job one row:
the insert is `ON CONFLICT DO NOTHING` on the unique key. Sending (rendering
per locale, SMTP or the log mailer, retries) happens after commit in
app/notifications/mailer.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.core.db import insert_rows
from app.notifications.models import NOTIFICATION_KINDS, Notification


def _row(
    *,
    kind: str,
    recipient: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    customer_id: int | None = None,
    account_id: int | None = None,
    locale: str | None = "zh_Hans",
    channel: str = "email",
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """The outbox row of one notice, due at once. :raises ValueError: an unknown kind."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    return {
        "customer_id": customer_id,
        "account_id": account_id,
        "channel": channel,
        "recipient": recipient,
        "kind": kind,
        "locale": locale or "zh_Hans",
        "data": data or {},
        "subject": "",
        "body": "",
        "dedupe_key": dedupe_key,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }


def notify(
    session: Session,
    *,
    kind: str,
    recipient: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    customer_id: int | None = None,
    account_id: int | None = None,
    locale: str = "zh_Hans",
    channel: str = "email",
    dedupe_key: str | None = None,
) -> bool:
    """Queue one notice; False when `dedupe_key` was already queued (nothing written)."""
    values = _row(
        kind=kind,
        recipient=recipient,
        now=now,
        data=data,
        customer_id=customer_id,
        account_id=account_id,
        locale=locale,
        channel=channel,
        dedupe_key=dedupe_key,
    )
    table = Notification.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(**values)
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["dedupe_key"])
    # RETURNING tells a skipped row apart on both databases (a PostgreSQL
    # rowcount does not, once the insert returns the new key).
    result = session.connection().execute(statement.returning(table.c.id))
    return result.first() is not None


def notify_many(session: Session, notices: list[dict[str, Any]], *, now: datetime) -> int:
    """Queue many e-mail notices at once (`notify`'s rules), skipping dedupe keys already queued.

    Each notice gives kind, recipient, data, customer_id, account_id, locale
    and dedupe_key; returns how many were queued.
    """
    rows = [_row(now=now, **notice) for notice in notices]
    table = Notification.__table__  # type: ignore[attr-defined]
    return len(insert_rows(session, table, rows, dedupe="dedupe_key", returning=("id",)))
