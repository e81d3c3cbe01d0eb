"""Retail rating of usage records against period allowances (DESIGN §9).

Mediation (`app/usage`) hands over its checked, deduplicated records as the
table `usage_in(line, record_id, msisdn, service, t, quantity)` of a DuckDB
connection (`t` in microseconds since the epoch, UTC). `rate_usage` then:

1. reads from the database the periods of those numbers' lines that
   overlap the records' time span, locked on PostgreSQL (`FOR UPDATE`), with
   their allowances left and their plan's overage prices;
2. gives each record the period containing its `start_time` — a late
   record for an earlier period uses that period's remainder, also after a
   renewal; a record in no period is `no_active_line`;
3. walks the allowances set-based: per period and service, records in
   `start_time` order (ties by `record_id`) take what the running sum of
   billable quantities before them leaves; a record crossing the end of the
   allowance is split into `within` and `over`;
4. prices the overage per record, rounded up (ceiling) in minor units:
   data `ceil(kb × price_per_mb / 1024)`, voice `ceil(s × price_per_min /
   60)`, SMS `count × price`;
5. adds what was used to the periods' counters and to the lines' days
   (`app.charging.usage_days`), and debits the overage from
   the prepaid ledger, one journal entry per line (key `<key>:<line id>`),
   which may take the balance below zero; customers left in arrears have
   their active lines suspended (`app.charging.arrears`).

Billable quantities: data `ceil(bytes / 1024)` KB, voice `ceil(seconds /
increment) × increment` seconds (the plan's `voice_increment_s`), SMS the
count. The results are the table `usage_rated` (one row per record: its
columns of `usage_in` and `line_id`, `customer_id`, `period_id`,
`currency`, `billable`, `within`, `over`, `charge_minor`) and
`usage_unrated(line)` for records that found no period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

from app.charging.arrears import suspend_lines_in_arrears
from app.charging.usage_days import add_usage_days
from app.core.audit import Actor
from app.core.db import UTCDateTime
from app.ledger.accounts import customer_account_ids, in_chunks, system_account_id
from app.ledger.posting import BulkEntry, post_entries

ENTRY_KIND = "charge.revenue_usage"
REVENUE_KIND = "revenue_usage"

_PERIOD_COLUMNS = (
    "msisdn",
    "line_id",
    "customer_id",
    "period_id",
    "start_us",
    "end_us",
    "data_left",
    "voice_left",
    "sms_left",
    "data_price",
    "voice_price",
    "sms_price",
    "increment",
    "currency",
    "first_us",
)
_PERIODS_SQL = """
SELECT l.msisdn, l.id, l.customer_id, p.id, p.start, p."end",
       p.data_kb - p.data_kb_used, p.voice_s - p.voice_s_used, p.sms - p.sms_used,
       pl.overage_data_per_mb_minor, pl.overage_voice_per_min_minor, pl.overage_sms_minor,
       pl.voice_increment_s, pl.currency,
       (SELECT min(f.start) FROM line_period f WHERE f.line_id = l.id)
