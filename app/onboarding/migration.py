"""Migration import of subscribers from another platform (DESIGN §13, `subscribers.csv`).

A file has the header `customer_ref,name,email,id_type,id_number,msisdn,
iccid,plan_code,period_start,balance` and one line (a phone line) per row.
Rules:

* **All or nothing.** Every row is checked first — in memory, then against
  the database with one query per lookup set — and one bad row refuses the
  whole file with a reject (file line, raw text, field, reason) for every
  problem of every row; nothing is written. The header is line 1. The file
  is read by the import kit (app/core/fileimport.py): UTF-8 with or without
  a byte order mark, the exact header, one row per line.
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

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.core.audit import Actor, record_audit
from app.core.errors import N_, clean_text
from app.core.fileimport import CsvFile, FileRejected, Reject, read_csv
from app.core.pii import PiiCipher
from app.onboarding.errors import SubscriberImportRejected, reject_to_dict
from app.onboarding.migration_checks import opening_balance_key, validate_rows
from app.onboarding.migration_rows import COLUMNS, HEADER, ImportRow, customers, parse_rows
from app.onboarding.migration_writes import ENTRY_KIND, Changed, write_rows

__all__ = [
    "ENTRY_KIND",
    "HEADER",
    "SubscriberImportReport",
    "import_subscribers",
    "opening_balance_key",
]


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
    warnings: tuple[Reject, ...] = ()
    already_imported: bool = False

    @property
    def id_check_digit_mismatch(self) -> int:
        """How many customers' resident IDs were accepted with a wrong check digit."""
        return sum(1 for w in self.warnings if w.field == "id_number")

    def to_dict(self) -> dict[str, Any]:
        """The report as `mvno subscribers import --json` prints it."""
        return {
            "file": self.filename,
            "rows": self.rows,
            "customers": self.customers,
            "lines": self.lines,
            "balance_total": self.balance_total_minor,
            "currency": self.currency,
            "already_imported": self.already_imported,
            "rejected": [],
            "warnings": [reject_to_dict(w) for w in self.warnings],
            "id_check_digit_mismatch": self.id_check_digit_mismatch,
        }


def _refusal(rows: list[ImportRow], filename: str) -> SubscriberImportRejected:
    rejects = [problem for row in rows for problem in row.problems]
    refused = len({problem.line for problem in rejects})
    return SubscriberImportRejected(
        N_("%(refused)s of %(rows)s rows refused; nothing imported."),
        rejects=rejects,
        warnings=_warnings(rows),
        filename=filename,
        refused=refused,
        rows=len(rows),
    )


def _warnings(rows: list[ImportRow]) -> list[Reject]:
    return [warning for row in rows for warning in row.warnings]


def _file_refusal(problem: Reject, filename: str) -> SubscriberImportRejected:
    return SubscriberImportRejected(
        N_("The file was refused (%(reason)s); nothing imported."),
        rejects=[problem],
        warnings=[],
        filename=filename,
        reason=problem.reason,
    )


def _refusal_after_race(
    session: Session,
    file: CsvFile,
    *,
    filename: str,
    currency: str,
    cap_months: int,
    now: datetime,
) -> SubscriberImportRejected:
    """The refusal of a file whose numbers, SIMs or refs were taken after its checks.

    The rows are checked again, so the refusal names what was taken.
    """
    rows = parse_rows(file)
    validate_rows(session, rows, currency=currency, cap_months=cap_months, now=now)
    if any(row.problems for row in rows):
        return _refusal(rows, filename)
    return SubscriberImportRejected(
        N_(
            "The numbers, SIMs or customers of the file changed during the import;"
            " nothing imported. Try again."
        ),
        rejects=[],
        warnings=[],
        filename=filename,
    )


def _report(
    rows: list[ImportRow], *, filename: str, currency: str, already: bool
) -> SubscriberImportReport:
    return SubscriberImportReport(
        filename=filename,
        rows=len(rows),
        customers=len(customers(rows)),
        lines=len(rows),
        balance_total_minor=sum(row.balance_minor or 0 for row in rows),
        currency=currency,
        warnings=tuple(_warnings(rows)),
        already_imported=already,
    )


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
    try:
        file = read_csv(text, columns=COLUMNS)
    except FileRejected as exc:
        raise _file_refusal(exc.reject, filename) from None
    rows = parse_rows(file)
    already = validate_rows(session, rows, currency=currency, cap_months=cap_months, now=now)
    if any(row.problems for row in rows):
        raise _refusal(rows, filename)
    report = _report(rows, filename=filename, currency=currency, already=already)
    if already:
        return report
    try:
        with session.begin_nested():
            write_rows(
                session,
                rows,
                filename=filename,
                cipher=cipher,
                currency=currency,
                actor=actor,
                now=now,
            )
    except (Changed, IntegrityError):
        # Someone took a number, a SIM or a ref after our checks: say which.
        raise _refusal_after_race(
            session, file, filename=filename, currency=currency, cap_months=cap_months, now=now
        ) from None
    record_audit(
        session,
        actor=actor,
        action="subscribers.import",
        now=now,
        target_type="file",
        target_id=file.sha256[:16],
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
