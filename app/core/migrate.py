"""Alembic, driven from code: `mvno db upgrade` and the test suite use the same path."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine

from app.core.config import PROJECT_ROOT
from app.core.db import metadata

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    """The Alembic configuration of migrations/, on `url` or an open `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of `engine` to `revision` in one transaction."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection=connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _not_a_partition(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    """Monthly partitions (`usage_record_yYYYYmMM`, app/usage/store.py) are not in the models."""
    partition = (name or "").startswith("usage_record_y")
    return not (kind == "table" and reflected and compare_to is None and partition)


def schema_differences(connection: Connection) -> list[object]:
    """What autogenerate would change: empty when models and migrations agree."""
    from app.core.floors import discover

    discover("models")  # registers every table

    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": True, "include_object": _not_a_partition},
    )
    return list(compare_metadata(context, metadata))


def head_revision() -> str | None:
    """The newest revision in migrations/."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def recreate_postgres_database(url: str) -> None:
    """Create the PostgreSQL database of `url` if missing and empty its public schema.

    For throwaway databases only: the test suite's and the benchmarks'.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
