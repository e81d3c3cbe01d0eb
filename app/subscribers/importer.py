"""Migration import of subscribers from another platform (DESIGN §13, `subscribers.csv`).

A file has the header `customer_ref,name,email,id_type,id_number,msisdn,
iccid,plan_code,period_start,balance` and one line (a phone line) per row.
Rules:

* **All or nothing.** Every row is checked first — in memory, then against
  the database with one query per lookup set — and one bad row refuses the
  whole file with a reject (file line, field, reason) for every problem of
  every row; nothing is written. The header is line 1.
* **Customers.** Rows with the same `customer_ref` are one customer with
  several lines; their name, e-mail and ID must agree. A ref must be new:
  the importer never adds lines to, or changes, a customer it did not just
  create. The ID number is validated like the store's real-name check, but
  a Chinese resident ID whose check digit is wrong is accepted (the previous
  platform verified the person) and listed as a warning for care to review.
  It is stored encrypted with PII_KEY beside its masked form.
* **Lines.** The number must be one of ours (a number block), free
  (available, or held by a hold that has run out) and on the same host as
  the plan; the SIM must be in stock on that host. The plan is the
  published version of `plan_code`. Each row opens an ACTIVE line whose
  first period starts at `period_start` (ISO 8601 with offset, in the past
  or the future) and ends exactly `validity_days × 24 h` later, with the
  plan's allowances and auto-renew default. The number becomes assigned and
  the SIM active. No provisioning event is sent: a migrated line is already
  live at the host.
* **Money.** A customer's opening balance is the sum of the `balance`
  column of its rows (at most 2 decimals, not negative). It may not pass
  the prepayment cap (DESIGN §5: `PREPAY_CAP_MONTHS` × the monthly fees of
  the customer's lines in the file); such a row is refused with a reason
  naming the cap. A positive opening balance is credited through the ledger
  as one entry per customer, kind `opening_balance`, from the `adjustments`
  system account, idempotency key `import:<customer_ref>`.
* **Re-import.** A file whose every customer already exists with exactly
  the file's lines (number, SIM, plan) and opening balance is reported as
  already imported and changes nothing; any other known ref is refused.
* **Speed.** The writes are set-based: multi-row INSERTs for customers,
  lines, periods and audit rows, one UPDATE per chunk of numbers and SIMs,
  and the ledger's `post_entries`. A number or SIM taken by someone else
  between the check and the write refuses the file (checked again for the
  reasons) and writes nothing.
* **Audit.** One `customer.import` record per customer (lines, masked ID,
  opening balance and its entry) and one `subscribers.import` for the file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import JSON, String, and_, any_, bindparam, func, insert, or_, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from stdnum.cn import ric

from app.charging.models import LinePeriod
from app.charging.periods import allowances, period_length
from app.core.audit import Actor, AuditEntry, record_audit
from app.core.clock import parse_instant
from app.core.errors import N_, InvalidInput, clean_text
from app.core.money import MAX_AMOUNT_MINOR, format_plain, parse_minor
from app.core.pii import PiiCipher, mask_id_number
from app.ledger.accounts import CUSTOMER_PREPAID, customer_account_ids, system_account_id
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.ledger.posting import BulkEntry, post_entries
from app.subscribers.errors import ImportProblem, SubscriberImportRejected
from app.subscribers.kyc import normalize_id
from app.subscribers.models import FINAL_LINE_STATUSES, ID_TYPES, Customer, Line
from numbering.models import NumberBlock, PhoneNumber, Sim
from plans.models import Plan
from plans.services import PLAN_CODE_RE, monthly_fee_minor
from wholesale.models import HostCarrier

__all__ = [
    "ENTRY_KIND",
    "HEADER",
    "ImportProblem",
    "SubscriberImportReport",
    "import_subscribers",
    "opening_balance_key",
]

HEADER = "customer_ref,name,email,id_type,id_number,msisdn,iccid,plan_code,period_start,balance"
COLUMNS = tuple(HEADER.split(","))
ENTRY_KIND = "opening_balance"
SOURCE_KIND = "adjustments"
# Who took an imported number (numbering keeps `reserved_by` on an assigned number).
NUMBER_HOLDER = "subscribers-import"
_REF = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,19}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_ICCID = re.compile(r"[0-9]{18,22}")
_CHUNK = 1000
# Periods outside these are typing errors (and a year-9999 end would overflow).
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def opening_balance_key(customer_ref: str) -> str:
    """The ledger idempotency key of a customer's opening balance."""
    return f"import:{customer_ref}"


