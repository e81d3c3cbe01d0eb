"""The `mvno subscribers` group: the migration import of customers."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import (
    database,
    emit,
    fail,
    json_option,
    now_option,
    read_text_file,
    refusals,
    settings,
)
from app.core.money import format_plain

subscribers_cli = AppGroup("subscribers", help="Customers: migration import.")


@subscribers_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@now_option
@refusals
def subscribers_import(file: str, as_json: bool, now: datetime) -> None:
    """Import FILE.csv of subscribers migrated from another platform; any bad row imports
    nothing. The same file again is reported as already imported."""
    from app.core.audit import Actor
    from app.core.pii import PiiCipher
    from app.onboarding.errors import SubscriberImportRejected
    from app.onboarding.migration import import_subscribers

    text = read_text_file(file)
    config = settings()
    try:
        with database().transaction() as session:
            report = import_subscribers(
                session,
                text=text,
                filename=file,
                cipher=PiiCipher(config.pii_key),
                currency=config.currency,
                cap_months=config.prepay_cap_months,
                actor=Actor.cli(),
                now=now,
            )
    except SubscriberImportRejected as exc:
        for problem in exc.rejects:
            click.echo(
                f"{file}:{problem.line}: {problem.field or 'row'}: {problem.reason}", err=True
            )
        if as_json:
            refused = {
                "file": file,
                "rows": exc.params.get("rows", 0),
                "customers": 0,
                "lines": 0,
                "balance_total": 0,
                "currency": config.currency,
                "already_imported": False,
                **exc.details(),
                "id_check_digit_mismatch": sum(1 for w in exc.warnings if w.field == "id_number"),
            }
            emit(refused, as_json=True, text="")
        fail(exc.message)
    data = report.to_dict()
    if not as_json:
        for warning in report.warnings:
            click.echo(
                f"{file}:{warning.line}: {warning.field}: warning: {warning.reason}", err=True
            )
    done = "already imported, nothing changed" if report.already_imported else "imported"
    text_out = (
        f"{done}: {report.customers} customers, {report.lines} lines,"
        f" opening balances {format_plain(report.balance_total_minor)} {report.currency}"
        f" ({report.id_check_digit_mismatch} ID numbers with a wrong check digit)"
    )
    emit(data, as_json=as_json, text=text_out)
