"""Bulk writes and lookups of usage records, set-based on both databases.

* **Lock.** One import per host at a time: a transaction-scoped advisory
  lock on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises writers.
  The duplicate check (a `(host, record_id)` seen before) relies on it.
* **Partitions.** On PostgreSQL `usage_record` is partitioned by month of
  `start_time` (UTC). Before writing, the partitions of every month the
  records touch, and of the month after the latest, are created if missing
  (`usage_record_yYYYYmMM`), so one month is dropped or detached in one
  statement.
* **Quarter-hours.** The same transaction adds the records to
  `usage_quarter_hour` (per service and quarter-hour of start, UTC): what
  the dashboard reads instead of the records (`add_quarter_hours`).
* **Records** go in with psycopg `COPY … FROM STDIN` on PostgreSQL (DuckDB
  writes the CSV) and on SQLite as one `executemany` into a temporary table
  moved in by one `INSERT … SELECT` — never one ORM object per record.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

from app.ledger.accounts import in_chunks
from app.ledger.activity import bucket_sql

_LOCK_CLASS = 7_201  # advisory lock namespace of usage imports
_RECORD_COLUMNS = (
    "host_id",
    "record_id",
    "start_time",
    "file_id",
    "line_id",
    "period_id",
    "service",
    "quantity",
    "within",
    "over",
    "charge_minor",
    "called_number",
)
_COPY_CHUNK = 1 << 20


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_host(session: Session, host_id: int) -> None:
    """Hold the host's import lock until the transaction ends."""
    if _postgres(session):
        session.connection().execute(
            text("SELECT pg_advisory_xact_lock(:cls, :host)"), {"cls": _LOCK_CLASS, "host": host_id}
        )


def partition_name(year: int, month: int) -> str:
    """The partition of usage records that start in that (UTC) month."""
    return f"usage_record_y{year:04d}m{month:02d}"


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def ensure_partitions(session: Session, months: set[tuple[int, int]]) -> list[str]:
    """Create the missing monthly partitions for `months` and the month after the last.

    PostgreSQL only (SQLite keeps one table); returns the partitions named.
    """
    if not _postgres(session) or not months:
        return []
    wanted = set(months) | {_next_month(*max(months))}
    names = []
    connection = session.connection()
    for year, month in sorted(wanted):
        name = partition_name(year, month)
        start = f"{year:04d}-{month:02d}-01 00:00:00+00"
        end_year, end_month = _next_month(year, month)
        end = f"{end_year:04d}-{end_month:02d}-01 00:00:00+00"
        connection.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF usage_record"
            f" FOR VALUES FROM ('{start}') TO ('{end}')"
        )
        names.append(name)
    return names


def record_months(con: Any) -> set[tuple[int, int]]:
    """The (year, month) of every rated record, in UTC."""
    rows = con.execute(
        "SELECT DISTINCT year(make_timestamp(t)), month(make_timestamp(t)) FROM usage_rated"
    ).fetchall()
    return {(int(y), int(m)) for y, m in rows}


def host_has_records(session: Session, host_id: int) -> bool:
    """Whether any usage record of the host exists (before any lookup by id)."""
    row = session.connection().execute(
        text("SELECT 1 FROM usage_record WHERE host_id = :host LIMIT 1"), {"host": host_id}
    )
    return row.first() is not None


