"""Per-line daily usage (`line_usage_day`), summed by rating in the import's transaction.

Rules:

* Each import adds its rated records to the days they started on: the local
  day of the record's start time in the host's time zone. Data counts its
  billable KB (`ceil(bytes / 1024)` per record), voice the seconds the host
  reported, SMS the count; `voice_calls` counts the line's voice records.
* The usage file has no direction column. A voice record's `called_number`
  that is the number of a live line of ours (pending, active or suspended)
  counts as one incoming call of that line on the same day; calls from
  numbers not ours are not in our files at all, so `incoming_calls` only
  sees calls between our own lines. Called numbers outside every number
  block we hold are dropped in DuckDB before any line is looked up, so the
  many calls to other networks cost no query.
* `early_data_kb` / `early_voice_s`: the part used within 24 hours of the
  start of the line's first period (activation), for the new-line rule.
* Sums are aggregated in DuckDB and written set-based, in `(line_id, day)`
  order: `INSERT … ON CONFLICT DO UPDATE` adding to the day's row (SQLite:
  one `executemany`; PostgreSQL: DuckDB writes a CSV that `COPY` streams
  into a temporary table, then one `INSERT … SELECT`). The table has no
  foreign key, for the same reason as `usage_record`. A record is rated once (duplicates never reach
  rating), so a day is never counted twice.

Readers for the fraud rules (app/analytics) are at the end: they read only
this table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, or_, text
from sqlmodel import Session, col, select

from app.charging.models import LineUsageDay
from app.ledger.accounts import in_chunks

_COLUMNS = (
    "line_id",
    "day",
    "data_kb",
    "voice_s",
    "sms",
    "voice_calls",
    "incoming_calls",
    "early_data_kb",
    "early_voice_s",
)
_SUMMED = _COLUMNS[2:]
_COLUMN_LIST = ", ".join(_COLUMNS)
_UPSERT_TAIL = " ON CONFLICT (line_id, day) DO UPDATE SET " + ", ".join(
    f"{c} = line_usage_day.{c} + excluded.{c}" for c in _SUMMED
)

# Outgoing sums per line and local day; `?` is the host's time zone, and
# 86,400,000,000 µs is the 24 h after activation.
_OWN_SQL = """
SELECT r.line_id, CAST(timezone(?, make_timestamptz(r.t)) AS DATE) AS day,
       sum(CASE WHEN r.service = 'data' THEN r.billable ELSE 0 END) AS data_kb,
       sum(CASE WHEN r.service = 'voice' THEN r.quantity ELSE 0 END) AS voice_s,
       sum(CASE WHEN r.service = 'sms' THEN r.quantity ELSE 0 END) AS sms,
       count(*) FILTER (WHERE r.service = 'voice') AS voice_calls,
       0 AS incoming_calls,
       sum(CASE WHEN r.service = 'data' AND r.t < p.first_us + 86400000000
                THEN r.billable ELSE 0 END) AS early_data_kb,
       sum(CASE WHEN r.service = 'voice' AND r.t < p.first_us + 86400000000
                THEN r.quantity ELSE 0 END) AS early_voice_s
FROM usage_rated r JOIN rating_periods p ON p.period_id = r.period_id
GROUP BY ALL
"""
_LIVE_LINES = text(
    "SELECT msisdn, id FROM line WHERE msisdn IN :msisdns"
    " AND status IN ('pending', 'active', 'suspended')"
).bindparams(bindparam("msisdns", expanding=True))


def _load_called_lines(session: Session, con: Any, *, timezone: str) -> bool:
    """`usage_incoming(msisdn, day, calls)` of calls to our numbers, and `called_lines`."""
    columns = {row[0] for row in con.execute("DESCRIBE usage_rated").fetchall()}
    if "called_number" not in columns:
        return False
    blocks = session.connection().execute(text("SELECT first, last FROM number_block")).all()
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rollup_blocks AS"
        " SELECT unnest(?::VARCHAR[]) AS first, unnest(?::VARCHAR[]) AS last",
        [[b[0] for b in blocks], [b[1] for b in blocks]],
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE usage_incoming AS
           SELECT r.called_number AS msisdn,
                  CAST(timezone(?, make_timestamptz(r.t)) AS DATE) AS day, count(*) AS calls
           FROM usage_rated r
           WHERE r.service = 'voice' AND r.called_number LIKE '+%'
             AND EXISTS (SELECT 1 FROM rollup_blocks b
                         WHERE length(b.first) = length(r.called_number)
                           AND r.called_number BETWEEN b.first AND b.last)
           GROUP BY ALL""",
        [timezone],
    )
    called = [m for (m,) in con.execute("SELECT DISTINCT msisdn FROM usage_incoming").fetchall()]
    found: list[tuple[str, int]] = []
    connection = session.connection()
    for chunk in in_chunks(called):
        found.extend((m, int(i)) for m, i in connection.execute(_LIVE_LINES, {"msisdns": chunk}))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE called_lines AS"
        " SELECT unnest(?::VARCHAR[]) AS msisdn, unnest(?::BIGINT[]) AS line_id",
        [[m for m, _ in found], [i for _, i in found]],
    )
    return bool(found)


def _day_rows_sql(with_incoming: bool) -> str:
    incoming = (
        """UNION ALL
           SELECT c.line_id, i.day, 0, 0, 0, 0, i.calls, 0, 0
           FROM usage_incoming i JOIN called_lines c ON c.msisdn = i.msisdn"""
        if with_incoming
        else ""
    )
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT)" for c in _SUMMED)
    return f"""SELECT line_id, strftime(day, '%Y-%m-%d') AS day, {sums}
               FROM ({_OWN_SQL} {incoming}) GROUP BY line_id, day"""  # noqa: S608 (constants)