FROM line l
JOIN line_period p ON p.line_id = l.id
JOIN plan pl ON pl.id = p.plan_id
WHERE l.msisdn IN :msisdns AND p."end" > :first AND p.start <= :last
ORDER BY p.id
"""

# The allowance walk and the overage price of each record, in DuckDB.
_WALK_SQL = """
CREATE OR REPLACE TEMP TABLE usage_rated AS
WITH matched AS (
    SELECT u.*, p.line_id, p.customer_id, p.period_id, p.currency,
           CASE u.service WHEN 'data' THEN (u.quantity + 1023) // 1024
                          WHEN 'voice'
                          THEN (u.quantity + p.increment - 1) // p.increment * p.increment
                          ELSE u.quantity END AS billable,
           CASE u.service WHEN 'data' THEN p.data_left WHEN 'voice' THEN p.voice_left
                          ELSE p.sms_left END AS left_before,
           CASE u.service WHEN 'data' THEN p.data_price WHEN 'voice' THEN p.voice_price
                          ELSE p.sms_price END AS price
    FROM usage_in u
    JOIN rating_periods p ON p.msisdn = u.msisdn AND u.t >= p.start_us AND u.t < p.end_us
    {first_period}
), walked AS (
    SELECT *, sum(billable) OVER (
        PARTITION BY period_id, service ORDER BY t, record_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - billable AS used_before
    FROM matched
), split AS (
    SELECT *, least(billable, greatest(left_before - used_before, 0)) AS within FROM walked
)
SELECT * EXCLUDE (left_before, price, used_before), billable - within AS over,
       CAST(CASE service
           WHEN 'data' THEN (CAST(billable - within AS HUGEINT) * price + 1023) // 1024
           WHEN 'voice' THEN (CAST(billable - within AS HUGEINT) * price + 59) // 60
           ELSE CAST(billable - within AS HUGEINT) * price END AS BIGINT) AS charge_minor
FROM split
"""
# Where periods of one number overlap in time, a record takes the first of them.
_FIRST_PERIOD = "QUALIFY row_number() OVER (PARTITION BY u.line ORDER BY p.period_id) = 1"
_OVERLAPS_SQL = """
SELECT count(*) FROM (
    SELECT start_us, max(end_us) OVER (
        PARTITION BY msisdn ORDER BY start_us, period_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ended
    FROM rating_periods
) WHERE ended > start_us
"""


def _walk_sql(con: Any) -> str:
    """The walk, choosing among overlapping periods only when some overlap."""
    overlaps = int(con.execute(_OVERLAPS_SQL).fetchone()[0])
    return _WALK_SQL.format(first_period=_FIRST_PERIOD if overlaps else "")


@dataclass(frozen=True)
class RatingResult:
    """What rating did: records rated and unrated, overage charged, lines suspended."""

    rated: int
    unrated: int
    charge_minor: int
    entries: int
    suspended_lines: tuple[int, ...]


def _utc(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _micros(value: Any) -> int:
    if isinstance(value, str):  # SQLite returns the stored text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def load_periods(session: Session, con: Any, *, source: str = "usage_in") -> None:
    """Copy the periods the records of DuckDB's `source` can fall in into `rating_periods`.

    Also `rating_chargeable(line)`: the rows of `source` a period contains.
    Mediation calls this before it decides duplicates (a record id charged
    once is the occurrence that can be charged), then `rate_usage` with
    `periods_loaded`.
    """
    assert source.isidentifier()
    span = con.execute(f"SELECT min(t), max(t) FROM {source}").fetchone()  # noqa: S608
    msisdns = [
        m
        for (m,) in con.execute(f"SELECT DISTINCT msisdn FROM {source}").fetchall()  # noqa: S608
    ]
    columns: dict[str, list[Any]] = {name: [] for name in _PERIOD_COLUMNS}
    if msisdns:
        postgres = session.get_bind().dialect.name == "postgresql"
        sql = _PERIODS_SQL + (" FOR UPDATE OF p" if postgres else "")
        statement = text(sql).bindparams(
            bindparam("msisdns", expanding=True),
            bindparam("first", type_=UTCDateTime()),
            bindparam("last", type_=UTCDateTime()),
        )
        connection = session.connection()
        for chunk in in_chunks(msisdns):
            params = {"msisdns": chunk, "first": _utc(span[0]), "last": _utc(span[1])}
            for row in connection.execute(statement, params):
                values = list(row)
                values[4], values[5] = _micros(values[4]), _micros(values[5])
                values[-1] = _micros(values[-1])
                for name, value in zip(_PERIOD_COLUMNS, values, strict=True):
                    columns[name].append(value)
    selects = ", ".join(f"unnest(${i + 1}) AS {name}" for i, name in enumerate(_PERIOD_COLUMNS))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE rating_periods AS SELECT {selects}",
        [columns[name] for name in _PERIOD_COLUMNS],
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE rating_chargeable AS SELECT DISTINCT u.line
            FROM {source} u JOIN rating_periods p
            ON p.msisdn = u.msisdn AND u.t >= p.start_us AND u.t < p.end_us"""  # noqa: S608
    )


_ADD_USED = text(
    "UPDATE line_period SET data_kb_used = data_kb_used + :data,"
    " voice_s_used = voice_s_used + :voice, sms_used = sms_used + :sms WHERE id = :period"
)

_ADD_USED_ARRAYS = text(
    "UPDATE line_period p SET data_kb_used = p.data_kb_used + u.data,"
    " voice_s_used = p.voice_s_used + u.voice, sms_used = p.sms_used + u.sms"
    " FROM unnest(CAST(:periods AS integer[]), CAST(:data AS bigint[]),"
    " CAST(:voice AS bigint[]), CAST(:sms AS bigint[])) AS u(period, data, voice, sms)"
    " WHERE p.id = u.period"
)


def _add_to_counters(session: Session, con: Any) -> None:
    rows = con.execute(
        """SELECT period_id,
                  sum(CASE WHEN service = 'data' THEN within ELSE 0 END),
                  sum(CASE WHEN service = 'voice' THEN within ELSE 0 END),
                  sum(CASE WHEN service = 'sms' THEN within ELSE 0 END)
           FROM usage_rated GROUP BY period_id HAVING sum(within) > 0 ORDER BY period_id"""
    ).fetchall()
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":  # one statement, not one per period
        periods, data, voice, sms = (
            [int(value) for value in column] for column in zip(*rows, strict=True)
        )
        session.connection().execute(
            _ADD_USED_ARRAYS, {"periods": periods, "data": data, "voice": voice, "sms": sms}
        )
        return
    session.connection().execute(
        _ADD_USED,
        [{"period": p, "data": int(d), "voice": int(v), "sms": int(s)} for p, d, v, s in rows],
    )


def _post_charges(
    session: Session, con: Any, *, key: str, memo: str, actor: Actor, now: datetime
) -> tuple[int, int, list[int]]:
    """One usage entry per line with overage; returns (total charged, entries, customers)."""
    rows = con.execute(
        """SELECT line_id, customer_id, currency, sum(charge_minor) FROM usage_rated
           GROUP BY line_id, customer_id, currency HAVING sum(charge_minor) > 0
           ORDER BY line_id, currency"""
    ).fetchall()
    by_currency: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for line_id, customer_id, currency, amount in rows:
        by_currency[currency].append((int(line_id), int(customer_id), int(amount)))
    total = 0
    for currency, charges in sorted(by_currency.items()):
        accounts = customer_account_ids(
            session, customer_ids=[c for _, c, _ in charges], currency=currency
        )
        revenue = system_account_id(session, kind=REVENUE_KIND, currency=currency)
        suffix = f":{currency}" if len(by_currency) > 1 else ""
        entries = [
            BulkEntry(
                kind=ENTRY_KIND,
                idempotency_key=f"{key}:{line_id}{suffix}",
                postings=((accounts[customer_id], -amount), (revenue, amount)),
                memo=memo,
                allow_arrears=True,
            )
            for line_id, customer_id, amount in charges
        ]
        post_entries(session, entries=entries, actor=actor, now=now)
        total += sum(amount for _, _, amount in charges)
    return total, len(rows), sorted({customer_id for _, customer_id, _, _ in rows})


def rate_usage(
    session: Session,
    con: Any,
    *,
    key: str,
    memo: str,
    actor: Actor,
    now: datetime,
    periods_loaded: bool = False,
    timezone: str = "UTC",
) -> RatingResult:
    """Rate the records of DuckDB's `usage_in`, in the caller's transaction (see the module).

    `key` names this import in the ledger's idempotency keys and must be
    unique per import; `memo` goes on its journal entries. `periods_loaded`:
    `load_periods` ran already for a superset of the records. `timezone`
    (the host's) names the days of `line_usage_day` (app.charging.usage_days).
    """
    if not periods_loaded:
        load_periods(session, con)
    con.execute(_walk_sql(con))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE usage_unrated AS
           SELECT line FROM usage_in ANTI JOIN usage_rated USING (line)"""
    )
    rated = int(con.execute("SELECT count(*) FROM usage_rated").fetchone()[0])
    unrated = int(con.execute("SELECT count(*) FROM usage_unrated").fetchone()[0])
    _add_to_counters(session, con)
    add_usage_days(session, con, timezone=timezone)
    total, entries, customers = _post_charges(
        session, con, key=key, memo=memo, actor=actor, now=now
    )
    suspended = suspend_lines_in_arrears(session, customer_ids=customers, actor=actor, now=now)
    return RatingResult(
        rated=rated,
        unrated=unrated,
        charge_minor=total,
        entries=entries,
        suspended_lines=tuple(suspended),
    )
