"""Reconciliation: a host's invoice against our settlement of the month (DESIGN §7).

Rules:

* **Invoice file.** UTF-8 CSV read with the import kit (app/core/fileimport),
  header ``host,period,service,unit,quantity,unit_price,amount,currency``,
  optionally followed by ``compliant``. Every row is for the host, period
  and currency asked; its service is one of the five, its unit that
  service's; quantity is a whole number, zero or more; unit_price a
  decimal of at most 6 places, amount of at most 2 (neither signed);
  compliant, when the column is there, ``true`` or ``false`` (any case).
  Digits are ASCII. A service may have several rows (split by price).
* **Refusal.** One bad line refuses the whole file (`InvoiceRejected`, with
  every bad line's number, text and reason): reconciling half an invoice
  would report differences that are not there.
* **Comparison.** Per service, each side summed over its rows; differences
  are invoice − ours. A service matches when ``|Δquantity| ≤ our_quantity ×
  quantity_bp / 10000`` and ``|Δamount| ≤ amount_minor`` (exactly at the
  tolerance is a match), else it is a ``discrepancy``. With no invoice row,
  a service we charge (quantity or amount not 0) is ``missing_in_invoice``;
  an invoice row for a service we have no row for, charging something, is
  ``not_in_settlement``. Nothing on either side is a match.
* **Files.** ``reconciliation_<HOST>_<YYYY-MM>.csv`` and ``.json``, written
  atomically, byte-identical for equal input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from app.core.errors import N_, InvalidInput
from app.core.fileimport import FileRejected, Record, Reject, decode_utf8, read_csv
from app.core.money import MICRO_PLACES, MINOR_PLACES, format_plain, parse_amount
from wholesale.errors import InvoiceRejected
from wholesale.models import SERVICES
from wholesale.settlement import (
    CSV_COLUMNS,
    UNITS,
    Settlement,
    csv_text,
    json_text,
    parse_month,
    report_paths,
    write_text_atomic,
)

# The invoice has the settlement file's columns; `compliant` is optional there.
INVOICE_COLUMNS: tuple[str, ...] = tuple(c for c in CSV_COLUMNS if c != "compliant")
INVOICE_COLUMNS_WITH_COMPLIANT: tuple[str, ...] = CSV_COLUMNS
REPORT_COLUMNS: tuple[str, ...] = (
    "host",
    "period",
    "service",
    "unit",
    "our_quantity",
    "invoice_quantity",
    "quantity_difference",
    "our_amount",
    "invoice_amount",
    "amount_difference",
    "currency",
    "status",
)
MATCH = "match"
DISCREPANCY = "discrepancy"
MISSING_IN_INVOICE = "missing_in_invoice"
NOT_IN_SETTLEMENT = "not_in_settlement"

_WHOLE = re.compile(r"[0-9]{1,20}")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,20})?")
_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class InvoiceRow:
    """One row of a host's invoice, checked; `line` is its line in the file."""

    line: int
    service: str
    unit: str
    quantity: int
    unit_price_micro: int
    amount_minor: int
    compliant: bool | None = None


class _BadValue(Exception):
    def __init__(self, column: str, reason: str):
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _decimal(value: str, *, column: str, places: int, what: str) -> int:
    if _DECIMAL.fullmatch(value):
        try:
            return parse_amount(value, places=places)
        except ValueError:
            pass
    raise _BadValue(column, f"{what} {value!r} is not a decimal with at most {places} places")


def _expect(value: str, wanted: str, *, column: str) -> None:
    if value != wanted:
        raise _BadValue(column, f"{column} is {value!r}, not {wanted}")


def _invoice_row(record: Record, columns: Sequence[str], asked: dict[str, str]) -> InvoiceRow:
    """Check one record's values; :raises _BadValue: naming the column."""
    values = dict(zip(columns, (v.strip() for v in record.values), strict=True))
    for column in ("host", "period", "currency"):
        _expect(values[column], asked[column], column=column)
    service = values["service"]
    if service not in SERVICES:
        raise _BadValue("service", f"unknown service {service!r} (one of {', '.join(SERVICES)})")
    if values["unit"] != UNITS[service]:
        raise _BadValue(
            "unit", f"the unit of {service} is {UNITS[service]}, not {values['unit']!r}"
        )
    if not _WHOLE.fullmatch(values["quantity"]):
        raise _BadValue(
            "quantity", f"quantity {values['quantity']!r} is not a whole number, zero or more"
        )
    price = _decimal(
        values["unit_price"], column="unit_price", places=MICRO_PLACES, what="unit price"
    )
    amount = _decimal(values["amount"], column="amount", places=MINOR_PLACES, what="amount")
    compliant: bool | None = None
    if "compliant" in values:
        flag = values["compliant"].lower()
        if flag not in ("true", "false"):
            raise _BadValue("compliant", f"compliant {values['compliant']!r} is not true or false")
        compliant = flag == "true"
    return InvoiceRow(
        line=record.line,
        service=service,
        unit=values["unit"],
        quantity=int(values["quantity"]),
        unit_price_micro=price,
        amount_minor=amount,
        compliant=compliant,
    )