@dataclass(frozen=True)
class SubscriberImportReport:
    """What the file holds and what was done: created (or, when `already_imported`,
    found) customers and lines and the opening balances, in minor units."""

    filename: str
    rows: int
    customers: int
    lines: int
    balance_total_minor: int
    currency: str
    warnings: tuple[ImportProblem, ...] = ()
    already_imported: bool = False

    @property
    def id_check_digit_mismatch(self) -> int:
        return sum(1 for w in self.warnings if w.field == "id_number")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.filename,
            "rows": self.rows,
            "customers": self.customers,
            "lines": self.lines,
            "balance_total": self.balance_total_minor,
            "currency": self.currency,
            "already_imported": self.already_imported,
            "rejected": [],
            "warnings": [w.to_dict() for w in self.warnings],
            "id_check_digit_mismatch": self.id_check_digit_mismatch,
        }


# -- parsing --------------------------------------------------------------------------


@dataclass
class _Row:
    line: int
    ref: str = ""
    name: str = ""
    email: str | None = None
    id_type: str = ""
    id_number: str = ""
    msisdn: str = ""
    iccid: str = ""
    plan_code: str = ""
    period_start: datetime | None = None
    balance_minor: int | None = None
    problems: list[tuple[str | None, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # Filled by the database checks.
    plan: Plan | None = None
    sim_id: int | None = None

    def refuse(self, column: str | None, reason: str) -> None:
        self.problems.append((column, reason))

    def ok(self, column: str) -> bool:
        return not any(problem_field == column for problem_field, _ in self.problems)


def _decode(data: str | bytes) -> str | ImportProblem:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return ImportProblem(line, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x})")


# A value checked once per file: (normalised value or None, problem or None). The
# rows of one customer repeat its e-mail and ID, and validating them is most of
# the parsing time. Per call, never module-wide: the keys are personal data.
_Memo = dict[tuple[str, str, str], tuple[str | None, str | None]]


def _email(value: str, memo: _Memo) -> tuple[str | None, str | None]:
    key = ("email", "", value)
    if key not in memo:
        try:
            normalized = validate_email(value, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            memo[key] = (None, f"not a valid e-mail address: {exc}")
        else:
            too_long = "the e-mail address is longer than 254 characters"
            memo[key] = (normalized, too_long if len(normalized) > 254 else None)
    return memo[key]


def _id_number(id_type: str, value: str, memo: _Memo) -> tuple[str | None, str | None]:
    key = ("id", id_type, value)
    if key not in memo:
        try:
            memo[key] = (normalize_id(id_type, value, check_digit=False), None)
        except InvalidInput as exc:
            memo[key] = (None, exc.message)
    return memo[key]


def _check_digit_ok(id_type: str, value: str) -> bool:
    """`kyc.id_check_digit_ok` for a number `normalize_id` has accepted.

    Everything but the check digit is already verified, so only the digit is
    computed (python-stdnum's own formula) instead of a second full validation.
    """
    return id_type != "cn_ric" or ric.calc_check_digit(value) == value[-1]


def _check_fields(row: _Row, values: Sequence[str], memo: _Memo) -> None:
    ref, name, email, id_type, id_number, msisdn, iccid, plan_code, start, balance = (
        value.strip(" ") for value in values
    )
    row.ref = ref
    if not _REF.fullmatch(ref):
        row.refuse(
            "customer_ref",
            "customer_ref must be 1 to 20 capital letters, digits, '-' or '_' (like C-0001)",
        )
    try:
        row.name = clean_text(name, field="name", max_length=200, required=True)
    except InvalidInput:
        row.refuse("name", "name is required, at most 200 characters, without control characters")
    if email:
        row.email, problem = _email(email, memo)
        if problem:
            row.refuse("email", problem)
    row.id_type = id_type
    if id_type not in ID_TYPES:
        row.refuse("id_type", f"id_type must be one of {', '.join(ID_TYPES)}")
    else:
        normalized, problem = _id_number(id_type, id_number, memo)
        if problem or normalized is None:
            row.refuse("id_number", problem or "invalid ID number")
        else:
            row.id_number = normalized
            if not _check_digit_ok(id_type, normalized):
                row.warnings.append(
                    (
                        "id_number",
                        "the resident ID's check digit is wrong; accepted as verified by the"
                        " previous platform",
                    )
                )
    row.msisdn = msisdn
    if not _E164.fullmatch(msisdn):
        row.refuse("msisdn", "msisdn must be an E.164 number such as +8617012340001")
    row.iccid = iccid
    if not _ICCID.fullmatch(iccid):
        row.refuse("iccid", "ICCID must be 18 to 22 digits")
    row.plan_code = plan_code
    if not plan_code:
        row.refuse("plan_code", "plan_code is required")
    elif not PLAN_CODE_RE.fullmatch(plan_code):
        row.refuse("plan_code", f"no plan {plan_code!r}: not a plan code")
    try:
        row.period_start = parse_instant(start, field="period_start")
    except (InvalidInput, OverflowError):
        row.refuse(
            "period_start",
            "period_start must be an ISO 8601 time with offset, like 2026-10-01T00:00:00+08:00",
        )
    else:
        if not _EARLIEST <= row.period_start < _LATEST:
            row.refuse("period_start", "period_start must be in the years 2000 to 2099")
    try:
        row.balance_minor = parse_minor(balance)
    except ValueError:
        if balance.startswith("-"):
            row.refuse("balance", "balance must not be negative")
        else:
            row.refuse("balance", "balance must be an amount with at most 2 decimals, like 100.00")
    else:
        if row.balance_minor > MAX_AMOUNT_MINOR:
            row.refuse("balance", f"balance may be at most {format_plain(MAX_AMOUNT_MINOR)}")


def _parse(content: str) -> tuple[list[_Row], ImportProblem | None]:
    lines = content.split("\n")
    if not any(line.strip() for line in lines):
        return [], ImportProblem(1, None, f"the file is empty; it must start with {HEADER}")
    header = lines[0].rstrip("\r").strip()
    if header != HEADER:
        return [], ImportProblem(1, None, f"the first line must be the header {HEADER}")
    rows: list[_Row] = []
    memo: _Memo = {}
    for number, raw_line in enumerate(lines[1:], start=2):
        raw = raw_line.rstrip("\r")
        if not raw.strip():
            continue
        row = _Row(line=number)
        rows.append(row)
        try:
            values = next(csv.reader([raw], strict=True))
        except csv.Error as exc:
            row.refuse(None, f"not a CSV line: {exc}")
            continue
        if len(values) != len(COLUMNS):
            row.refuse(None, f"expected {len(COLUMNS)} columns ({HEADER}), found {len(values)}")
            continue
        _check_fields(row, values, memo)
    return rows, None


def _check_within_file(rows: list[_Row]) -> None:
    """Duplicate numbers and SIMs, and rows of one customer that disagree."""
    first_msisdn: dict[str, int] = {}
    first_iccid: dict[str, int] = {}
    first_of_customer: dict[str, _Row] = {}
    for row in rows:
        if row.msisdn and row.ok("msisdn"):
            if row.msisdn in first_msisdn:
                row.refuse("msisdn", f"the number duplicates line {first_msisdn[row.msisdn]}")
            else:
                first_msisdn[row.msisdn] = row.line
        if row.iccid and row.ok("iccid"):
            if row.iccid in first_iccid:
                row.refuse("iccid", f"the ICCID duplicates line {first_iccid[row.iccid]}")
            else:
                first_iccid[row.iccid] = row.line
        if not row.ref or not row.ok("customer_ref"):
            continue
        first = first_of_customer.setdefault(row.ref, row)
        if first is row:
            continue
        row.warnings.clear()  # the customer's ID is reported once, on its first row
        for column, mine, theirs in (
            ("name", row.name, first.name),
            ("email", row.email, first.email),
            ("id_type", row.id_type, first.id_type),
            ("id_number", row.id_number, first.id_number),
        ):
            if row.ok(column) and first.ok(column) and mine != theirs:
                row.refuse(
                    column,
                    f"customer {row.ref} has another {column} on line {first.line};"
                    " the rows of one customer must agree",
                )


# -- database checks ------------------------------------------------------------------


def _among(session: Session, column: Any, values: Iterable[str]) -> Iterator[Any]:
    """WHERE clauses that together match `column` against each of `values`.

    PostgreSQL: one `= ANY(array)` with the values as a single parameter (an
    IN list of thousands of parameters costs more to build than to run).
    SQLite: IN lists of `_CHUNK` values. Values are sorted, so concurrent
    updates of overlapping sets lock rows in the same order.
    """
    ordered = sorted(set(values))
    if not ordered:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, ordered, type_=postgresql.ARRAY(String())))
        return
    for start in range(0, len(ordered), _CHUNK):
        yield column.in_(ordered[start : start + _CHUNK])


