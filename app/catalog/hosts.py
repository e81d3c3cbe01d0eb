"""The [[hosts]] and [[rate_cards]] tables of a catalog file: checks and how they apply.

Hosts are keyed by code, rate cards by (host, effective_from). A rate card
never changes once stored: the same host and date with other prices is a
problem, not an update.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from app.catalog.checking import Checker, as_date, file_reason, row_key
from app.catalog.errors import CatalogRefused, HostCurrencyChange, currency_change_reason
from app.catalog.rows import HostRow, RateCardRow, Rows
from app.core.audit import Actor
from app.core.errors import InvalidInput
from app.core.money import parse_micro, parse_minor
from wholesale.models import PRICE_UNITS, SERVICES, HostCarrier, RateCard
from wholesale.services import (
    add_rate_card,
    find_host_by_code,
    rate_card_on,
    upsert_host,
    validate_host_fields,
)
from wholesale.usage_settings import set_usage_settings, validate_cdr_columns, validate_tolerances

# The rate card keys of the file, in service order: data_per_mb, voice_per_min, …
PRICE_KEYS = tuple(PRICE_UNITS[service][0] for service in SERVICES)
HOST_KEYS = ("code", "name", "currency", "timezone", "provisioning", "provisioning_url")
# A host's usage-file columns and reconciliation tolerances (wholesale/usage_settings.py).
USAGE_KEYS = ("cdr_columns", "reconcile_amount_tolerance", "reconcile_quantity_tolerance_bp")
RATE_CARD_KEYS = ("host", "effective_from", *PRICE_KEYS, "host_best_retail")
# Valid stand-ins for fields already reported, so the rest of a row is still checked.
_VALID_HOST: dict[str, Any] = {
    "code": "XX",
    "name": "x",
    "currency": "CNY",
    "timezone": "UTC",
    "provisioning": "log",
    "provisioning_url": None,
}


def check_host(check: Checker, rows: Rows, index: int, row: dict[str, Any]) -> None:
    """Check one [[hosts]] row; add it to `rows` or report its problems."""
    key = row_key(row, index)
    if not check.keys(
        "hosts", key, row, allowed=(*HOST_KEYS, *USAGE_KEYS), required=("code", "name")
    ):
        return
    usage = _check_usage(check, key, row)
    known = {name: value for name, value in row.items() if name in HOST_KEYS}
    fields = check.every_problem(
        "hosts", key, lambda v: validate_host_fields(**v), known, _VALID_HOST
    )
    if fields is None:
        return
    if any(seen.fields["code"] == fields["code"] for seen in rows.hosts):
        check.problem("hosts", key, "the same host code appears more than once")
        return
    if usage is None:
        return
    rows.hosts.append(HostRow(key, fields, currency_given="currency" in row, usage=usage or None))


def _check_usage(check: Checker, key: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """The row's usage settings (an empty dict when it gives none), or None on a problem."""
    if not any(name in row for name in USAGE_KEYS):
        return {}
    ok = True
    try:
        columns = validate_cdr_columns(row.get("cdr_columns"))
    except InvalidInput as exc:
        check.problem("hosts", key, file_reason(exc))
        ok, columns = False, None
    amount = check.amount(
        "hosts",
        key,
        "reconcile_amount_tolerance",
        row.get("reconcile_amount_tolerance", "0"),
        parse_minor,
    )
    try:
        _, quantity_bp = validate_tolerances(
            amount or 0, row.get("reconcile_quantity_tolerance_bp", 0)
        )
    except InvalidInput as exc:
        check.problem("hosts", key, file_reason(exc))
        ok, quantity_bp = False, 0
    if not ok or amount is None:
        return None
    return {
        "cdr_columns": columns,
        "amount_tolerance_minor": amount,
        "quantity_tolerance_bp": quantity_bp,
    }


def refuse_currency_changes(check: Checker, rows: Rows, db_hosts: dict[str, HostCarrier]) -> None:
    """Refuse the file when it gives a stored host another currency.

    A host's rate cards, plans and its customers' balances are all held in
    its currency, so changing it would silently re-denominate them.
    :raises CatalogRefused: naming each such host with both currencies.
    """
    reasons = []
    for row in rows.hosts:
        stored = db_hosts.get(row.fields["code"])
        if stored is not None and stored.currency != row.fields["currency"]:
            reasons.append(
                currency_change_reason(
                    stored.code,
                    stored=stored.currency,
                    given=row.fields["currency"],
                    defaulted=not row.currency_given,
                )
            )
    if reasons:
        raise CatalogRefused("%(reasons)s", filename=check.filename, reasons="; ".join(reasons))


