"""The load workflow: read the file, check every row, then apply them in one savepoint."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.catalog.blocks import apply_block, check_block
from app.catalog.checking import Checker
from app.catalog.errors import CatalogInvalid, CatalogRefused
from app.catalog.hosts import (
    apply_host,
    apply_rate_card,
    check_host,
    check_rate_card,
    refuse_currency_changes,
)
from app.catalog.parsing import parse_document
from app.catalog.plans import apply_addon, apply_plan, check_addon, check_plan
from app.catalog.rows import TABLES, Rows
from app.core.audit import Actor, record_audit
from app.core.errors import DomainError
from wholesale.services import list_hosts


@dataclass(frozen=True)
class CatalogReport:
    """What a load did, per table: rows created, updated and unchanged."""

    file: str
    counts: dict[str, dict[str, int]]

    @property
    def changed(self) -> bool:
        """True when any row was created or updated."""
        return any(c["created"] or c["updated"] for c in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as `mvno catalog load --json` prints it."""
        return {"file": self.file, **{table: dict(c) for table, c in self.counts.items()}}


class _ApplyFailed(Exception):
    """Unwinds the savepoint of the apply phase after a service refused a row."""


def load_catalog(
    session: Session, *, text: str, filename: str, actor: Actor, now: datetime
) -> CatalogReport:
    """Check a catalog file completely, then load it in one savepoint.

    Idempotent (see the package docstring); atomic — with any problem nothing
    is changed and `CatalogInvalid` lists every problem found.
    :raises CatalogRefused: a file too large or too deeply nested to read, one
        with nothing to load, or one that changes a stored host's currency.
    :raises CatalogInvalid: malformed TOML, bad rows, or a refusal while applying.
    """
    document = parse_document(text, filename=filename)
    check = Checker(session, filename=filename, now=now)
    rows = check_document(check, document)
    if check.problems:
        raise CatalogInvalid(filename=filename, problems=check.problems)
    if rows.empty:
        raise CatalogRefused(
            "empty: no %(tables)s or [[%(last)s]] rows",
            filename=filename,
            tables=", ".join(f"[[{table}]]" for table in TABLES[:-1]),
            last=TABLES[-1],
        )
    try:
        with session.begin_nested():
            counts = apply_rows(check, rows, actor=actor)
            if check.problems:
                raise _ApplyFailed
    except _ApplyFailed:
        raise CatalogInvalid(filename=filename, problems=check.problems) from None
    record_audit(
        session,
        actor=actor,
        action="catalog.load",
        now=now,
        target_type="catalog",
        details={
            "file": filename,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "counts": counts,
        },
    )
    return CatalogReport(file=filename, counts=counts)


def check_document(check: Checker, document: dict[str, Any]) -> Rows:
    """Check every row of every table, in dependency order, without writing anything.

    Problems are collected on `check`; the rows that passed are returned.
    :raises CatalogRefused: a stored host would change currency.
    """
    for table in document:
        if table not in TABLES:
            check.problem(table, "", f"unknown table; expected one of {', '.join(TABLES)}")
    rows = Rows()
    host_rows = check.table(document, "hosts")
    db_hosts = {host.code: host for host in list_hosts(check.session)}
    # Every host code the file names counts as known, even on a bad row, so
    # that one mistake is reported once rather than again on every reference.
    known_hosts = set(db_hosts) | {
        row["code"].strip() for _, row in host_rows if isinstance(row.get("code"), str)
    }
    for index, row in host_rows:
        check_host(check, rows, index, row)
    refuse_currency_changes(check, rows, db_hosts)
    for index, row in check.table(document, "rate_cards"):
        before = len(check.problems)
        check_rate_card(check, rows, index, row, known_hosts)
        check.rate_cards_incomplete |= len(check.problems) > before
    for index, row in check.table(document, "number_blocks"):
        check_block(check, rows, index, row, known_hosts)
    for index, row in check.table(document, "plans"):
        check_plan(check, rows, index, row, known_hosts, db_hosts)
    for index, row in check.table(document, "addons"):
        check_addon(check, rows, index, row)
    return rows


def apply_rows(check: Checker, rows: Rows, *, actor: Actor) -> dict[str, dict[str, int]]:
    """Apply checked rows through the services, in dependency order; counts per table.

    Each row runs in its own savepoint; a service's refusal becomes a problem
    on `check` (the caller then rolls the whole apply back).
    """
    session, now = check.session, check.now
    counts = {t: {"created": 0, "updated": 0, "unchanged": 0} for t in TABLES}

    def step(table: str, key: str, action: Callable[..., str], row: Any) -> None:
        try:
            with session.begin_nested():
                outcome = action(session, row, actor=actor, now=now)
        except DomainError as exc:
            check.problem(table, key, exc.message)
            return
        counts[table][outcome] += 1

    for host_row in rows.hosts:
        step("hosts", host_row.key, apply_host, host_row)
    if check.problems:
        return counts  # every later row needs its host
    for card_row in rows.rate_cards:
        step("rate_cards", card_row.key, apply_rate_card, card_row)
    for block_row in rows.number_blocks:
        step("number_blocks", block_row.key, apply_block, block_row)
    for plan_row in rows.plans:
        step("plans", plan_row.key, apply_plan, plan_row)
    for addon_row in rows.addons:
        step("addons", addon_row.key, apply_addon, addon_row)
    return counts