def add_usage_days(session: Session, con: Any, *, timezone: str) -> int:
    """Add DuckDB's `usage_rated` to `line_usage_day` (see the module); how many days written.

    Needs `rating_periods` with `first_us` (`load_periods`). Not idempotent
    by itself: the import that rates a record calls it once.
    """
    with_incoming = _load_called_lines(session, con, timezone=timezone)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE usage_days_out AS {_day_rows_sql(with_incoming)}",
        [timezone],
    )
    written = int(con.execute("SELECT count(*) FROM usage_days_out").fetchone()[0])
    if not written:
        return 0
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None
    if session.get_bind().dialect.name == "postgresql":
        _copy_postgres(connection, driver, con)
        return written
    values = ", ".join("?" for _ in _COLUMNS)
    insert = f"INSERT INTO line_usage_day ({_COLUMN_LIST}) VALUES ({values}){_UPSERT_TAIL}"  # noqa: S608
    cursor = driver.cursor()
    result = con.execute("SELECT * FROM usage_days_out ORDER BY line_id, day")
    while rows := result.fetchmany(100_000):
        cursor.executemany(insert, rows)
    return written


def _copy_postgres(connection: Any, driver: Any, con: Any) -> None:
    """DuckDB writes the rows as CSV, `COPY` streams them in, one upsert adds them."""
    connection.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS line_usage_day_in"
            " (LIKE line_usage_day INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    with tempfile.TemporaryDirectory(prefix="mvno-usage-days-") as folder:
        path = Path(folder) / "days.csv"
        rows = "SELECT * FROM usage_days_out ORDER BY line_id, day"
        con.execute(f"COPY ({rows}) TO '{path}' (FORMAT csv, HEADER false)")
        with (
            driver.cursor().copy(
                f"COPY line_usage_day_in ({_COLUMN_LIST}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
            path.open("rb") as source,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
    connection.execute(
        text(
            f"INSERT INTO line_usage_day ({_COLUMN_LIST})"  # noqa: S608 (constants)
            f" SELECT {_COLUMN_LIST} FROM line_usage_day_in ORDER BY line_id, day{_UPSERT_TAIL}"
        )
    )
    connection.execute(text("DELETE FROM line_usage_day_in"))


# -- readers ---------------------------------------------------------------------------


def list_usage_days(
    session: Session, *, first: date, last: date, line_ids: Collection[int] | None = None
) -> list[LineUsageDay]:
    """The daily rows from `first` to `last` (inclusive), of the lines given or of all.

    Ordered by line and day; reads only.
    """
    query = select(LineUsageDay).where(LineUsageDay.day >= first, LineUsageDay.day <= last)
    if line_ids is None:
        return list(session.exec(query.order_by(col(LineUsageDay.line_id), col(LineUsageDay.day))))
    rows: list[LineUsageDay] = []
    for chunk in in_chunks(sorted(line_ids)):
        rows.extend(session.exec(query.where(col(LineUsageDay.line_id).in_(chunk))))
    return sorted(rows, key=lambda row: (row.line_id, row.day))


def busy_usage_days(
    session: Session,
    *,
    first: date,
    last: date,
    min_data_kb: int | None = None,
    min_voice_s: int | None = None,
    min_voice_calls: int | None = None,
) -> list[LineUsageDay]:
    """Days from `first` to `last` on which a line reached any of the minimums given.

    Ordered by line and day; reads only. No minimum given: no rows.
    """
    conditions = []
    if min_data_kb is not None:
        conditions.append(col(LineUsageDay.data_kb) >= min_data_kb)
    if min_voice_s is not None:
        conditions.append(col(LineUsageDay.voice_s) >= min_voice_s)
    if min_voice_calls is not None:
        conditions.append(col(LineUsageDay.voice_calls) >= min_voice_calls)
    if not conditions:
        return []
    query = (
        select(LineUsageDay)
        .where(LineUsageDay.day >= first, LineUsageDay.day <= last, or_(*conditions))
        .order_by(col(LineUsageDay.line_id), col(LineUsageDay.day))
    )
    return list(session.exec(query))


def early_usage(session: Session, *, since: date) -> list[tuple[int, date, int, int]]:
    """Lines with usage within 24 h of activation on days from `since`.

    Each as (line id, first such day, early data KB, early voice seconds),
    by line; reads only.
    """
    query = (
        select(
            LineUsageDay.line_id,
            func.min(LineUsageDay.day),
            func.sum(LineUsageDay.early_data_kb),
            func.sum(LineUsageDay.early_voice_s),
        )
        .where(
            LineUsageDay.day >= since,
            or_(col(LineUsageDay.early_data_kb) > 0, col(LineUsageDay.early_voice_s) > 0),
        )
        .group_by(col(LineUsageDay.line_id))
        .order_by(col(LineUsageDay.line_id))
    )
    return [
        (int(line_id), day if isinstance(day, date) else date.fromisoformat(day), int(d), int(v))
        for line_id, day, d, v in session.exec(query)
    ]


def first_usage_days(session: Session, *, line_ids: Collection[int]) -> dict[int, date]:
    """The first day with usage of each line given that has any; reads only."""
    found: dict[int, date] = {}
    for chunk in in_chunks(sorted(line_ids)):
        query = (
            select(LineUsageDay.line_id, func.min(LineUsageDay.day))
            .where(col(LineUsageDay.line_id).in_(chunk))
            .group_by(col(LineUsageDay.line_id))
        )
        for line_id, day in session.exec(query):
            found[int(line_id)] = day if isinstance(day, date) else date.fromisoformat(day)
    return found
