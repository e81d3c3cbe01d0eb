"""The `mvno ledger` group: balances, the book liability and invariant checks."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, refusals, settings
from app.core.clock import parse_instant
from app.core.money import format_plain

ledger_cli = AppGroup("ledger", help="The prepaid ledger: balances and invariant checks.")


def _at_option(func: Any) -> Any:
    return click.option(
        "--at",
        "at_text",
        metavar="ISO8601",
        default=None,
        help="As of this time (from the postings) instead of now.",
    )(func)


@ledger_cli.command("balance")
@click.argument("target", metavar="MSISDN|CUSTOMER_REF")
@_at_option
@json_option
@refusals
def ledger_balance(target: str, at_text: str | None, as_json: bool) -> None:
    """Print a customer's prepaid balance and cap (minor units), now or --at a past time."""
    from app.ledger.balances import customer_balance
    from app.ledger.cap import prepaid_cap_minor
    from app.subscribers.services import get_customer_by_msisdn_or_ref

    config = settings()
    with database().transaction(write=False) as session:
        customer = get_customer_by_msisdn_or_ref(session, target)
        assert customer.id is not None
        at = parse_instant(at_text, field="at") if at_text else None
        balance = customer_balance(session, customer_id=customer.id, at=at)
        cap = prepaid_cap_minor(
            session,
            customer_id=customer.id,
            settings_months=config.prepay_cap_months,
            reference_monthly_minor=config.prepay_reference_monthly_minor,
        )
    data = {
        "customer_ref": customer.ref,
        "balance": balance,
        "cap": cap,
        "currency": config.currency,
    }
    text = (
        f"{customer.ref}: balance {format_plain(balance)} {config.currency},"
        f" cap {format_plain(cap)}"
    )
    emit(data, as_json=as_json, text=text)


@ledger_cli.command("liability")
@_at_option
@json_option
@refusals
def ledger_liability(at_text: str | None, as_json: bool) -> None:
    """Print what all customers' prepaid balances add up to, now or --at a past time."""
    from app.ledger.balances import book_liability

    at = parse_instant(at_text, field="at") if at_text else None
    with database().transaction(write=False) as session:
        liability = book_liability(session, at=at)
    currency = settings().currency
    data = {"liability": liability, "at": at.isoformat() if at else None, "currency": currency}
    emit(data, as_json=as_json, text=f"prepaid liability {format_plain(liability)} {currency}")


@ledger_cli.command("check")
@json_option
@refusals
def ledger_check(as_json: bool) -> None:
    """Verify the ledger's invariants; exit 1 when any is broken."""
    from app.ledger.checks import check_ledger
    from app.payments.services import check_payments

    config = settings()
    with database().transaction(write=False) as session:
        result = check_ledger(
            session,
            cap_months=config.prepay_cap_months,
            reference_monthly_minor=config.prepay_reference_monthly_minor,
        )
        problems = [*result.problems, *check_payments(session)]
    data = {
        "ok": not problems,
        "entries": result.entries,
        "postings": result.postings,
        "problems": problems,
    }
    verdict = "ledger ok" if not problems else f"{len(problems)} problem(s)"
    text = "\n".join(
        [*problems, f"{verdict}: {result.entries} entries, {result.postings} postings"]
    )
    emit(data, as_json=as_json, text=text)
    if problems:
        sys.exit(1)