def seen_record_ids(session: Session, host_id: int, record_ids: list[str]) -> list[str]:
    """Those of `record_ids` the host has sent before (stored records)."""
    if not record_ids or not host_has_records(session, host_id):
        return []
    connection = session.connection()
    found: list[str] = []
    if _postgres(session):
        statement = text(
            "SELECT record_id FROM usage_record WHERE host_id = :host AND record_id = ANY(:ids)"
        )
        for start in range(0, len(record_ids), 100_000):
            chunk = record_ids[start : start + 100_000]
            found.extend(
                r for (r,) in connection.execute(statement, {"host": host_id, "ids": chunk})
            )
        return found
    statement = text(
        "SELECT record_id FROM usage_record WHERE host_id = :host AND record_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    for chunk in in_chunks(record_ids):
        found.extend(r for (r,) in connection.execute(statement, {"host": host_id, "ids": chunk}))
    return found


# In key order (record id first): both databases insert in index order far faster.
_RECORDS_SELECT = """
SELECT {host} r.record_id, strftime(make_timestamp(r.t), '{time}') AS start_time,
       {file} r.line_id, r.period_id, r.service, r.quantity, r.within,
       r.over, r.charge_minor, r.called_number
FROM usage_rated r
ORDER BY r.record_id, r.t
"""
# SQLite's page cache during the insert (KiB, as PRAGMA cache_size takes it: negative).
_SQLITE_IMPORT_CACHE_KIB = 262_144


def write_records(session: Session, con: Any, *, host_id: int, file_id: int) -> int:
    """Store DuckDB's `usage_rated` records as `usage_record` rows; how many."""
    ensure_partitions(session, record_months(con))
    columns = ", ".join(_RECORD_COLUMNS)
    connection = session.connection()
    if _postgres(session):
        select = _RECORDS_SELECT.format(
            host=f"{int(host_id)} AS host_id,",
            file=f"{int(file_id)} AS file_id,",
            time="%Y-%m-%d %H:%M:%S.%f+00",
        )
        with tempfile.TemporaryDirectory(prefix="mvno-usage-") as folder:
            path = Path(folder) / "records.csv"
            con.execute(f"COPY ({select}) TO '{path}' (FORMAT csv, HEADER false)")
            driver = connection.connection.driver_connection
            assert driver is not None
            cursor = driver.cursor()
            with (
                cursor.copy(f"COPY usage_record ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
                path.open("rb") as source,
            ):
                while block := source.read(_COPY_CHUNK):
                    copy.write(block)
    else:
        _insert_sqlite(connection, con, host_id=host_id, file_id=file_id)
    add_quarter_hours(session, con, host_id=host_id)
    return int(con.execute("SELECT count(*) FROM usage_rated").fetchone()[0])


# The rated records summed per service and quarter-hour of start (`t` in µs).
_QUARTER_HOURS_SELECT = """
SELECT service, CAST(t // 900000000 AS BIGINT) AS bucket,
       CAST(sum(quantity) AS BIGINT) AS quantity, CAST(count(*) AS BIGINT) AS records
FROM usage_rated GROUP BY ALL ORDER BY service, bucket
"""
_UPSERT_TAIL = (
    " ON CONFLICT (host_id, service, bucket) DO UPDATE SET"
    " quantity = usage_quarter_hour.quantity + excluded.quantity,"
    " records = usage_quarter_hour.records + excluded.records"
)


def add_quarter_hours(session: Session, con: Any, *, host_id: int) -> None:
    """Add DuckDB's `usage_rated` to `usage_quarter_hour`, in the import's transaction.

    Called once for the records `write_records` stores (duplicates never
    reach it), so no record is counted twice.
    """
    rows = con.execute(_QUARTER_HOURS_SELECT).fetchall()
    if not rows:
        return
    connection = session.connection()
    if _postgres(session):
        services, buckets, quantities, counts = (list(column) for column in zip(*rows, strict=True))
        connection.exec_driver_sql(
            "INSERT INTO usage_quarter_hour (host_id, service, bucket, quantity, records)"  # noqa: S608 (constants)
            " SELECT %(host)s, s, b, q, n FROM unnest(%(s)s::text[], %(b)s::bigint[],"
            " %(q)s::bigint[], %(n)s::bigint[]) AS v(s, b, q, n)" + _UPSERT_TAIL,
            {"host": host_id, "s": services, "b": buckets, "q": quantities, "n": counts},
        )
        return
    connection.exec_driver_sql(
        "INSERT INTO usage_quarter_hour (host_id, service, bucket, quantity, records)"  # noqa: S608 (an int, constants)
        f" VALUES ({int(host_id)}, ?, ?, ?, ?)" + _UPSERT_TAIL,
        rows,
    )


def rebuild_quarter_hours(session: Session) -> int:
    """Sum `usage_quarter_hour` afresh from the stored records (set-based); how many rows.

    For data written around the importer (a benchmark's fixture) and for
    the migration that introduced the table; the importer keeps it itself.
    """
    connection = session.connection()
    bucket = bucket_sql(session.get_bind().dialect.name, "start_time")
    connection.execute(text("DELETE FROM usage_quarter_hour"))
    written = connection.execute(
        text(
            "INSERT INTO usage_quarter_hour (host_id, service, bucket, quantity, records)"  # noqa: S608 (constants)
            f" SELECT host_id, service, {bucket}, sum(quantity), count(*)"
            " FROM usage_record GROUP BY 1, 2, 3"
        )
    )
    return int(written.rowcount or 0)


def _insert_sqlite(connection: Any, con: Any, *, host_id: int, file_id: int) -> None:
    """DuckDB's rows into a bare temporary table, then one `INSERT … SELECT` into the records.

    Binding rows one by one into the indexed table costs half as much again
    as binding them into a table without indexes and moving them in one
    statement. Host and file go in the statement, not per row.
    """
    select = _RECORDS_SELECT.format(host="", file="", time="%Y-%m-%d %H:%M:%S.%f")
    columns = ", ".join(_RECORD_COLUMNS)
    per_row = [c for c in _RECORD_COLUMNS if c not in ("host_id", "file_id")]
    staged = ", ".join(
        str(int(host_id)) if c == "host_id" else str(int(file_id)) if c == "file_id" else c
        for c in _RECORD_COLUMNS
    )
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(f"PRAGMA cache_size = -{_SQLITE_IMPORT_CACHE_KIB}")
    cursor.execute(f"PRAGMA temp.cache_size = -{_SQLITE_IMPORT_CACHE_KIB}")
    try:
        cursor.execute(f"CREATE TEMP TABLE usage_record_in ({', '.join(per_row)})")
        stage = f"INSERT INTO usage_record_in VALUES ({', '.join('?' for _ in per_row)})"  # noqa: S608 (constants)
        result = con.execute(select)
        while rows := result.fetchmany(100_000):
            cursor.executemany(stage, rows)
        cursor.execute(
            f"INSERT INTO usage_record ({columns})"  # noqa: S608 (ints, constants)
            f" SELECT {staged} FROM usage_record_in ORDER BY rowid"
        )
        cursor.execute("DROP TABLE usage_record_in")
    finally:
        cursor.execute("PRAGMA cache_size = -2000")
        cursor.execute("PRAGMA temp.cache_size = -2000")


def utc_from_micros(micros: int | None) -> datetime | None:
    """An instant given as microseconds since the epoch (DuckDB's `t`)."""
    if micros is None:
        return None
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))
