"""The `mvno sims` group: SIM and eSIM inventory."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, fail, json_option, now_option, read_text_file, refusals

sims_cli = AppGroup("sims", help="SIM and eSIM inventory.")


@sims_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", "host_code", required=True, help="Host carrier code")
@json_option
@now_option
@refusals
def sims_import(file: str, host_code: str, as_json: bool, now: datetime) -> None:
    """Import FILE.csv (iccid,imsi,kind,lpa); any bad row imports nothing."""
    from app.core.audit import Actor
    from numbering.errors import SimImportRejected
    from numbering.sim_import import import_sims
    from wholesale.services import get_host_by_code

    text = read_text_file(file)
    try:
        with database().transaction() as session:
            host = get_host_by_code(session, host_code)
            report = import_sims(
                session,
                text=text,
                filename=file,
                host_id=host.id or 0,
                actor=Actor.cli(),
                now=now,
            )
    except SimImportRejected as exc:
        for reject in exc.rejects:
            click.echo(f"{file}:{reject.line}: {reject.reason}: {reject.raw}", err=True)
        fail(exc.message)
    data = {"file": file, "rows": report.rows, "imported": report.imported}
    emit(data, as_json=as_json, text=f"{report.imported} of {report.rows} SIMs imported")
