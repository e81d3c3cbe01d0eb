"""The `mvno vouchers` group: printed batches of prepaid vouchers."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, fail, json_option, now_option, refusals, settings
from app.core.clock import parse_instant
from app.core.money import parse_minor

vouchers_cli = AppGroup("vouchers", help="Prepaid vouchers: print batches.")


@vouchers_cli.command("create")
@click.option("--name", required=True)
@click.option("--value", "value", required=True, metavar="AMOUNT", help="Face value, e.g. 50.00")
@click.option("--count", type=int, required=True, help="How many vouchers (1 to 10000).")
@click.option("--expires", "expires_text", required=True, metavar="ISO8601")
@json_option
@now_option
@refusals
def vouchers_create(
    name: str, value: str, count: int, expires_text: str, as_json: bool, now: datetime
) -> None:
    """Create a batch and print serial,PIN lines (CSV); the PINs are shown only once."""
    from app.core.audit import Actor
    from app.payments.vouchers import create_voucher_batch

    try:
        value_minor = parse_minor(value)
    except ValueError as exc:
        fail(f"bad amount: {exc}")
    expires_at = parse_instant(expires_text, field="expires")
    with database().transaction() as session:
        batch, pairs = create_voucher_batch(
            session,
            name=name,
            value_minor=value_minor,
            count=count,
            expires_at=expires_at,
            currency=settings().currency,
            actor=Actor.cli(),
            now=now,
        )
        data = {
            "batch_id": batch.id,
            "vouchers": [{"serial": serial, "pin": pin} for serial, pin in pairs],
        }
    text = "\n".join(["serial,pin", *(f"{serial},{pin}" for serial, pin in pairs)])
    emit(data, as_json=as_json, text=text)