def _invoice_columns(text: str) -> tuple[str, ...]:
    """The columns to read: with the trailing compliant when the header names it.

    A header naming compliant elsewhere is then refused as out of order,
    not as naming an unknown column.
    """
    first_line = text.partition("\n")[0].rstrip("\r")
    names = {name.strip() for name in first_line.split(",")}
    return INVOICE_COLUMNS_WITH_COMPLIANT if "compliant" in names else INVOICE_COLUMNS


def parse_invoice(
    data: bytes | str, *, host_code: str, month: str, currency: str
) -> list[InvoiceRow]:
    """Read and check a host's invoice for `host_code`, `month` (YYYY-MM) and `currency`.

    All or nothing; writes nothing (module docstring for the rules).
    :raises InvalidInput: a month not written YYYY-MM.
    :raises InvoiceRejected: not UTF-8, a wrong header, no rows, or any bad
        line; its rejects name every bad line with its number and reason.
    """
    parse_month(month)
    asked = {"host": host_code, "period": month, "currency": currency}
    try:
        columns = _invoice_columns(decode_utf8(data))
        file = read_csv(data, columns=columns)
    except FileRejected as exc:
        raise InvoiceRejected([exc.reject]) from None
    rows: list[InvoiceRow] = []
    rejects: list[Reject] = []
    for record in file.records:
        if record.reject is not None:
            rejects.append(record.reject)
            continue
        try:
            rows.append(_invoice_row(record, columns, asked))
        except _BadValue as bad:
            rejects.append(Reject(record.line, record.raw, bad.reason, field=bad.column))
    if rejects:
        raise InvoiceRejected(rejects)
    return rows


# -- comparing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How far the invoice may be from us and still match, per service.

    `amount_minor`: the largest amount difference allowed, in minor units.
    `quantity_bp`: the largest quantity difference allowed, in basis points
    (1/10,000) of our quantity.
    """

    amount_minor: int = 0
    quantity_bp: int = 0

    def __post_init__(self) -> None:
        for name in ("amount_minor", "quantity_bp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInput(
                    N_("%(name)s must be a whole number, zero or more; got %(value)r."),
                    field=name,
                    name=name,
                    value=value,
                )

    def allows(
        self, *, our_quantity: int, quantity_difference: int, amount_difference: int
    ) -> bool:
        """Whether both differences are within the tolerance (exactly at it is within)."""
        quantity_ok = abs(quantity_difference) * _BASIS_POINTS <= our_quantity * self.quantity_bp
        return quantity_ok and abs(amount_difference) <= self.amount_minor


@dataclass(frozen=True)
class ReconciliationRow:
    """One service, both sides summed over their rows; differences are invoice − ours."""

    service: str
    unit: str
    our_quantity: int
    invoice_quantity: int
    our_amount_minor: int
    invoice_amount_minor: int
    status: str

    @property
    def quantity_difference(self) -> int:
        """The invoice's quantity minus ours."""
        return self.invoice_quantity - self.our_quantity

    @property
    def amount_difference_minor(self) -> int:
        """The invoice's amount minus ours, in minor units."""
        return self.invoice_amount_minor - self.our_amount_minor


@dataclass(frozen=True)
class Reconciliation:
    """A host's invoice for `period` against our settlement, service by service."""

    host: str
    period: str
    currency: str
    tolerance: Tolerance
    rows: tuple[ReconciliationRow, ...] = ()

    @property
    def our_total_minor(self) -> int:
        """Our settlement's total, in minor units."""
        return sum(row.our_amount_minor for row in self.rows)

    @property
    def invoice_total_minor(self) -> int:
        """The invoice's total, in minor units."""
        return sum(row.invoice_amount_minor for row in self.rows)

    @property
    def discrepancies(self) -> tuple[ReconciliationRow, ...]:
        """The rows that are not a match."""
        return tuple(row for row in self.rows if row.status != MATCH)


