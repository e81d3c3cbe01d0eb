"""Alembic environment: runs on the connection it is given, or on DATABASE_URL."""

from __future__ import annotations

from alembic import context

from app.core.db import make_engine, metadata
from app.core.floors import discover

discover("models")  # registers every table

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from app.core.config import Settings

        url = Settings.from_env().database_url
    engine = make_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
