"""The `mvno db` group: the schema by Alembic migrations."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.cli.common import database, fail, refusals, settings
from app.core.clock import utcnow

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@refusals
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to REVISION."""
    from app.core.migrate import current_revision, upgrade

    db = database()
    if db.is_sqlite:
        settings().instance_path.mkdir(parents=True, exist_ok=True)
    upgrade(db.engine, revision)
    if revision == "head":
        from numbering.tiers import ensure_default_tiers

        # Configuration rows with defaults: golden-number tiers and their surcharges.
        with db.transaction() as session:
            ensure_default_tiers(session, now=utcnow())
    click.echo(f"database at revision {current_revision(db.engine)}")


@db_cli.command("current")
@refusals
def db_current() -> None:
    """Print the schema revision."""
    from app.core.migrate import current_revision

    click.echo(current_revision(database().engine) or "empty (run: mvno db upgrade)")


@db_cli.command("check")
@refusals
def db_check() -> None:
    """Exit 1 when the models and the migrated schema differ."""
    from app.core.migrate import schema_differences

    with database().engine.connect() as connection:
        diffs = schema_differences(connection)
    if diffs:
        for diff in diffs:
            click.echo(repr(diff), err=True)
        fail(f"{len(diffs)} difference(s) between models and migrations")
    click.echo("models and migrations agree")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@refusals
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (run `db upgrade` first)."""
    from alembic import command

    from app.core.migrate import MIGRATIONS_DIR, alembic_config

    count = len(list((MIGRATIONS_DIR / "versions").glob("[0-9]*.py")))
    with database().engine.begin() as connection:
        command.revision(
            alembic_config(connection=connection),
            message=message,
            autogenerate=True,
            rev_id=f"{count + 1:04d}",
        )