def _existing_refs(session: Session, rows: list[_Row]) -> dict[str, int]:
    found: dict[str, int] = {}
    refs = [row.ref for row in rows if row.ref and row.ok("customer_ref")]
    table = Customer.__table__  # type: ignore[attr-defined]
    for among in _among(session, table.c.ref, refs):
        found.update(
            (ref, customer_id)
            for customer_id, ref in session.execute(select(table.c.id, table.c.ref).where(among))
        )
    return found


def _published_plans(session: Session, codes: set[str]) -> tuple[dict[str, Plan], dict[str, str]]:
    """code → published version; code → status of its latest version (for the others)."""
    published: dict[str, Plan] = {}
    latest: dict[str, tuple[int, str]] = {}
    for among in _among(session, Plan.code, codes):
        for plan in session.scalars(select(Plan).where(among)):
            if plan.status == "published":
                published[plan.code] = plan
            if plan.code not in latest or plan.version > latest[plan.code][0]:
                latest[plan.code] = (plan.version, plan.status)
    return published, {code: status for code, (_, status) in latest.items()}


def _check_plans(session: Session, rows: list[_Row], currency: str) -> None:
    codes = {row.plan_code for row in rows if row.plan_code and row.ok("plan_code")}
    published, statuses = _published_plans(session, codes)
    for row in rows:
        if not row.plan_code or not row.ok("plan_code"):
            continue
        plan = published.get(row.plan_code)
        if plan is None:
            if row.plan_code in statuses:
                row.refuse(
                    "plan_code",
                    f"plan {row.plan_code} is not on sale (its latest version is"
                    f" {statuses[row.plan_code]})",
                )
            else:
                row.refuse("plan_code", f"no plan {row.plan_code}")
        elif plan.currency != currency:
            row.refuse(
                "plan_code",
                f"plan {row.plan_code} is priced in {plan.currency}, not {currency}",
            )
        else:
            row.plan = plan