def check_rate_card(
    check: Checker, rows: Rows, index: int, row: dict[str, Any], known_hosts: set[str]
) -> None:
    """Check one [[rate_cards]] row; add it to `rows` or report its problems."""
    host, when = row.get("host"), row.get("effective_from")
    key = f"{host} {when}" if host is not None and when is not None else f"#{index}"
    table = "rate_cards"
    if not check.keys(table, key, row, allowed=RATE_CARD_KEYS, required=RATE_CARD_KEYS):
        return
    ok = check.host_ref(table, key, host, known_hosts)
    effective_from = as_date(when)
    if effective_from is None:
        check.problem(table, key, f"effective_from {when!r} is not a date like 2026-01-01")
        ok = False
    prices = {
        service: check.amount(table, key, stem, row[stem], parse_micro)
        for service, stem in zip(SERVICES, PRICE_KEYS, strict=True)
    }
    retail, retail_ok = _retail_prices(check, key, row["host_best_retail"])
    prices_micro = {s: p for s, p in prices.items() if p is not None}
    retail_micro = {s: p for s, p in retail.items() if p is not None}
    if (
        not (ok and retail_ok)
        or len(prices_micro) < len(SERVICES)
        or len(retail_micro) < len(SERVICES)
    ):
        return
    assert isinstance(host, str) and effective_from is not None
    host = host.strip()
    if any((seen.host, seen.effective_from) == (host, effective_from) for seen in rows.rate_cards):
        check.problem(table, key, "the same host and effective_from appear more than once")
        return
    if _differs_from_database(check, host, effective_from, prices_micro, retail_micro):
        check.problem(
            table,
            key,
            "the database has a rate card for this host and date with other "
            "prices; a rate card never changes: add a card with a new "
            "effective_from",
        )
        return
    rows.rate_cards.append(RateCardRow(key, host, effective_from, prices_micro, retail_micro))


def _retail_prices(check: Checker, key: str, retail_row: Any) -> tuple[dict[str, int | None], bool]:
    """The host_best_retail table's prices by service, and False if it had a problem."""
    table = "rate_cards"
    retail: dict[str, int | None] = {}
    if not isinstance(retail_row, dict):
        check.problem(table, key, "host_best_retail must be a table of the five prices")
        return retail, False
    ok = True
    for name in retail_row:
        if name not in PRICE_KEYS:
            check.problem(
                table,
                key,
                f"unknown key {name!r} in host_best_retail; known keys: {', '.join(PRICE_KEYS)}",
            )
            ok = False
    for service, stem in zip(SERVICES, PRICE_KEYS, strict=True):
        if stem not in retail_row:
            check.problem(table, key, f"missing key {stem!r} in host_best_retail")
            ok = False
        else:
            retail[service] = check.amount(
                table, key, f"host_best_retail.{stem}", retail_row[stem], parse_micro
            )
    return retail, ok


def _differs_from_database(
    check: Checker,
    host: str,
    effective_from: date,
    prices_micro: dict[str, int],
    retail_micro: dict[str, int],
) -> bool:
    """True when the database holds a card of this host and date with other prices."""
    db_host = find_host_by_code(check.session, host)
    if db_host is None or db_host.id is None:
        return False
    existing = rate_card_on(check.session, host_id=db_host.id, on=effective_from)
    if existing is None or existing.effective_from != effective_from:
        return False
    existing_prices = {s: existing.price(s) for s in SERVICES}
    existing_retail = {s: existing.retail_price(s) for s in SERVICES}
    return (existing_prices, existing_retail) != (prices_micro, retail_micro)


def transient_card(row: RateCardRow, *, now: datetime) -> RateCard:
    """The row as a `RateCard` never added to the session: it only prices a check."""
    columns = {f"{PRICE_UNITS[s][0]}_micro": row.prices_micro[s] for s in SERVICES}
    columns |= {f"retail_{PRICE_UNITS[s][0]}_micro": row.retail_micro[s] for s in SERVICES}
    return RateCard(host_id=0, effective_from=row.effective_from, created_at=now, **columns)


# -- applying --------------------------------------------------------------------------


def host_id(session: Session, code: str) -> int:
    """The id of a host the file names; hosts are applied before every other table."""
    host = find_host_by_code(session, code)
    assert host is not None and host.id is not None, "hosts are applied first"
    return host.id


def apply_host(session: Session, row: HostRow, *, actor: Actor, now: datetime) -> str:
    """Create or update the row's host; returns created, updated or unchanged.

    :raises HostCurrencyChange: the stored host has another currency.
    :raises DomainError: refused by `upsert_host`.
    """
    before = find_host_by_code(session, row.fields["code"])
    if before is not None and before.currency != row.fields["currency"]:
        # Checked before applying; a change committed meanwhile is refused here.
        raise HostCurrencyChange(
            currency_change_reason(
                before.code,
                stored=before.currency,
                given=row.fields["currency"],
                defaulted=not row.currency_given,
            )
        )
    snapshot = _host_snapshot(before) if before is not None else None
    host = upsert_host(session, **row.fields, actor=actor, now=now)
    if row.usage is not None:
        assert host.id is not None
        host = set_usage_settings(session, host_id=host.id, **row.usage, actor=actor, now=now)
    if snapshot is None:
        return "created"
    return "unchanged" if _host_snapshot(host) == snapshot else "updated"


def apply_rate_card(session: Session, row: RateCardRow, *, actor: Actor, now: datetime) -> str:
    """Add the row's rate card unless stored already; returns created or unchanged.

    :raises DomainError: refused by `add_rate_card`.
    """
    hid = host_id(session, row.host)
    before = rate_card_on(session, host_id=hid, on=row.effective_from)
    existed = before is not None and before.effective_from == row.effective_from
    add_rate_card(
        session,
        host_id=hid,
        effective_from=row.effective_from,
        prices_micro=row.prices_micro,
        retail_micro=row.retail_micro,
        actor=actor,
        now=now,
    )
    return "unchanged" if existed else "created"


def _host_snapshot(host: HostCarrier) -> tuple[Any, ...]:
    usage = (
        host.cdr_columns,
        host.reconcile_amount_tolerance_minor,
        host.reconcile_quantity_tolerance_bp,
    )
    return (*(getattr(host, name) for name in HOST_KEYS), *usage)
