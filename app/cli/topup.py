"""The `mvno topup` command: an offline payment recorded by staff."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from app.cli.common import database, emit, fail, json_option, now_option, refusals, settings
from app.core.money import format_plain, parse_minor


@click.command("topup")
@with_appcontext
@click.argument("msisdn")
@click.argument("amount")
@click.option("--ref", "ref", required=True, help="The payment's receipt or bank reference.")
@click.option(
    "--method",
    type=click.Choice(["cash", "bank_transfer"]),
    default="cash",
    show_default=True,
    help="How the money was paid.",
)
@json_option
@now_option
@refusals
def topup(msisdn: str, amount: str, ref: str, method: str, as_json: bool, now: datetime) -> None:
    """Record an offline payment of AMOUNT (e.g. 50.00) for the customer of MSISDN.

    The same reference recorded again is the same payment (nothing changes);
    with another amount or customer it is refused.
    """
    from app.core.audit import Actor
    from app.ledger.balances import customer_balance
    from app.payments.services import MoneyPolicy, record_offline_payment
    from app.subscribers.services import get_line_by_msisdn

    try:
        amount_minor = parse_minor(amount)
    except ValueError as exc:
        fail(f"bad amount: {exc}")
    config = settings()
    with database().transaction() as session:
        line = get_line_by_msisdn(session, msisdn)
        payment = record_offline_payment(
            session,
            customer_id=line.customer_id,
            amount_minor=amount_minor,
            method=method,
            reference=ref,
            actor=Actor.cli(),
            now=now,
            policy=MoneyPolicy.from_settings(config),
            memo=f"offline top-up for {msisdn}",
        )
        balance = customer_balance(session, customer_id=line.customer_id)
        entry_id = payment.journal_entry_id
        data = {"entry_id": entry_id, "balance": balance, "currency": config.currency}
    text = f"entry {entry_id}: balance {format_plain(balance)} {config.currency}"
    emit(data, as_json=as_json, text=text)