def _status(*, ours: bool, theirs: bool, row: ReconciliationRow, tolerance: Tolerance) -> str:
    if not theirs:
        charged = row.our_quantity or row.our_amount_minor
        return MISSING_IN_INVOICE if charged else MATCH
    if not ours:
        charged = row.invoice_quantity or row.invoice_amount_minor
        return NOT_IN_SETTLEMENT if charged else MATCH
    within = tolerance.allows(
        our_quantity=row.our_quantity,
        quantity_difference=row.quantity_difference,
        amount_difference=row.amount_difference_minor,
    )
    return MATCH if within else DISCREPANCY


def reconcile(
    settlement: Settlement, invoice_rows: Iterable[InvoiceRow], tolerance: Tolerance = Tolerance()
) -> Reconciliation:
    """Compare a host's invoice with our settlement, per service (module docstring).

    Pure. Rows in the order data, voice, sms, line, number (then any other
    service an invoice row names, by name); a service neither side has is
    left out.
    """
    invoice = list(invoice_rows)
    known = [*SERVICES, *sorted({r.service for r in invoice} - set(SERVICES))]
    rows: list[ReconciliationRow] = []
    for service in known:
        ours = [r for r in settlement.rows if r.service == service]
        theirs = [r for r in invoice if r.service == service]
        if not ours and not theirs:
            continue
        row = ReconciliationRow(
            service=service,
            unit=(ours or theirs)[0].unit,
            our_quantity=sum(r.quantity for r in ours),
            invoice_quantity=sum(r.quantity for r in theirs),
            our_amount_minor=sum(r.amount_minor for r in ours),
            invoice_amount_minor=sum(r.amount_minor for r in theirs),
            status="",
        )
        status = _status(ours=bool(ours), theirs=bool(theirs), row=row, tolerance=tolerance)
        rows.append(replace(row, status=status))
    return Reconciliation(
        host=settlement.host,
        period=settlement.period,
        currency=settlement.currency,
        tolerance=tolerance,
        rows=tuple(rows),
    )


# -- files -------------------------------------------------------------------------------


def reconciliation_csv(reconciliation: Reconciliation) -> str:
    """The reconciliation as CSV (`REPORT_COLUMNS`), one line per service; amounts 2 places."""
    r = reconciliation
    return csv_text(
        REPORT_COLUMNS,
        (
            (
                r.host,
                r.period,
                row.service,
                row.unit,
                row.our_quantity,
                row.invoice_quantity,
                row.quantity_difference,
                format_plain(row.our_amount_minor),
                format_plain(row.invoice_amount_minor),
                format_plain(row.amount_difference_minor),
                r.currency,
                row.status,
            )
            for row in r.rows
        ),
    )


def reconciliation_json(reconciliation: Reconciliation) -> str:
    """The reconciliation as JSON: header fields, tolerance, rows, totals, discrepancy count."""
    r = reconciliation
    return json_text(
        {
            "host": r.host,
            "period": r.period,
            "currency": r.currency,
            "tolerance": {
                "amount_minor": r.tolerance.amount_minor,
                "quantity_bp": r.tolerance.quantity_bp,
            },
            "rows": [
                {
                    "service": row.service,
                    "unit": row.unit,
                    "our_quantity": row.our_quantity,
                    "invoice_quantity": row.invoice_quantity,
                    "quantity_difference": row.quantity_difference,
                    "our_amount": format_plain(row.our_amount_minor),
                    "our_amount_minor": row.our_amount_minor,
                    "invoice_amount": format_plain(row.invoice_amount_minor),
                    "invoice_amount_minor": row.invoice_amount_minor,
                    "amount_difference": format_plain(row.amount_difference_minor),
                    "amount_difference_minor": row.amount_difference_minor,
                    "status": row.status,
                }
                for row in r.rows
            ],
            "our_total": format_plain(r.our_total_minor),
            "our_total_minor": r.our_total_minor,
            "invoice_total": format_plain(r.invoice_total_minor),
            "invoice_total_minor": r.invoice_total_minor,
            "discrepancies": len(r.discrepancies),
        }
    )


def write_reconciliation(reconciliation: Reconciliation, out_dir: Path) -> list[Path]:
    """Write ``reconciliation_<HOST>_<YYYY-MM>.csv`` and ``.json`` into `out_dir`.

    Creates `out_dir` if needed; each file is replaced atomically.
    :returns: the CSV path, then the JSON path.
    """
    r = reconciliation
    csv_path, json_path = report_paths("reconciliation", r.host, r.period, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(csv_path, reconciliation_csv(r))
    write_text_atomic(json_path, reconciliation_json(r))
    return [csv_path, json_path]
