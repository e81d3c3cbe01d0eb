"""Load a catalog file: hosts, rate cards, number blocks, plans, add-ons (DESIGN §13).

The format is fixed by ``examples/catalog.toml``: arrays of tables
``[[hosts]]``, ``[[rate_cards]]`` (with a nested ``host_best_retail`` table),
``[[number_blocks]]``, ``[[plans]]`` and optionally ``[[addons]]``. Prices
are decimal strings in currency units: customer amounts hold at most 2
decimals, wholesale prices at most 6; more precision is a problem, never
rounded away.

Rules:

* **Everything is checked first.** Every problem of every row is collected
  as a `Problem(file, table, key, reason)`; unknown keys are problems too.
  A file with any problem loads nothing (`CatalogInvalid`).
* **Then it is applied in dependency order** (hosts, rate cards, number
  blocks, plans, add-ons) through the services, so their rules and audit
  records apply. A refusal by a service while applying (a race, a rule the
  checks above could not see) is also reported as a problem, and the whole
  load is rolled back: it is atomic.
* **Idempotent.** Rows are keyed by code (hosts, plans, add-ons), by (host,
  effective_from) for rate cards and by (host, first, last) for number
  blocks. Loading the same file again changes nothing and writes only the
  one ``catalog.load`` audit summary every load writes.
* **Plans.** A plan's host is its ``host`` key, else the only host in the file
  and the database. A new code is created; changed terms go through
  `update_plan` (a published plan gets a new version); ``status =
  "published"`` then publishes it — without a margin override, so a negative
  margin is a problem; ``status = "retired"`` retires the published version
  (its terms in the file are not loaded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any, TypeVar

import phonenumbers
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.audit import Actor, record_audit
from app.core.errors import N_, DomainError, InvalidInput
from app.core.money import format_plain, parse_micro, parse_minor
from numbering.blocks import add_number_block
from numbering.models import NumberBlock
from plans.addons import upsert_addon, validate_addon_input
from plans.models import PLAN_STATUSES, AddOn, Plan
from plans.pricing import margin_with_rate_card
from plans.services import create_plan, find_plan_by_code, publish_plan, retire_plan, update_plan
from plans.terms import PlanInput, plan_terms, validate_plan_input
from wholesale.models import PRICE_UNITS, SERVICES, HostCarrier, RateCard
from wholesale.services import (
    add_rate_card,
    find_host_by_code,
    list_hosts,
    local_date,
    rate_card_on,
    upsert_host,
    validate_host_fields,
)

TABLES = ("hosts", "rate_cards", "number_blocks", "plans", "addons")
MAX_BLOCK_SIZE = 1_000_000
_E164_RE = re.compile(r"\+[1-9]\d{1,14}")
# The rate card keys of the file, in service order: data_per_mb, voice_per_min, …
_PRICE_KEYS = tuple(PRICE_UNITS[service][0] for service in SERVICES)
# Stands in for the id of a host that is only created when the file is applied.
_UNSAVED_HOST_ID = 1
_T = TypeVar("_T")
# Valid stand-ins for fields already reported, so the rest of a row is still checked.
_VALID_HOST: dict[str, Any] = {
    "code": "XX",
    "name": "x",
    "currency": "CNY",
    "timezone": "UTC",
    "provisioning": "log",
    "provisioning_url": None,
}
_VALID_PLAN: dict[str, Any] = {
    "code": "XX",
    "names": {"en": "x"},
    "descriptions": {},
    "host_id": _UNSAVED_HOST_ID,
    "price_minor": 0,
    "validity_days": 1,
    "data_mb": 0,
    "voice_min": 0,
    "sms": 0,
    "overage_data_per_mb_minor": 0,
    "overage_voice_per_min_minor": 0,
    "overage_sms_minor": 0,
    "voice_increment_s": 60,
    "auto_renew_default": True,
}
_VALID_ADDON: dict[str, Any] = {
    "code": "XX",
    "names": {"en": "x"},
    "price_minor": 0,
    "data_mb": 1,
    "status": "draft",
}

_HOST_KEYS = ("code", "name", "currency", "timezone", "provisioning", "provisioning_url")
_RATE_CARD_KEYS = ("host", "effective_from", *_PRICE_KEYS, "host_best_retail")
_BLOCK_KEYS = ("host", "first", "last")
_PLAN_KEYS = (
    "code",
    "name",
    "description",
    "status",
    "host",
    "price",
    "validity_days",
    "data_mb",
    "voice_min",
    "sms",
    "overage_data_per_mb",
    "overage_voice_per_min",
    "overage_sms",
    "voice_increment_s",
    "auto_renew",
)
_ADDON_KEYS = ("code", "name", "price", "data_mb", "status")


@dataclass(frozen=True)
class Problem:
    """Why one row of a catalog file cannot be loaded."""

    file: str
    table: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.table}] {self.key}: {self.reason}"


class CatalogInvalid(InvalidInput):
    """A catalog file with at least one problem: nothing was loaded; `problems` says why."""

    code = "catalog_invalid"

    def __init__(self, *, filename: str, problems: Sequence[Problem]):
        super().__init__(
            N_("%(count)s problem(s) in %(file)s; nothing loaded"),
            count=len(problems),
            file=filename,
        )
        self.problems: tuple[Problem, ...] = tuple(problems)

    def details(self) -> dict[str, Any] | None:
        return {"problems": [dataclasses.asdict(problem) for problem in self.problems]}


@dataclass(frozen=True)
class CatalogReport:
    """What a load did, per table: rows created, updated and unchanged."""

    file: str
    counts: dict[str, dict[str, int]]

    @property
    def changed(self) -> bool:
        return any(c["created"] or c["updated"] for c in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, **{table: dict(c) for table, c in self.counts.items()}}


# -- rows that passed the checks -----------------------------------------------------


@dataclass(frozen=True)
class _HostRow:
    key: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class _RateCardRow:
    key: str
    host: str
    effective_from: date
    prices_micro: dict[str, int]
    retail_micro: dict[str, int]


@dataclass(frozen=True)
class _BlockRow:
    key: str
    host: str
    first: str
    last: str


@dataclass(frozen=True)
class _PlanRow:
    key: str
    host: str
    status: str
    data: PlanInput  # host_id is resolved when the file is applied


@dataclass(frozen=True)
class _AddOnRow:
    key: str
    fields: dict[str, Any]


@dataclass
class _Rows:
    hosts: list[_HostRow] = field(default_factory=list)
    rate_cards: list[_RateCardRow] = field(default_factory=list)
    number_blocks: list[_BlockRow] = field(default_factory=list)
    plans: list[_PlanRow] = field(default_factory=list)
    addons: list[_AddOnRow] = field(default_factory=list)


class _ApplyFailed(Exception):
    """Unwinds the savepoint of the apply phase after a service refused a row."""


# -- loading -------------------------------------------------------------------------


def load_catalog(
    session: Session, *, text: str, filename: str, actor: Actor, now: datetime
) -> CatalogReport:
    """Check a catalog file completely, then load it in one savepoint.

    Idempotent (see the module docstring); atomic — with any problem nothing
    is changed and `CatalogInvalid` lists every problem found.
    :raises CatalogInvalid: malformed TOML, bad rows, or a refusal while applying.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = Problem(filename, "", "", f"malformed TOML: {exc}")
        raise CatalogInvalid(filename=filename, problems=[problem]) from None
    loader = _Loader(session, filename=filename, now=now)
    rows = loader.check(document)
    if loader.problems:
        raise CatalogInvalid(filename=filename, problems=loader.problems)
    try:
        with session.begin_nested():
            counts = loader.apply(rows, actor=actor)
            if loader.problems:
                raise _ApplyFailed
    except _ApplyFailed:
        raise CatalogInvalid(filename=filename, problems=loader.problems) from None
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


