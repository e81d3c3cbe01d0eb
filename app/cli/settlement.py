"""The `mvno settlement` group: monthly settlement with the host and its invoice (DESIGN §7)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, fail, json_option, now_option, refusals
from app.core.money import format_plain

settlement_cli = AppGroup("settlement", help="Monthly settlement with the host carrier.")


@settlement_cli.command("export")
@click.option("--host", "host_code", required=True, help="Host carrier code")
@click.option("--month", required=True, metavar="YYYY-MM", help="Calendar month, host time zone")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder")
@json_option
@now_option
@refusals
def settlement_export(
    host_code: str, month: str, out_dir: str, as_json: bool, now: datetime
) -> None:
    """Write settlement_<HOST>_<YYYY-MM>.csv and .json into the --out folder."""
    from app.core.audit import Actor
    from app.usage.settlement import export_settlement

    try:
        with database().transaction() as session:
            result = export_settlement(
                session,
                host_code=host_code,
                month=month,
                out_dir=Path(out_dir),
                actor=Actor.cli(),
                now=now,
            )
    except OSError as exc:
        fail(f"{out_dir}: {exc.strerror or exc}")
    s = result.settlement
    emit(
        result.as_dict(),
        as_json=as_json,
        text=f"{s.host} {s.period}: {format_plain(s.total_minor)} {s.currency}; "
        + ", ".join(str(path) for path in result.files),
    )


@settlement_cli.command("reconcile")
@click.option("--host", "host_code", required=True, help="Host carrier code")
@click.option("--month", required=True, metavar="YYYY-MM", help="Calendar month, host time zone")
@click.option(
    "--invoice", required=True, type=click.Path(dir_okay=False), help="Host's invoice CSV"
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder")
@json_option
@now_option
@refusals
def settlement_reconcile(
    host_code: str, month: str, invoice: str, out_dir: str, as_json: bool, now: datetime
) -> None:
    """Compare the host's invoice with our settlement; exit 0 with the report when they differ."""
    from app.core.audit import Actor
    from app.usage.settlement import reconcile_settlement
    from wholesale.errors import InvoiceRejected

    try:
        data = Path(invoice).read_bytes()
    except OSError as exc:
        fail(f"{invoice}: {exc.strerror or exc}")
    try:
        with database().transaction() as session:
            result = reconcile_settlement(
                session,
                host_code=host_code,
                month=month,
                invoice=data,
                out_dir=Path(out_dir),
                actor=Actor.cli(),
                now=now,
            )
    except InvoiceRejected as exc:
        for reject in exc.rejects:
            click.echo(f"{invoice}:{reject.line}: {reject.reason}", err=True)
        fail(f"{invoice}: {exc.message}")
    except OSError as exc:
        fail(f"{out_dir}: {exc.strerror or exc}")
    assert result.reconciliation is not None
    count = len(result.reconciliation.discrepancies)
    emit(
        result.as_dict(),
        as_json=as_json,
        text=(f"{count} discrepancies" if count else "invoice matches")
        + "; "
        + ", ".join(str(path) for path in result.files),
    )
