"""The `mvno catalog` group: hosts, rate cards, number blocks and plans from a file."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, fail, json_option, now_option, read_text_file, refusals

catalog_cli = AppGroup("catalog", help="Hosts, rate cards, number blocks and plans.")


@catalog_cli.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@now_option
@refusals
def catalog_load(file: str, as_json: bool, now: datetime) -> None:
    """Load FILE.toml (idempotent; a file with any problem loads nothing)."""
    from app.catalog import CatalogInvalid, load_catalog
    from app.core.audit import Actor

    text = read_text_file(file)
    try:
        with database().transaction() as session:
            report = load_catalog(session, text=text, filename=file, actor=Actor.cli(), now=now)
    except CatalogInvalid as exc:
        for problem in exc.problems:
            click.echo(
                f"{problem.file}: [{problem.table}] {problem.key}: {problem.reason}", err=True
            )
        fail(exc.message)
    data = report.to_dict()
    lines = [
        f"{table}: " + ", ".join(f"{n} {what}" for what, n in counts.items())
        for table, counts in data.items()
        if isinstance(counts, dict)
    ]
    emit(data, as_json=as_json, text="\n".join(lines))