def _host_codes(session: Session) -> dict[int, str]:
    hosts = HostCarrier.__table__  # type: ignore[attr-defined]
    return {host_id: code for host_id, code in session.execute(select(hosts.c.id, hosts.c.code))}


def _check_numbers(
    session: Session, rows: list[_Row], now: datetime, hosts: dict[int, str]
) -> None:
    numbers = PhoneNumber.__table__  # type: ignore[attr-defined]
    blocks = NumberBlock.__table__  # type: ignore[attr-defined]
    lines = Line.__table__  # type: ignore[attr-defined]
    wanted = [row.msisdn for row in rows if row.msisdn and row.ok("msisdn")]
    found: dict[str, Any] = {}
    with_line: set[str] = set()
    for among in _among(session, numbers.c.msisdn, wanted):
        query = (
            select(
                numbers.c.msisdn,
                numbers.c.status,
                numbers.c.reserved_until,
                blocks.c.host_id,
            )
            .join(blocks, blocks.c.id == numbers.c.block_id)
            .where(among)
        )
        found.update((r.msisdn, r) for r in session.execute(query))
    for among in _among(session, lines.c.msisdn, wanted):
        live = lines.c.status.not_in(FINAL_LINE_STATUSES)
        with_line.update(session.scalars(select(lines.c.msisdn).where(among, live)))
    for row in rows:
        if not row.msisdn or not row.ok("msisdn"):
            continue
        number = found.get(row.msisdn)
        if number is None:
            row.refuse("msisdn", f"{row.msisdn} is not in our number blocks")
            continue
        free = number.status == "available" or (
            number.status == "reserved"
            and number.reserved_until is not None
            and _aware(number.reserved_until) <= now
        )
        if not free:
            row.refuse("msisdn", f"{row.msisdn} is not available (it is {number.status})")
        elif row.msisdn in with_line:
            row.refuse("msisdn", f"{row.msisdn} already has a line")
        elif row.plan is not None and number.host_id != row.plan.host_id:
            row.refuse(
                "msisdn",
                f"{row.msisdn} is a number of host {hosts.get(number.host_id)}, but plan"
                f" {row.plan.code} is on host {hosts.get(row.plan.host_id)}",
            )


