"""Database engine and the one-transaction-per-unit-of-work rule.

* A request, a CLI command and a scheduler job each run in exactly one
  transaction, opened by `Database.transaction()` (or the web layer's
  request session, which uses the same machinery), committed at that
  boundary and rolled back on any exception. Services only `flush()`.
* SQLite: WAL journal, foreign keys on, a busy timeout, and pysqlite's own
  transaction handling switched off so that we emit `BEGIN IMMEDIATE` for
  write transactions — SQLAlchemy emits nothing for `FOR UPDATE` on
  SQLite, so taking the write lock up front is what serialises
  read-modify-write. Read-only units use a plain deferred `BEGIN`.
* PostgreSQL: READ COMMITTED; row locks with `with_for_update()`.
* Constraint names follow one convention so migrations are reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy import types as sa_types
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, select

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

# Execution option read by the SQLite "begin" hook.
_BEGIN_MODE = "mvno_sqlite_begin"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every backend.

    SQLite has no time zone type; storing naive UTC and re-attaching UTC on
    the way out keeps comparisons and ordering right on both databases.
    Naive datetimes are refused: they are a bug in the caller.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(DateTime(timezone=dialect.name != "sqlite"))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


# psycopg prepares a statement run five times, and PostgreSQL would then soon plan it
# once for every value: a time window's best plan depends on the window (the
# dashboard's sums over the periods not yet over took 2.5× as long on the generic plan).
# Every execution is planned for its values; the statements stay prepared.
_PG_OPTIONS = "-c plan_cache_mode=force_custom_plan"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`: SQLite with a 30 s busy timeout and the pragmas of
    `_configure_sqlite`; PostgreSQL at READ COMMITTED with pre-ping, each statement
    planned for its values (`_PG_OPTIONS`).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("isolation_level", "READ COMMITTED")
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args["options"] = f"{connect_args.get('options', '')} {_PG_OPTIONS}".strip()
    return create_engine(url, **kwargs)


def insert_unique(session: Session, row: Any, conflict: BaseException) -> None:
    """Insert `row`, turning a unique-constraint violation into the domain error `conflict`.

    Uniqueness is the database's to enforce (never check-then-insert); the
    savepoint keeps the caller's transaction usable after the violation.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise conflict from None


def _pg_array_type(column: Any) -> str:
    """The PostgreSQL array element type a column's values travel as (JSON as text)."""
    kind = column.type
    if isinstance(kind, sa_types.JSON):
        return "text"
    if isinstance(kind, sa_types.Boolean):
        return "boolean"
    if isinstance(kind, sa_types.Integer):
        return "bigint"
    if isinstance(kind, UTCDateTime | sa_types.DateTime):
        return "timestamptz"
    return "text"


def insert_rows(
    session: Session,
    table: Any,
    rows: list[dict[str, Any]],
    *,
    dedupe: str | None = None,
    returning: tuple[str, ...] = (),
) -> list[Any]:
    """Insert many rows of `table` in one statement, on the session's connection.

    With `dedupe` (a unique column), rows whose value exists already are
    skipped (`ON CONFLICT DO NOTHING`); with `returning`, the inserted rows'
    values of those columns are returned (skipped rows return nothing).
    PostgreSQL: `INSERT … SELECT … FROM unnest(array, …)` with one array per
    column sent in binary: one short statement whatever the row count, where a
    multi-row VALUES list costs its parsing on both sides (bench/bench_renewals.py);
    many rows with neither `dedupe` nor `returning` go by COPY instead, whose
    rows the driver formats in C where it builds the arrays value by value in
    Python (bench/bench_exit.py). SQLite: an executemany of the INSERT. Every
    row has the same keys.
    """
    if not rows:
        return []
    connection = session.connection()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and dedupe is None and not returning and len(rows) >= COPY_MIN_ROWS:
        _copy_rows(connection, table, rows)
        return []
    if not postgres:
        statement = sqlite_insert(table)
        if dedupe is not None:
            statement = statement.on_conflict_do_nothing(index_elements=[dedupe])
        if returning:
            returned = statement.returning(*(table.c[name] for name in returning))
            return list(connection.execute(returned, rows))
        connection.execute(statement, rows)
        return []
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    arrays = [
        [json.dumps(row[name]) for row in rows]
        if isinstance(column.type, sa_types.JSON)
        else [row[name] for row in rows]
        for name, column in zip(names, columns, strict=True)
    ]
    quoted = [f'"{name}"' for name in names]
    selected = [
        f"v.{q}::json" if isinstance(c.type, sa_types.JSON) else f"v.{q}"
        for q, c in zip(quoted, columns, strict=True)
    ]
    arrays_sql = ", ".join(f"%b::{_pg_array_type(c)}[]" for c in columns)
    # Table and column names come from the models, never from input.
    sql = (
        f"INSERT INTO {table.name} ({', '.join(quoted)})"  # noqa: S608
        f" SELECT {', '.join(selected)} FROM unnest({arrays_sql}) AS v({', '.join(quoted)})"
    )
    if dedupe is not None:
        sql += f' ON CONFLICT ("{dedupe}") DO NOTHING'
    if returning:
        sql += " RETURNING " + ", ".join(f'"{name}"' for name in returning)
        return list(connection.exec_driver_sql(sql, tuple(arrays)))
    connection.exec_driver_sql(sql, tuple(arrays))
    return []


# From this many rows a plain insert goes by COPY (see `insert_rows`).
COPY_MIN_ROWS = 500


def _copy_rows(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """`rows` into `table` by COPY on the connection's transaction (PostgreSQL; JSON as text)."""
    names = list(rows[0])
    json_names = {name for name in names if isinstance(table.c[name].type, sa_types.JSON)}
    quoted = ", ".join(f'"{name}"' for name in names)
    raw = connection.connection.driver_connection
    assert raw is not None
    # Table and column names come from the models, never from input.
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [json.dumps(row[name]) if name in json_names else row[name] for name in names]
            )


T = TypeVar("T", bound=SQLModel)


def in_check(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a CHECK that `column` holds one of `values`: `status IN ('a', 'b')`."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def lock_by_id(session: Session, model: type[T], row_id: int) -> T | None:
    """The row of `model` with primary key `row_id`, locked `FOR UPDATE` and read afresh."""
    return session.exec(
        select(model)
        .where(model.id == row_id)  # type: ignore[attr-defined]
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


class Database:
    """Owns the engine and opens units of work.

    Tests rebind it to one outer connection (`bind_connection`) so every
    unit of work becomes a savepoint that the test rolls back.
    """

    def __init__(self, url: str, **engine_kwargs: Any):
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._connection: Connection | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_bound(self) -> bool:
        """Units of work are savepoints on one connection (tests): never run them in parallel."""
        return self._connection is not None

    def bind_connection(self, connection: Connection | None) -> None:
        self._connection = connection

    def session(self, *, write: bool = True) -> Session:
        """A new session; the caller commits or rolls back (see `transaction`)."""
        if self._connection is not None:
            return Session(
                bind=self._connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
            )
        bind = self.engine.execution_options(**{_BEGIN_MODE: "IMMEDIATE" if write else "DEFERRED"})
        return Session(bind=bind, expire_on_commit=False)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit when the block ends, roll back on any exception."""
        session = self.session(write=write)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
