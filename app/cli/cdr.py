"""The `mvno cdr` group: the host's usage records (DESIGN §7, §13)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, fail, json_option, now_option, refusals

cdr_cli = AppGroup("cdr", help="Usage records from the host carrier.")


@cdr_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", "host_code", required=True, help="Host carrier code")
@json_option
@now_option
@refusals
def cdr_import(file: str, host_code: str, as_json: bool, now: datetime) -> None:
    """Import and charge FILE.csv of usage records; the same file twice is a no-op."""
    from app.core.audit import Actor
    from app.core.fileimport import FileRejected
    from app.usage.importer import import_usage_file

    path = Path(file)
    if not path.is_file():
        fail(f"{file}: no such file")
    try:
        with database().transaction() as session:
            result = import_usage_file(
                session,
                host_code=host_code,
                path=path,
                filename=path.name,
                actor=Actor.cli(),
                now=now,
            )
    except FileRejected as exc:
        fail(f"{file}: {exc.message}")
    counts = (
        f"{result.rows} rows: {result.charged} charged, {result.duplicates} duplicates,"
        f" {result.rejected} rejected"
    )
    emit(
        {**result.as_dict(), "file": file},
        as_json=as_json,
        text=f"{file}: already imported ({counts})"
        if result.already_imported
        else f"{file}: {counts}",
    )


@cdr_cli.command("reprocess")
@click.option("--host", "host_code", required=True, help="Host carrier code")
@json_option
@now_option
@refusals
def cdr_reprocess(host_code: str, as_json: bool, now: datetime) -> None:
    """Try the host's open rejects again (after the cause was fixed); nothing is charged twice."""
    from app.core.audit import Actor
    from app.usage.rejects import reprocess_rejects

    with database().transaction() as session:
        result = reprocess_rejects(session, host_code=host_code, actor=Actor.cli(), now=now)
    emit(
        result.as_dict(),
        as_json=as_json,
        text=f"{result.tried} rejects tried: {result.charged} charged,"
        f" {result.duplicates} duplicates, {result.still_rejected} still rejected",
    )