def _aware(value: datetime) -> datetime:
    """A time read by a Core query from SQLite comes back naive (UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _check_sims(session: Session, rows: list[_Row], hosts: dict[int, str]) -> None:
    sims = Sim.__table__  # type: ignore[attr-defined]
    wanted = [row.iccid for row in rows if row.iccid and row.ok("iccid")]
    found: dict[str, Any] = {}
    for among in _among(session, sims.c.iccid, wanted):
        query = select(sims.c.id, sims.c.iccid, sims.c.status, sims.c.host_id).where(among)
        found.update((r.iccid, r) for r in session.execute(query))
    for row in rows:
        if not row.iccid or not row.ok("iccid"):
            continue
        sim = found.get(row.iccid)
        if sim is None:
            row.refuse("iccid", f"SIM {row.iccid} is not in our stock")
        elif sim.status != "in_stock":
            row.refuse("iccid", f"SIM {row.iccid} is not in stock (it is {sim.status})")
        elif row.plan is not None and sim.host_id != row.plan.host_id:
            row.refuse(
                "iccid",
                f"SIM {row.iccid} belongs to host {hosts.get(sim.host_id)}, but plan"
                f" {row.plan.code} is on host {hosts.get(row.plan.host_id)}",
            )
        else:
            row.sim_id = sim.id


def _customers(rows: list[_Row]) -> dict[str, list[_Row]]:
    """The rows of each customer, in file order (only rows with a usable ref)."""
    grouped: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        if row.ref and row.ok("customer_ref"):
            grouped[row.ref].append(row)
    return grouped


def _check_caps(rows: list[_Row], cap_months: int) -> None:
    """A customer's opening balance (the sum of its rows) may not pass its cap."""
    for ref, own in _customers(rows).items():
        if any(row.plan is None or not row.ok("balance") for row in own):
            continue  # already refused; the cap cannot be computed
        total = sum(row.balance_minor or 0 for row in own)
        cap = cap_months * sum(monthly_fee_minor(row.plan) for row in own if row.plan)
        if total > cap:
            target = next((row for row in own if row.balance_minor), own[0])
            target.refuse(
                "balance",
                f"the opening balance {format_plain(total)} of customer {ref} is above the"
                f" prepayment cap of {format_plain(cap)} ({cap_months} months of the fees of"
                f" its lines)",
            )
        elif total > MAX_AMOUNT_MINOR:
            own[0].refuse(
                "balance",
                f"the opening balance of customer {ref} may be at most"
                f" {format_plain(MAX_AMOUNT_MINOR)}",
            )


def _check_database(
    session: Session,
    rows: list[_Row],
    *,
    existing: dict[str, int],
    currency: str,
    cap_months: int,
    now: datetime,
) -> None:
    for row in rows:
        if row.ref in existing and row.ok("customer_ref"):
            row.refuse("customer_ref", f"customer {row.ref} already exists")
    hosts = _host_codes(session)
    _check_plans(session, rows, currency)
    _check_numbers(session, rows, now, hosts)
    _check_sims(session, rows, hosts)
    _check_caps(rows, cap_months)


def _already_imported(session: Session, rows: list[_Row], existing: dict[str, int]) -> bool:
    """Whether every customer of the file exists with exactly its lines and opening balance."""
    if not rows or any(row.problems or row.ref not in existing for row in rows):
        return False
    lines = Line.__table__  # type: ignore[attr-defined]
    sims = Sim.__table__  # type: ignore[attr-defined]
    plans = Plan.__table__  # type: ignore[attr-defined]
    customer_ids = sorted(set(existing.values()))
    held: dict[int, set[tuple[str, str | None, str]]] = defaultdict(set)
    for start in range(0, len(customer_ids), _CHUNK):
        query = (
            select(lines.c.customer_id, lines.c.msisdn, sims.c.iccid, plans.c.code)
            .join(plans, plans.c.id == lines.c.plan_id)
            .outerjoin(sims, sims.c.id == lines.c.sim_id)
            .where(lines.c.customer_id.in_(customer_ids[start : start + _CHUNK]))
        )
        for customer_id, msisdn, iccid, code in session.execute(query):
            held[customer_id].add((msisdn, iccid, code))
    credited = _opening_balances(session, list(existing))
    for ref, own in _customers(rows).items():
        wanted = {(row.msisdn, row.iccid, row.plan_code) for row in own}
        if held.get(existing[ref], set()) != wanted:
            return False
        if credited.get(ref, 0) != sum(row.balance_minor or 0 for row in own):
            return False
    return True


