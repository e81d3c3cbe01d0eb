"""System accounts' postings summed per quarter-hour and tag (`ledger_activity`).

Rules:

* Every posting to a system account (any kind but `customer_prepaid`) is
  added, by the posting functions in the posting's own transaction, to the
  row of (account, quarter-hour of the entry's `at`, the entry's tag):
  the amount and the number of postings. Customer accounts are not
  summed: their history is the postings themselves.
* A **tag** is what the poster says the money was for, at most 60
  characters; the ledger only keeps it. The tags in use are named here:
  `plan:<CODE>` for a plan's sale (the store order, a renewal), `addon`
  for an add-on; everything else posts with no tag ("").
* Quarter-hours are counted from 1970-01-01T00:00Z (`bucket_of`). Every
  time zone in use has an offset in whole quarter-hours, so a local day or
  month is a whole number of buckets.
* Rows are only ever added to (`INSERT … ON CONFLICT DO UPDATE`), after
  the balances, in (account, bucket, tag) order, like the balances' own
  updates: a system account's row of the current quarter-hour is held from
  there to the commit, as its balance row is.

`mvno ledger check` verifies that the rows equal the postings they sum.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from app.ledger.accounts import CUSTOMER_PREPAID

QUARTER_HOUR_S = 900
MAX_TAG = 60
ADDON_TAG = "addon"
_PLAN_PREFIX = "plan:"

_UPSERT = text(
    "INSERT INTO ledger_activity (account_id, bucket, tag, amount_minor, postings)"
    " VALUES (:account_id, :bucket, :tag, :amount_minor, :postings)"
    " ON CONFLICT (account_id, bucket, tag) DO UPDATE SET"
    " amount_minor = ledger_activity.amount_minor + excluded.amount_minor,"
    " postings = ledger_activity.postings + excluded.postings"
)


def bucket_of(at: datetime) -> int:
    """The quarter-hour (since the epoch, UTC) containing the instant `at`."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the ledger's activity")
    seconds = int((at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    return seconds // QUARTER_HOUR_S


def bucket_sql(dialect: str, column: str) -> str:
    """SQL: the quarter-hour of the UTC instant in `column` (`bucket_of` in the database)."""
    if dialect == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / 900) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER) / 900"


def plan_tag(code: str) -> str:
    """The tag of a sale of the plan `code`."""
    return (_PLAN_PREFIX + code)[:MAX_TAG]


def plan_of_tag(tag: str) -> str | None:
    """The plan code a tag names (`plan_tag`), or None."""
    return tag[len(_PLAN_PREFIX) :] if tag.startswith(_PLAN_PREFIX) else None


def add_activity(
    connection: Connection,
    accounts: dict[int, Any],
    entries: Iterable[tuple[str, Sequence[tuple[int, int]]]],
    *,
    now: datetime,
) -> None:
    """Add the system-account postings of (tag, postings) entries posted at `now`."""
    bucket = bucket_of(now)
    sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for tag, postings in entries:
        for account_id, amount in postings:
            if accounts[account_id].kind != CUSTOMER_PREPAID:
                row = sums[(account_id, tag)]
                row[0] += amount
                row[1] += 1
    if sums:
        connection.execute(
            _UPSERT,
            [
                {
                    "account_id": account_id,
                    "bucket": bucket,
                    "tag": tag,
                    "amount_minor": amount,
                    "postings": count,
                }
                for (account_id, tag), (amount, count) in sorted(sums.items())
            ],
        )