class _Loader:
    def __init__(self, session: Session, *, filename: str, now: datetime):
        self.session = session
        self.filename = filename
        self.now = now
        self.problems: list[Problem] = []
        # A rate card row with a problem might have been the one a plan needs:
        # margins are then not checked, rather than reported falsely.
        self.rate_cards_incomplete = False
        self.counts = {t: {"created": 0, "updated": 0, "unchanged": 0} for t in TABLES}

    def problem(self, table: str, key: str, reason: str) -> None:
        self.problems.append(Problem(self.filename, table, key, reason))

    # -- checking --------------------------------------------------------------------

    def check(self, document: dict[str, Any]) -> _Rows:
        for table in document:
            if table not in TABLES:
                self.problem(table, "", f"unknown table; expected one of {', '.join(TABLES)}")
        rows = _Rows()
        host_rows = self._table(document, "hosts")
        db_hosts = {host.code: host for host in list_hosts(self.session)}
        # Every host code the file names counts as known, even on a bad row, so
        # that one mistake is reported once rather than again on every reference.
        known_hosts = set(db_hosts) | {
            row["code"].strip() for _, row in host_rows if isinstance(row.get("code"), str)
        }
        for index, row in host_rows:
            self._check_host(rows, index, row)
        for index, row in self._table(document, "rate_cards"):
            before = len(self.problems)
            self._check_rate_card(rows, index, row, known_hosts)
            self.rate_cards_incomplete |= len(self.problems) > before
        for index, row in self._table(document, "number_blocks"):
            self._check_block(rows, index, row, known_hosts)
        for index, row in self._table(document, "plans"):
            self._check_plan(rows, index, row, known_hosts, db_hosts)
        for index, row in self._table(document, "addons"):
            self._check_addon(rows, index, row)
        return rows

    def _table(self, document: dict[str, Any], table: str) -> list[tuple[int, dict[str, Any]]]:
        value = document.get(table, [])
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            self.problem(table, "", f"must be an array of tables, written [[{table}]]")
            return []
        return list(enumerate(value, start=1))

    def _keys(
        self,
        table: str,
        key: str,
        row: dict[str, Any],
        *,
        allowed: Sequence[str],
        required: Sequence[str],
    ) -> bool:
        """Report unknown and missing keys; True when every required key is there."""
        for name in row:
            if name not in allowed:
                self.problem(table, key, f"unknown key {name!r}; known keys: {', '.join(allowed)}")
        missing = [name for name in required if name not in row]
        for name in missing:
            self.problem(table, key, f"missing key {name!r}")
        return not missing

    def _host_ref(self, table: str, key: str, code: Any, known: set[str]) -> bool:
        if not isinstance(code, str) or code.strip() not in known:
            self.problem(
                table, key, f"unknown host {code!r}: not in this file's [[hosts]] nor the database"
            )
            return False
        return True

    def _amount(
        self, table: str, key: str, name: str, value: Any, parse: Callable[[str], int]
    ) -> int | None:
        if not isinstance(value, str):
            self.problem(table, key, f'{name} must be a decimal string in quotes, like "29.00"')
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.problem(table, key, f"{name}: {exc}")
            return None

    def _every_problem(
        self,
        table: str,
        key: str,
        validate: Callable[[dict[str, Any]], _T],
        values: dict[str, Any],
        valid: dict[str, Any],
    ) -> _T | None:
        """Report every field a service's validator refuses, not just the first.

        The validators stop at the first bad field; each refused field is
        replaced by a valid stand-in from `valid` and the row checked again.
        Returns the cleaned values, or None when anything was refused.
        """
        values = dict(values)
        refused = False
        for _ in range(len(values) + 1):
            try:
                cleaned = validate(values)
            except InvalidInput as exc:
                refused = True
                self.problem(table, key, _file_reason(exc))
                name = (exc.field or "").split(".")[0]
                if name not in valid or values.get(name) == valid[name]:
                    return None
                values[name] = valid[name]
            else:
                return None if refused else cleaned
        return None

    def _check_host(self, rows: _Rows, index: int, row: dict[str, Any]) -> None:
        key = _row_key(row, index)
        if not self._keys("hosts", key, row, allowed=_HOST_KEYS, required=("code", "name")):
            return
        known = {name: value for name, value in row.items() if name in _HOST_KEYS}
        fields = self._every_problem(
            "hosts", key, lambda v: validate_host_fields(**v), known, _VALID_HOST
        )
        if fields is None:
            return
        if any(seen.fields["code"] == fields["code"] for seen in rows.hosts):
            self.problem("hosts", key, "the same host code appears more than once")
            return
        rows.hosts.append(_HostRow(key, fields))

    def _check_rate_card(
        self, rows: _Rows, index: int, row: dict[str, Any], known_hosts: set[str]
    ) -> None:
        host, when = row.get("host"), row.get("effective_from")
        key = f"{host} {when}" if host is not None and when is not None else f"#{index}"
        table = "rate_cards"
        if not self._keys(table, key, row, allowed=_RATE_CARD_KEYS, required=_RATE_CARD_KEYS):
            return
        ok = self._host_ref(table, key, host, known_hosts)
        effective_from = _as_date(when)
        if effective_from is None:
            self.problem(table, key, f"effective_from {when!r} is not a date like 2026-01-01")
            ok = False
        prices = {
            service: self._amount(table, key, stem, row[stem], parse_micro)
            for service, stem in zip(SERVICES, _PRICE_KEYS, strict=True)
        }
        retail_row = row["host_best_retail"]
        retail: dict[str, int | None] = {}
        if not isinstance(retail_row, dict):
            self.problem(table, key, "host_best_retail must be a table of the five prices")
            ok = False
        else:
            for name in retail_row:
                if name not in _PRICE_KEYS:
                    self.problem(
                        table,
                        key,
                        f"unknown key {name!r} in host_best_retail; "
                        f"known keys: {', '.join(_PRICE_KEYS)}",
                    )
                    ok = False
            for service, stem in zip(SERVICES, _PRICE_KEYS, strict=True):
                if stem not in retail_row:
                    self.problem(table, key, f"missing key {stem!r} in host_best_retail")
                    ok = False
                else:
                    retail[service] = self._amount(
                        table, key, f"host_best_retail.{stem}", retail_row[stem], parse_micro
                    )
        prices_micro = {s: p for s, p in prices.items() if p is not None}
        retail_micro = {s: p for s, p in retail.items() if p is not None}
        if not ok or len(prices_micro) < len(SERVICES) or len(retail_micro) < len(SERVICES):
            return
        assert isinstance(host, str) and effective_from is not None
        host = host.strip()
        if any(
            (seen.host, seen.effective_from) == (host, effective_from) for seen in rows.rate_cards
        ):
            self.problem(table, key, "the same host and effective_from appear more than once")
            return
        db_host = find_host_by_code(self.session, host)
        if db_host is not None and db_host.id is not None:
            existing = rate_card_on(self.session, host_id=db_host.id, on=effective_from)
            if existing is not None and existing.effective_from == effective_from:
                existing_prices = {s: existing.price(s) for s in SERVICES}
                existing_retail = {s: existing.retail_price(s) for s in SERVICES}
                if (existing_prices, existing_retail) != (prices_micro, retail_micro):
                    self.problem(
                        table,
                        key,
                        "the database has a rate card for this host and date with other "
                        "prices; a rate card never changes: add a card with a new "
                        "effective_from",
                    )
                    return
        rows.rate_cards.append(_RateCardRow(key, host, effective_from, prices_micro, retail_micro))

    def _check_block(
        self, rows: _Rows, index: int, row: dict[str, Any], known_hosts: set[str]
    ) -> None:
        host, first, last = row.get("host"), row.get("first"), row.get("last")
        key = f"{host} {first}" if host is not None and first is not None else f"#{index}"
        table = "number_blocks"
        if not self._keys(table, key, row, allowed=_BLOCK_KEYS, required=_BLOCK_KEYS):
            return
        ok = self._host_ref(table, key, host, known_hosts)
        for name, value in (("first", first), ("last", last)):
            reason = _e164_problem(value)
            if reason is not None:
                self.problem(table, key, f"{name}: {reason}")
                ok = False
        if not ok:
            return
        assert isinstance(host, str) and isinstance(first, str) and isinstance(last, str)
        host, first, last = host.strip(), first.strip(), last.strip()
        if len(first) != len(last):
            self.problem(table, key, "first and last must have the same number of digits")
            return
        first_number, last_number = phonenumbers.parse(first), phonenumbers.parse(last)
        if first_number.country_code != last_number.country_code or phonenumbers.number_type(
            first_number
        ) != phonenumbers.number_type(last_number):
            self.problem(
                table, key, "first and last must have the same country code and number type"
            )
            return
        if first > last:
            self.problem(table, key, "first must not be after last")
            return
        size = int(last[1:]) - int(first[1:]) + 1
        if size > MAX_BLOCK_SIZE:
            self.problem(
                table, key, f"a block holds at most {MAX_BLOCK_SIZE:,} numbers; this has {size:,}"
            )
            return
        # Numbers of the same length compare as text just as they do as integers.
        for seen in rows.number_blocks:
            if len(seen.first) == len(first) and seen.first <= last and first <= seen.last:
                self.problem(table, key, f"overlaps the block {seen.key} in this file")
                return
        overlapping = self.session.exec(
            select(NumberBlock, HostCarrier.code)
            .join(HostCarrier, col(HostCarrier.id) == col(NumberBlock.host_id))
            .where(
                func.length(NumberBlock.first) == len(first),
                col(NumberBlock.first) <= last,
                col(NumberBlock.last) >= first,
            )
        ).all()
        for block, block_host in overlapping:
            if (block_host, block.first, block.last) != (host, first, last):
                self.problem(
                    table,
                    key,
                    f"overlaps the block {block.first}–{block.last} of host {block_host} "
                    "in the database",
                )
                return
        rows.number_blocks.append(_BlockRow(key, host, first, last))

    def _check_plan(
        self,
        rows: _Rows,
        index: int,
        row: dict[str, Any],
        known_hosts: set[str],
        db_hosts: dict[str, HostCarrier],
    ) -> None:
        key = _row_key(row, index)
        table = "plans"
        required = ("code", "name", "price", "validity_days")
        if not self._keys(table, key, row, allowed=_PLAN_KEYS, required=required):
            return
        ok = True
        status = row.get("status", "draft")
        if status not in PLAN_STATUSES:
            self.problem(
                table, key, f"status must be one of {', '.join(PLAN_STATUSES)}; got {status!r}"
            )
            ok = False
        if "host" in row:
            host = row["host"]
            ok = self._host_ref(table, key, host, known_hosts) and ok
        elif len(known_hosts) == 1:
            host = next(iter(known_hosts))
        else:
            self.problem(
                table,
                key,
                f"no host: the file and the database have {len(known_hosts)} hosts, "
                'so name one with host = "CODE"',
            )
            ok = False
        price, overage_data, overage_voice, overage_sms = (
            self._amount(table, key, name, row.get(name, "0"), parse_minor)
            for name in ("price", "overage_data_per_mb", "overage_voice_per_min", "overage_sms")
        )
        # An amount already reported stands in as 0 so the other fields are still checked.
        values = {
            "code": row["code"],
            "names": row["name"],
            "descriptions": row.get("description", {}),
            "host_id": _UNSAVED_HOST_ID,
            "price_minor": price or 0,
            "validity_days": row["validity_days"],
            "data_mb": row.get("data_mb", 0),
            "voice_min": row.get("voice_min", 0),
            "sms": row.get("sms", 0),
            "voice_increment_s": row.get("voice_increment_s", 60),
            "auto_renew_default": row.get("auto_renew", True),
            "overage_data_per_mb_minor": overage_data or 0,
            "overage_voice_per_min_minor": overage_voice or 0,
            "overage_sms_minor": overage_sms or 0,
        }
        data = self._every_problem(
            table, key, lambda v: validate_plan_input(PlanInput(**v)), values, _VALID_PLAN
        )
        if (
            data is None
            or not ok
            or price is None
            or overage_data is None
            or overage_voice is None
            or overage_sms is None
        ):
            return
        if any(seen.data.code == data.code for seen in rows.plans):
            self.problem(table, key, "the same plan code appears more than once")
            return
        assert isinstance(host, str)
        plan_row = _PlanRow(key, host.strip(), status, data)
        if self._plan_status_problem(rows, plan_row, db_hosts):
            return
        rows.plans.append(plan_row)

    def _plan_status_problem(
        self, rows: _Rows, plan_row: _PlanRow, db_hosts: dict[str, HostCarrier]
    ) -> bool:
        """Report what would stop the row's status from being reached; True if reported."""
        table, key = "plans", plan_row.key
        latest = find_plan_by_code(self.session, plan_row.data.code)
        if plan_row.status == "retired":
            versions = [] if latest is None else self._statuses(plan_row.data.code)
            if not {"published", "retired"} & set(versions):
                self.problem(
                    table,
                    key,
                    "only a plan that was published can be retired; this one never was",
                )
                return True
            return False
        if plan_row.status != "published" or self.rate_cards_incomplete:
            return False
        file_host = next((h.fields for h in rows.hosts if h.fields["code"] == plan_row.host), None)
        db_host = db_hosts.get(plan_row.host)
        currency = file_host["currency"] if file_host else db_host.currency if db_host else ""
        if latest is not None and latest.status == "published":
            terms = plan_terms(
                dataclasses.replace(plan_row.data, host_id=latest.host_id), currency=currency
            )
            if db_host is not None and db_host.id == latest.host_id and terms == latest.terms():
                return False  # already published as it is: nothing will be published
        timezone = file_host["timezone"] if file_host else db_host.timezone if db_host else "UTC"
        on = local_date(timezone, now=self.now)
        card = self._card_in_force(rows, plan_row.host, db_host, on)
        if card is None:
            self.problem(
                table,
                key,
                f"host {plan_row.host} has no rate card in force on {on.isoformat()}, "
                "so the margin cannot be computed and the plan cannot be published",
            )
            return True
        data = plan_row.data
        margin = margin_with_rate_card(
            Plan(
                code=data.code,
                host_id=data.host_id,
                price_minor=data.price_minor,
                validity_days=data.validity_days,
                data_mb=data.data_mb,
                voice_min=data.voice_min,
                sms=data.sms,
                created_at=self.now,
            ),
            card,
        )
        if margin.margin_minor < 0:
            self.problem(
                table,
                key,
                f"negative margin of {format_plain(margin.margin_minor)} {currency} a period "
                f"(price {format_plain(margin.price_minor)}, wholesale cost "
                f"{format_plain(margin.cost_minor)}); a catalog cannot publish it — "
                "publish it in the console with an override and a reason",
            )
            return True
        return False

    def _statuses(self, code: str) -> list[str]:
        return list(self.session.exec(select(Plan.status).where(Plan.code == code)))

    def _card_in_force(
        self, rows: _Rows, host: str, db_host: HostCarrier | None, on: date
    ) -> RateCard | None:
        candidates: list[RateCard] = []
        if db_host is not None and db_host.id is not None:
            card = rate_card_on(self.session, host_id=db_host.id, on=on)
            if card is not None:
                candidates.append(card)
        for row in rows.rate_cards:
            if row.host == host and row.effective_from <= on:
                # A transient card, never added to the session: it only prices the check.
                candidates.append(_transient_card(row, now=self.now))
        return max(candidates, key=lambda card: card.effective_from, default=None)

    def _check_addon(self, rows: _Rows, index: int, row: dict[str, Any]) -> None:
        key = _row_key(row, index)
        table = "addons"
        required = ("code", "name", "price", "data_mb")
        if not self._keys(table, key, row, allowed=_ADDON_KEYS, required=required):
            return
        price = self._amount(table, key, "price", row["price"], parse_minor)
        values = {
            "code": row["code"],
            "names": row["name"],
            "price_minor": price or 0,
            "data_mb": row["data_mb"],
            "status": row.get("status", "draft"),
        }
        fields = self._every_problem(
            table, key, lambda v: validate_addon_input(**v), values, _VALID_ADDON
        )
        if fields is None or price is None:
            return
        if any(seen.fields["code"] == fields["code"] for seen in rows.addons):
            self.problem(table, key, "the same add-on code appears more than once")
            return
        rows.addons.append(_AddOnRow(key, fields))

    # -- applying --------------------------------------------------------------------

    def _step(self, table: str, key: str, action: Callable[[], str]) -> None:
        """Run one row's services in a savepoint; a refusal becomes a problem."""
        try:
            with self.session.begin_nested():
                outcome = action()
        except DomainError as exc:
            self.problem(table, key, exc.message)
            return
        self.counts[table][outcome] += 1

    def apply(self, rows: _Rows, *, actor: Actor) -> dict[str, dict[str, int]]:
        session, now = self.session, self.now

        def host_id(code: str) -> int:
            host = find_host_by_code(session, code)
            assert host is not None and host.id is not None, "hosts are applied first"
            return host.id

        def apply_host(row: _HostRow) -> str:
            before = find_host_by_code(session, row.fields["code"])
            snapshot = _host_snapshot(before) if before is not None else None
            host = upsert_host(session, **row.fields, actor=actor, now=now)
            if snapshot is None:
                return "created"
            return "unchanged" if _host_snapshot(host) == snapshot else "updated"

        def apply_rate_card(row: _RateCardRow) -> str:
            hid = host_id(row.host)
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

        def apply_block(row: _BlockRow) -> str:
            hid = host_id(row.host)
            existed = session.exec(
                select(NumberBlock.id).where(
                    NumberBlock.host_id == hid,
                    NumberBlock.first == row.first,
                    NumberBlock.last == row.last,
                )
            ).first()
            add_number_block(
                session, host_id=hid, first=row.first, last=row.last, actor=actor, now=now
            )
            return "unchanged" if existed is not None else "created"

        def apply_plan(row: _PlanRow) -> str:
            data = dataclasses.replace(row.data, host_id=host_id(row.host))
            latest = find_plan_by_code(session, data.code)
            if latest is None:
                plan = create_plan(session, data=data, actor=actor, now=now)
                outcome = "created"
            elif row.status == "retired":
                published = session.exec(
                    select(Plan).where(Plan.code == data.code, Plan.status == "published")
                ).first()
                if published is None or published.id is None:
                    return "unchanged"
                retire_plan(session, plan_id=published.id, actor=actor, now=now)
                return "updated"
            else:
                before = (latest.id, latest.terms())
                plan = update_plan(session, code=data.code, data=data, actor=actor, now=now)
                outcome = "unchanged" if (plan.id, plan.terms()) == before else "updated"
            if row.status == "published" and plan.status != "published":
                assert plan.id is not None
                publish_plan(session, plan_id=plan.id, actor=actor, now=now)
                outcome = "created" if outcome == "created" else "updated"
            return outcome

        def apply_addon(row: _AddOnRow) -> str:
            before = session.exec(select(AddOn).where(AddOn.code == row.fields["code"])).first()
            snapshot = _addon_snapshot(before) if before is not None else None
            addon = upsert_addon(session, **row.fields, actor=actor, now=now)
            if snapshot is None:
                return "created"
            return "unchanged" if _addon_snapshot(addon) == snapshot else "updated"

        for host_row in rows.hosts:
            self._step("hosts", host_row.key, partial(apply_host, host_row))
        if self.problems:
            return self.counts  # every later row needs its host
        for card_row in rows.rate_cards:
            self._step("rate_cards", card_row.key, partial(apply_rate_card, card_row))
        for block_row in rows.number_blocks:
            self._step("number_blocks", block_row.key, partial(apply_block, block_row))
        for plan_row in rows.plans:
            self._step("plans", plan_row.key, partial(apply_plan, plan_row))
        for addon_row in rows.addons:
            self._step("addons", addon_row.key, partial(apply_addon, addon_row))
        return self.counts


