"""The rows of a subscribers migration file and the checks that need no database.

The file format and the rules are in app/onboarding/migration.py. Here a
file read by the import kit (app/core/fileimport.py) becomes one
`ImportRow` per data line, each with the refusals (`Reject`) and warnings
of its own fields; `check_within_file` adds those between rows: duplicate
numbers and SIMs, and rows of one customer that disagree.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from stdnum.cn import ric

from app.core import limits
from app.core.clock import parse_instant
from app.core.errors import InvalidInput, clean_text
from app.core.fileimport import CsvFile, Reject
from app.core.money import MAX_AMOUNT_MINOR, format_plain, parse_minor
from app.subscribers.kyc import normalize_id
from app.subscribers.models import ID_TYPES
from plans.models import Plan
from plans.terms import PLAN_CODE_RE

HEADER = "customer_ref,name,email,id_type,id_number,msisdn,iccid,plan_code,period_start,balance"
COLUMNS = tuple(HEADER.split(","))
# The reason code of the warning for a resident ID whose check digit is wrong.
CHECK_DIGIT_WARNING = "id_check_digit"
_REF = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,19}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_ICCID = re.compile(r"[0-9]{18,22}")
# Periods outside these are typing errors (and a year-9999 end would overflow).
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass
class ImportRow:
    """One data line of the file: its values once checked, its refusals and warnings."""

    line: int
    raw: str
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
    problems: list[Reject] = field(default_factory=list)
    warnings: list[Reject] = field(default_factory=list)
    # Filled by the database checks.
    plan: Plan | None = None
    sim_id: int | None = None

    def refuse(self, column: str | None, reason: str) -> None:
        """Refuse the row for `column` (None: the whole row) with `reason`."""
        self.problems.append(Reject(self.line, self.raw, reason, field=column))

    def warn(self, column: str, reason: str, code: str) -> None:
        """Accept the row with a warning on `column`."""
        self.warnings.append(Reject(self.line, self.raw, reason, field=column, code=code))

    def ok(self, column: str) -> bool:
        """Whether no refusal names `column`."""
        return not any(problem.field == column for problem in self.problems)


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


def _check_customer(row: ImportRow, values: Sequence[str], memo: _Memo) -> None:
    """The customer's columns: ref, name, e-mail, ID type and number."""
    ref, name, email, id_type, id_number = values
    row.ref = ref
    if not _REF.fullmatch(ref):
        row.refuse(
            "customer_ref",
            "customer_ref must be 1 to 20 capital letters, digits, '-' or '_' (like C-0001)",
        )
    try:
        row.name = clean_text(name, field="name", max_length=limits.PERSON_NAME, required=True)
    except InvalidInput:
        row.refuse(
            "name",
            f"name is required, at most {limits.PERSON_NAME} characters, "
            "without control characters",
        )
    if email:
        row.email, problem = _email(email, memo)
        if problem:
            row.refuse("email", problem)
    row.id_type = id_type
    if id_type not in ID_TYPES:
        row.refuse("id_type", f"id_type must be one of {', '.join(ID_TYPES)}")
        return
    normalized, problem = _id_number(id_type, id_number, memo)
    if problem or normalized is None:
        row.refuse("id_number", problem or "invalid ID number")
        return
    row.id_number = normalized
    if not _check_digit_ok(id_type, normalized):
        row.warn(
            "id_number",
            "the resident ID's check digit is wrong; accepted as verified by the previous platform",
            CHECK_DIGIT_WARNING,
        )


def _check_line(row: ImportRow, values: Sequence[str]) -> None:
    """The line's columns: number, SIM, plan, period start and opening balance."""
    msisdn, iccid, plan_code, start, balance = values
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


def parse_rows(file: CsvFile) -> list[ImportRow]:
    """One row per data record of `file`, with the problems of its own fields.

    A record the kit refused (not CSV, wrong column count, not UTF-8) keeps
    the kit's reject as its one problem. Pure: reads no database.
    """
    rows: list[ImportRow] = []
    memo: _Memo = {}
    for record in file.records:
        row = ImportRow(line=record.line, raw=record.raw)
        rows.append(row)
        if record.reject is not None:
            row.problems.append(record.reject)
            continue
        values = [value.strip(" ") for value in record.values]
        _check_customer(row, values[:5], memo)
        _check_line(row, values[5:])
    return rows


def check_within_file(rows: list[ImportRow]) -> None:
    """Duplicate numbers and SIMs, and rows of one customer that disagree."""
    first_msisdn: dict[str, int] = {}
    first_iccid: dict[str, int] = {}
    first_of_customer: dict[str, ImportRow] = {}
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


def customers(rows: list[ImportRow]) -> dict[str, list[ImportRow]]:
    """The rows of each customer, in file order (only rows with a usable ref)."""
    grouped: dict[str, list[ImportRow]] = defaultdict(list)
    for row in rows:
        if row.ref and row.ok("customer_ref"):
            grouped[row.ref].append(row)
    return grouped