def _opening_balances(session: Session, refs: list[str]) -> dict[str, int]:
    """customer ref → the amount its opening-balance entry credited (absent: none)."""
    entries = JournalEntry.__table__  # type: ignore[attr-defined]
    postings = Posting.__table__  # type: ignore[attr-defined]
    accounts = LedgerAccount.__table__  # type: ignore[attr-defined]
    keys = {opening_balance_key(ref): ref for ref in refs}
    found: dict[str, int] = {}
    for among in _among(session, entries.c.idempotency_key, keys):
        query = (
            select(entries.c.idempotency_key, postings.c.amount_minor)
            .join(postings, postings.c.entry_id == entries.c.id)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(among, accounts.c.kind == CUSTOMER_PREPAID)
        )
        for key, amount in session.execute(query):
            found[keys[key]] = found.get(keys[key], 0) + int(amount)
    return found


# -- writing --------------------------------------------------------------------------


class _Changed(Exception):
    """A number or SIM was taken (or a ref created) by someone else after the checks."""


def _new_ids(session: Session, table: Any, count: int) -> list[int]:
    """`count` fresh primary keys of `table`, so rows can be inserted without RETURNING.

    PostgreSQL: drawn from the column's sequence (safe beside concurrent
    inserts). SQLite: after the largest id, which is safe because the write
    transaction (BEGIN IMMEDIATE) excludes every other writer.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        drawn = connection.execute(
            sql_text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": count},
        )
        return [int(value) for value in drawn.scalars()]
    largest = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar() or 0
    return list(range(int(largest) + 1, int(largest) + 1 + count))


def _insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows (dicts with the same keys) the fastest way each backend has.

    PostgreSQL: COPY on the session's own connection (same transaction);
    building multi-row INSERTs with tens of thousands of parameters cost
    more than the database's own work. SQLite: one executemany.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    import psycopg

    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    names = ", ".join(f'"{name}"' for name in columns)
    driver: Any = connection.connection.driver_connection
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(
                    [json.dumps(row[c]) if c in json_columns else row[c] for c in columns]
                )
    except psycopg.errors.IntegrityError:
        # A ref or number committed by another transaction after our checks.
        raise _Changed from None


def _update_among(session: Session, statement: Any, column: Any, values: list[str]) -> int:
    """Run a bulk UPDATE for the rows whose `column` is one of `values`; rows changed."""
    changed = 0
    for among in _among(session, column, values):
        result = session.connection().execute(statement.where(among))
        changed += int(result.rowcount or 0)
    return changed


def _write(
    session: Session,
    rows: list[_Row],
    *,
    filename: str,
    cipher: PiiCipher,
    currency: str,
    actor: Actor,
    now: datetime,
) -> dict[str, int]:
    """Insert and update everything for checked rows; returns customer ref → id."""
    customers_table = Customer.__table__  # type: ignore[attr-defined]
    lines_table = Line.__table__  # type: ignore[attr-defined]
    numbers_table = PhoneNumber.__table__  # type: ignore[attr-defined]
    sims_table = Sim.__table__  # type: ignore[attr-defined]
    grouped = _customers(rows)

    customer_ids = dict(zip(grouped, _new_ids(session, customers_table, len(grouped)), strict=True))
    customer_rows: list[dict[str, Any]] = []
    masked: dict[str, str] = {}
    for ref, own in grouped.items():
        first = own[0]
        masked[ref] = mask_id_number(first.id_number)
        customer_rows.append(
            {
                "id": customer_ids[ref],
                "ref": ref,
                "name": first.name,
                "email": first.email,
                "subscriber_account_id": None,
                "id_type": first.id_type,
                "id_number_enc": cipher.encrypt(first.id_number),
                "id_number_masked": masked[ref],
                "created_at": now,
            }
        )
    _insert_rows(session, customers_table, customer_rows)

    free = or_(
        numbers_table.c.status == "available",
        and_(numbers_table.c.status == "reserved", numbers_table.c.reserved_until <= now),
    )
    msisdns = [row.msisdn for row in rows]
    taken = _update_among(
        session,
        update(numbers_table)
        .where(free)
        .values(
            status="assigned",
            reserved_by=NUMBER_HOLDER,
            reserved_until=None,
            status_changed_at=now,
        ),
        numbers_table.c.msisdn,
        msisdns,
    )
    iccids = [row.iccid for row in rows]
    activated = _update_among(
        session,
        update(sims_table)
        .where(sims_table.c.status == "in_stock")
        .values(status="active", status_changed_at=now),
        sims_table.c.iccid,
        iccids,
    )
    if taken != len(msisdns) or activated != len(iccids):
        raise _Changed
    for instance in list(session.identity_map.values()):
        if isinstance(instance, PhoneNumber | Sim):
            session.expire(instance)

    line_rows = []
    line_ids = dict(
        zip([row.msisdn for row in rows], _new_ids(session, lines_table, len(rows)), strict=True)
    )
    for row in rows:
        assert row.plan is not None and row.period_start is not None
        line_rows.append(
            {
                "id": line_ids[row.msisdn],
                "customer_id": customer_ids[row.ref],
                "msisdn": row.msisdn,
                "plan_id": row.plan.id,
                "next_plan_id": None,
                "sim_id": row.sim_id,
                "status": "active",
                "auto_renew": row.plan.auto_renew_default,
                "period_end": row.period_start + period_length(row.plan),
                "created_at": now,
                "status_changed_at": now,
            }
        )
    _insert_rows(session, lines_table, line_rows)

    period_rows = []
    for row in rows:
        assert row.plan is not None and row.period_start is not None
        period_rows.append(
            {
                "line_id": line_ids[row.msisdn],
                "plan_id": row.plan.id,
                "start": row.period_start,
                "end": row.period_start + period_length(row.plan),
                "price_minor": row.plan.price_minor,
                **allowances(row.plan),
                "data_kb_used": 0,
                "voice_s_used": 0,
                "sms_used": 0,
                "entry_id": None,
                "created_at": now,
            }
        )
    _insert_rows(session, LinePeriod.__table__, period_rows)  # type: ignore[attr-defined]

    balances = {ref: sum(row.balance_minor or 0 for row in own) for ref, own in grouped.items()}
    entry_ids = _credit_opening_balances(
        session,
        balances={customer_ids[ref]: (ref, amount) for ref, amount in balances.items() if amount},
        filename=filename,
        currency=currency,
        actor=actor,
        now=now,
    )
    audit_rows = [
        {
            "at": now,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_label": actor.label,
            "action": "customer.import",
            "target_type": "customer",
            "target_id": ref,
            "details": {
                "file": filename,
                "lines": [row.msisdn for row in own],
                "id_type": own[0].id_type,
                "id_number": masked[ref],
                "opening_balance_minor": balances[ref],
                "entry_id": entry_ids.get(ref),
            },
            "ip": None,
        }
        for ref, own in grouped.items()
    ]
    _insert_rows(session, AuditEntry.__table__, audit_rows)  # type: ignore[attr-defined]
    return customer_ids


def _credit_opening_balances(
    session: Session,
    *,
    balances: dict[int, tuple[str, int]],
    filename: str,
    currency: str,
    actor: Actor,
    now: datetime,
) -> dict[str, int]:
    """One `opening_balance` entry per customer with money; returns ref → entry id."""
    if not balances:
        return {}
    accounts = customer_account_ids(session, customer_ids=list(balances), currency=currency)
    source_id = system_account_id(session, kind=SOURCE_KIND, currency=currency)
    entries = [
        BulkEntry(
            kind=ENTRY_KIND,
            idempotency_key=opening_balance_key(ref),
            postings=((source_id, -amount), (accounts[customer_id], amount)),
            memo=f"opening balance migrated from {filename}"[:500],
            external_ref=ref,
        )
        for customer_id, (ref, amount) in balances.items()
    ]
    result = post_entries(session, entries=entries, actor=actor, now=now)
    if result.replayed or result.refused or len(result.posted) != len(entries):
        # New customers cannot have an opening balance yet: a key was used before.
        raise _Changed
    return {key.removeprefix("import:"): entry_id for key, entry_id in result.posted.items()}


# -- the service ----------------------------------------------------------------------


def _refusal(rows: list[_Row], filename: str) -> SubscriberImportRejected:
    rejects = [
        ImportProblem(row.line, column, reason) for row in rows for column, reason in row.problems
    ]
    refused = len({problem.row for problem in rejects})
    return SubscriberImportRejected(
        N_("%(refused)s of %(rows)s rows refused; nothing imported."),
        rejects=rejects,
        warnings=_warnings(rows),
        filename=filename,
        refused=refused,
        rows=len(rows),
    )


def _warnings(rows: list[_Row]) -> list[ImportProblem]:
    return [
        ImportProblem(row.line, column, reason) for row in rows for column, reason in row.warnings
    ]


def _validate(
    session: Session, rows: list[_Row], *, currency: str, cap_months: int, now: datetime
) -> tuple[dict[str, int], bool]:
    """Check every row (adding its problems); returns (existing refs, already imported)."""
    _check_within_file(rows)
    existing = _existing_refs(session, rows)
    if _already_imported(session, rows, existing):
        return existing, True
    _check_database(
        session, rows, existing=existing, currency=currency, cap_months=cap_months, now=now
    )
    return existing, False


def import_subscribers(
    session: Session,
    *,
    text: str | bytes,
    filename: str,
    cipher: PiiCipher,
    currency: str,
    cap_months: int,
    actor: Actor,
    now: datetime,
) -> SubscriberImportReport:
    """Import a migration file of subscribers all or nothing (see the module docstring).

    Locks nothing up front: numbers and SIMs are taken by conditional
    UPDATEs, customer refs and numbers are unique in the database, and the
    customer accounts are locked by `post_entries`. Idempotent: the same
    file again is reported as already imported and changes nothing.
    :raises SubscriberImportRejected: any bad row, or a bad file; `.rejects`
        lists every problem of every refused row, and nothing is written.
    """
    filename = clean_text(filename, field="filename", max_length=500) or "subscribers.csv"
    content = _decode(text)
    if isinstance(content, ImportProblem):
        raise _file_refusal(content, filename)
    rows, problem = _parse(content)
    if problem is not None:
        raise _file_refusal(problem, filename)
    if not rows:
        raise _file_refusal(ImportProblem(1, None, "no rows after the header"), filename)
    _, already = _validate(session, rows, currency=currency, cap_months=cap_months, now=now)
    if any(row.problems for row in rows):
        raise _refusal(rows, filename)
    grouped = _customers(rows)
    report = SubscriberImportReport(
        filename=filename,
        rows=len(rows),
        customers=len(grouped),
        lines=len(rows),
        balance_total_minor=sum(row.balance_minor or 0 for row in rows),
        currency=currency,
        warnings=tuple(_warnings(rows)),
        already_imported=already,
    )
    if already:
        return report
    try:
        with session.begin_nested():
            _write(
                session,
                rows,
                filename=filename,
                cipher=cipher,
                currency=currency,
                actor=actor,
                now=now,
            )
    except (_Changed, IntegrityError):
        # Someone took a number, a SIM or a ref after our checks: say which.
        rows, _ = _parse(content)
        _validate(session, rows, currency=currency, cap_months=cap_months, now=now)
        if any(row.problems for row in rows):
            raise _refusal(rows, filename) from None
        raise SubscriberImportRejected(
            N_(
                "The numbers, SIMs or customers of the file changed during the import;"
                " nothing imported. Try again."
            ),
            rejects=[],
            warnings=[],
            filename=filename,
        ) from None
    record_audit(
        session,
        actor=actor,
        action="subscribers.import",
        now=now,
        target_type="file",
        target_id=hashlib.sha256(content.encode("utf-8")).hexdigest()[:16],
        details={
            "file": filename,
            "customers": report.customers,
            "lines": report.lines,
            "balance_total_minor": report.balance_total_minor,
            "currency": currency,
            "id_check_digit_mismatch": report.id_check_digit_mismatch,
        },
    )
    return report


def _file_refusal(problem: ImportProblem, filename: str) -> SubscriberImportRejected:
    return SubscriberImportRejected(
        N_("The file was refused (%(reason)s); nothing imported."),
        rejects=[problem],
        warnings=[],
        filename=filename,
        reason=problem.reason,
    )