# -- helpers -------------------------------------------------------------------------


def _row_key(row: dict[str, Any], index: int) -> str:
    code = row.get("code")
    return code.strip() if isinstance(code, str) and code.strip() else f"#{index}"


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _e164_problem(value: Any) -> str | None:
    """Why `value` is not a valid E.164 number, or None."""
    if not isinstance(value, str) or not _E164_RE.fullmatch(value.strip()):
        return f"{value!r} is not an E.164 number like +8617012340000"
    try:
        number = phonenumbers.parse(value.strip())
    except phonenumbers.NumberParseException:
        return f"{value!r} is not a phone number"
    canonical = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if canonical != value.strip() or not phonenumbers.is_valid_number(number):
        return f"{value!r} is not a valid number in its country's numbering plan"
    return None


def _file_reason(exc: InvalidInput) -> str:
    """A service's message, with the file's key names where they differ from the field's."""
    message = exc.message
    for field_name, file_key in (
        ("descriptions", "description"),
        ("names", "name"),
        ("price_minor", "price"),
        ("auto_renew_default", "auto_renew"),
    ):
        message = re.sub(rf"\b{field_name}\b", file_key, message)
    return re.sub(r"\b(overage_\w+)_minor\b", r"\1", message)


def _transient_card(row: _RateCardRow, *, now: datetime) -> RateCard:
    columns = {f"{PRICE_UNITS[s][0]}_micro": row.prices_micro[s] for s in SERVICES}
    columns |= {f"retail_{PRICE_UNITS[s][0]}_micro": row.retail_micro[s] for s in SERVICES}
    return RateCard(host_id=0, effective_from=row.effective_from, created_at=now, **columns)


def _host_snapshot(host: HostCarrier) -> tuple[Any, ...]:
    return tuple(getattr(host, name) for name in _HOST_KEYS)


def _addon_snapshot(addon: AddOn) -> tuple[Any, ...]:
    return (addon.code, dict(addon.names), addon.price_minor, addon.data_mb, addon.status)
