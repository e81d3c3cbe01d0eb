"""Reconciliation (wholesale/reconcile.py): reading the host's invoice, comparing, files.

Pure: settlements are built by hand or by `settle` from the example CDRs;
no database.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.errors import InvalidInput
from app.core.fileimport import FileRejected
from tests.unit.wholesale.test_settlement import example_settlement
from wholesale.errors import InvoiceRejected
from wholesale.reconcile import (
    DISCREPANCY,
    MATCH,
    MISSING_IN_INVOICE,
    NOT_IN_SETTLEMENT,
    InvoiceRow,
    Reconciliation,
    Tolerance,
    parse_invoice,
    reconcile,
    reconciliation_csv,
    reconciliation_json,
    write_reconciliation,
)
from wholesale.settlement import UNITS, Settlement, SettlementRow, settlement_csv

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HEADER = "host,period,service,unit,quantity,unit_price,amount,currency"
EXAMPLE = (FIXTURES / "host_invoice.csv").read_text(encoding="utf-8")
EXAMPLE_ROWS = [
    InvoiceRow(2, "data", "bytes", 53_477_376, 2_500, 13),
    InvoiceRow(3, "voice", "seconds", 61, 40_000, 4),
    InvoiceRow(4, "sms", "messages", 1, 15_000, 2),
    InvoiceRow(5, "line", "lines", 2, 1_200_000, 240),
    InvoiceRow(6, "number", "numbers", 10_000, 100_000, 100_000),
]


def parse(data: str | bytes) -> list[InvoiceRow]:
    return parse_invoice(data, host_code="HOSTA", month="2026-10", currency="CNY")


def refusal(data: str | bytes) -> InvoiceRejected:
    with pytest.raises(InvoiceRejected) as caught:
        parse(data)
    return caught.value


def settlement(**rows: tuple[int, int]) -> Settlement:
    """A settlement with (quantity, amount_minor) per service; services not named are 0."""
    return Settlement(
        host="HOSTA",
        period="2026-10",
        currency="CNY",
        rows=tuple(
            SettlementRow(service, unit, quantity, 1, amount_minor, True)
            for service, unit in UNITS.items()
            for quantity, amount_minor in [rows.get(service, (0, 0))]
        ),
    )


def invoice_row(service: str, quantity: int, amount_minor: int, line: int = 2) -> InvoiceRow:
    return InvoiceRow(line, service, UNITS[service], quantity, 1, amount_minor)


def status_of(r: Reconciliation, service: str) -> str:
    (row,) = [row for row in r.rows if row.service == service]
    return row.status


# -- reading the invoice -----------------------------------------------------------------


def test_the_example_invoice_reads_as_its_rows():
    assert parse(EXAMPLE) == EXAMPLE_ROWS
    assert parse(EXAMPLE.encode()) == EXAMPLE_ROWS


def test_an_optional_compliant_column_is_read():
    text = EXAMPLE.replace(HEADER, HEADER + ",compliant").replace("CNY\n", "CNY,true\n")
    text = text.replace("1000.00,CNY,true", "1000.00,CNY,FALSE")
    rows = parse(text)
    assert [r.compliant for r in rows] == [True, True, True, True, False]
    assert [r.compliant for r in parse(EXAMPLE)] == [None] * 5


def test_our_own_settlement_file_reads_as_an_invoice():
    s = Settlement(
        "HOSTA", "2026-10", "CNY", (SettlementRow("sms", "messages", 1, 15_000, 2, False),)
    )
    assert parse(settlement_csv(s)) == [InvoiceRow(2, "sms", "messages", 1, 15_000, 2, False)]


def test_a_service_may_come_on_several_rows():
    text = (
        f"{HEADER}\n"
        "HOSTA,2026-10,data,bytes,10,0.0025,0.00,CNY\n"
        "HOSTA,2026-10,data,bytes,5,0.0030,0.00,CNY\n"
    )
    assert [(r.service, r.unit_price_micro) for r in parse(text)] == [
        ("data", 2_500),
        ("data", 3_000),
    ]


def test_byte_order_mark_crlf_spaces_and_trailing_zeros_are_fine():
    text = f"\ufeff{HEADER}\r\n HOSTA , 2026-10 ,sms,messages, 1 ,0.015000,0.020,CNY\r\n\r\n"
    assert parse(text.encode()) == [InvoiceRow(2, "sms", "messages", 1, 15_000, 2)]


ROW = "HOSTA,2026-10,sms,messages,1,0.0150,0.02,CNY"


@pytest.mark.parametrize(
    ("line", "column", "reason"),
    [
        ("HOSTB,2026-10,sms,messages,1,0.0150,0.02,CNY", "host", "host is 'HOSTB', not HOSTA"),
        ("HOSTA,2026-09,sms,messages,1,0.0150,0.02,CNY", "period", "period is '2026-09'"),
        ("HOSTA,2026-10,sms,messages,1,0.0150,0.02,USD", "currency", "currency is 'USD'"),
        ("HOSTA,2026-10,fax,pages,1,0.0150,0.02,CNY", "service", "unknown service 'fax'"),
        ("HOSTA,2026-10,SMS,messages,1,0.0150,0.02,CNY", "service", "unknown service"),
        ("HOSTA,2026-10,sms,message,1,0.0150,0.02,CNY", "unit", "the unit of sms is messages"),
        ("HOSTA,2026-10,data,seconds,1,0.0150,0.02,CNY", "unit", "the unit of data is bytes"),
        ("HOSTA,2026-10,sms,messages,-1,0.0150,0.02,CNY", "quantity", "not a whole number"),
        ("HOSTA,2026-10,sms,messages,1.5,0.0150,0.02,CNY", "quantity", "not a whole number"),
        ("HOSTA,2026-10,sms,messages,,0.0150,0.02,CNY", "quantity", "not a whole number"),
        ("HOSTA,2026-10,sms,messages,1e3,0.0150,0.02,CNY", "quantity", "not a whole number"),
        ("HOSTA,2026-10,sms,messages,\uff11,0.0150,0.02,CNY", "quantity", "not a whole number"),
        ("HOSTA,2026-10,sms,messages,1,0.0150001,0.02,CNY", "unit_price", "at most 6 places"),
        ("HOSTA,2026-10,sms,messages,1,-0.0150,0.02,CNY", "unit_price", "at most 6 places"),
        ("HOSTA,2026-10,sms,messages,1,.015,0.02,CNY", "unit_price", "at most 6 places"),
        ("HOSTA,2026-10,sms,messages,1,abc,0.02,CNY", "unit_price", "at most 6 places"),
        ("HOSTA,2026-10,sms,messages,1,0.0150,0.021,CNY", "amount", "at most 2 places"),
        ("HOSTA,2026-10,sms,messages,1,0.0150,-0.02,CNY", "amount", "at most 2 places"),
        ("HOSTA,2026-10,sms,messages,1,0.0150,\u0660.02,CNY", "amount", "at most 2 places"),
        ("HOSTA,2026-10,sms,messages,1,0.0150,1,000.00,CNY", None, "expected 8 columns"),
        ('HOSTA,2026-10,sms,messages,1,0.0150,"0.02,CNY', None, "not a CSV line"),
    ],
)
def test_a_bad_row_refuses_the_whole_invoice_naming_its_line(line, column, reason):
    error = refusal(f"{HEADER}\n{ROW}\n{line}\n{ROW}\n")
    (reject,) = error.rejects
    assert (reject.line, reject.raw, reject.field) == (3, line, column)
    assert reason in reject.reason
    assert "line 3" in error.message and reason in error.message
    assert error.details()["rejects"][0]["line"] == 3


@pytest.mark.parametrize(
    ("value", "ok"),
    [("true", True), ("false", True), ("True", True), ("yes", False), ("", False), ("1", False)],
)
def test_compliant_must_be_true_or_false(value, ok):
    text = f"{HEADER},compliant\n{ROW},{value}\n"
    if ok:
        assert parse(text)[0].compliant is (value.lower() == "true")
    else:
        (reject,) = refusal(text).rejects
        assert (reject.line, reject.field) == (2, "compliant")


def test_every_bad_line_is_listed():
    text = f"{HEADER}\n{ROW}\nHOSTB,2026-10,sms,messages,1,0.0150,0.02,CNY\n{ROW}\nx\n"
    error = refusal(text)
    assert [r.line for r in error.rejects] == [3, 5]
    assert "and 1 more lines" in error.message


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (f"{HEADER}\n{ROW}\n".encode() + b"HOSTA,2026-10,\xe9\n", 3, "not UTF-8"),
        ("", 1, "the file is empty"),
        (f"{HEADER}\n\n", 1, "no rows after the header"),
        (f"{HEADER},extra\n{ROW},x\n", 1, "unknown: 'extra'"),
        (HEADER.replace("unit,", "") + "\n", 1, "missing: unit"),
        (f"{HEADER.replace('host', 'carrier')}\n{ROW}\n", 1, "the first line must be the header"),
        (f"compliant,{HEADER}\n{ROW}\n", 1, "in another order"),
        (f"{HEADER},compliant\n{ROW}\n", 2, "expected 9 columns"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused(data, line, reason):
    error = refusal(data)
    (reject,) = error.rejects
    assert reject.line == line and reason in reject.reason
    assert isinstance(error, InvalidInput) and not isinstance(error, FileRejected)
    assert error.code == "invoice_rejected"


def test_the_month_asked_must_be_yyyy_mm():
    with pytest.raises(InvalidInput) as caught:
        parse_invoice(EXAMPLE, host_code="HOSTA", month="2026-1", currency="CNY")
    assert caught.value.field == "month"


# -- tolerance ---------------------------------------------------------------------------


def test_the_example_invoice_matches_our_settlement_of_the_example_cdrs():
    r = reconcile(example_settlement(), parse(EXAMPLE), Tolerance())
    assert [row.status for row in r.rows] == [MATCH] * 5
    assert r.discrepancies == ()
    assert r.our_total_minor == r.invoice_total_minor == 100_259


@pytest.mark.parametrize(
    ("tolerance", "invoice_amount", "status"),
    [
        (Tolerance(), 100, MATCH),
        (Tolerance(), 101, DISCREPANCY),
        (Tolerance(), 99, DISCREPANCY),
        (Tolerance(amount_minor=5), 105, MATCH),
        (Tolerance(amount_minor=5), 95, MATCH),
        (Tolerance(amount_minor=5), 106, DISCREPANCY),
        (Tolerance(amount_minor=5), 94, DISCREPANCY),
    ],
)
def test_amount_tolerance_is_inclusive(tolerance, invoice_amount, status):
    r = reconcile(settlement(line=(10, 100)), [invoice_row("line", 10, invoice_amount)], tolerance)
    assert status_of(r, "line") == status


@pytest.mark.parametrize(
    ("quantity_bp", "invoice_quantity", "status"),
    [
        (0, 1_000_000, MATCH),
        (0, 1_000_001, DISCREPANCY),
        (10, 1_001_000, MATCH),  # 0.1 % of 1,000,000 is 1,000
        (10, 999_000, MATCH),
        (10, 1_001_001, DISCREPANCY),
        (10, 998_999, DISCREPANCY),
        (1, 1_000_100, MATCH),
        (1, 1_000_101, DISCREPANCY),
    ],
)
def test_quantity_tolerance_is_inclusive_in_basis_points_of_our_quantity(
    quantity_bp, invoice_quantity, status
):
    ours = settlement(data=(1_000_000, 50))
    r = reconcile(
        ours, [invoice_row("data", invoice_quantity, 50)], Tolerance(quantity_bp=quantity_bp)
    )
    assert status_of(r, "data") == status


def test_quantity_tolerance_of_a_service_we_have_none_of_allows_nothing():
    r = reconcile(settlement(), [invoice_row("sms", 1, 0)], Tolerance(quantity_bp=10_000))
    assert status_of(r, "sms") == DISCREPANCY


@pytest.mark.parametrize(
    ("invoice_quantity", "invoice_amount", "status"),
    [(1_001_000, 51, MATCH), (1_001_000, 52, DISCREPANCY), (1_001_001, 51, DISCREPANCY)],
)
def test_both_tolerances_must_hold(invoice_quantity, invoice_amount, status):
    ours = settlement(data=(1_000_000, 50))
    theirs = [invoice_row("data", invoice_quantity, invoice_amount)]
    r = reconcile(ours, theirs, Tolerance(amount_minor=1, quantity_bp=10))
    assert status_of(r, "data") == status


@pytest.mark.parametrize(
    "kwargs",
    [{"amount_minor": -1}, {"quantity_bp": -1}, {"amount_minor": 1.5}, {"quantity_bp": True}],
)
def test_a_negative_or_fractional_tolerance_is_refused(kwargs):
    with pytest.raises(InvalidInput) as caught:
        Tolerance(**kwargs)
    assert caught.value.field == next(iter(kwargs))


# -- statuses and aggregation -------------------------------------------------------------


def test_a_service_we_charge_that_the_invoice_leaves_out_is_missing_in_invoice():
    ours = settlement(voice=(61, 4), line=(2, 240))
    r = reconcile(ours, [invoice_row("line", 2, 240)])
    assert {row.service: row.status for row in r.rows} == {
        "data": MATCH,  # nothing on either side
        "voice": MISSING_IN_INVOICE,
        "sms": MATCH,
        "line": MATCH,
        "number": MATCH,
    }
    (missing,) = r.discrepancies
    assert (missing.quantity_difference, missing.amount_difference_minor) == (-61, -4)


def test_an_invoice_charging_a_service_we_have_no_row_for_is_not_in_settlement():
    ours = Settlement("HOSTA", "2026-10", "CNY", (SettlementRow("line", "lines", 2, 1, 240, True),))
    r = reconcile(
        ours, [invoice_row("line", 2, 240), invoice_row("sms", 1, 2), invoice_row("voice", 0, 0)]
    )
    assert [(row.service, row.status) for row in r.rows] == [
        ("voice", MATCH),
        ("sms", NOT_IN_SETTLEMENT),
        ("line", MATCH),
    ]
    assert (r.our_total_minor, r.invoice_total_minor) == (240, 242)


def test_rows_of_a_service_are_summed_on_both_sides():
    ours = Settlement(
        "HOSTA",
        "2026-10",
        "CNY",
        (
            SettlementRow("data", "bytes", 10, 2_500, 5, True),
            SettlementRow("data", "bytes", 20, 3_000, 7, True),
        ),
    )
    theirs = [invoice_row("data", 25, 12), invoice_row("data", 5, 0, line=3)]
    (row,) = reconcile(ours, theirs).rows
    assert (
        row.our_quantity,
        row.invoice_quantity,
        row.our_amount_minor,
        row.invoice_amount_minor,
    ) == (
        30,
        30,
        12,
        12,
    )
    assert row.status == MATCH


# -- files -------------------------------------------------------------------------------


def sample() -> Reconciliation:
    ours = settlement(data=(1_000_000, 50), voice=(61, 4))
    theirs = [invoice_row("data", 1_000_500, 53), invoice_row("sms", 0, 0)]
    return reconcile(ours, theirs, Tolerance(amount_minor=1, quantity_bp=10))


def test_the_reconciliation_csv():
    assert reconciliation_csv(sample()) == (
        "host,period,service,unit,our_quantity,invoice_quantity,quantity_difference,"
        "our_amount,invoice_amount,amount_difference,currency,status\n"
        "HOSTA,2026-10,data,bytes,1000000,1000500,500,0.50,0.53,0.03,CNY,discrepancy\n"
        "HOSTA,2026-10,voice,seconds,61,0,-61,0.04,0.00,-0.04,CNY,missing_in_invoice\n"
        "HOSTA,2026-10,sms,messages,0,0,0,0.00,0.00,0.00,CNY,match\n"
        "HOSTA,2026-10,line,lines,0,0,0,0.00,0.00,0.00,CNY,match\n"
        "HOSTA,2026-10,number,numbers,0,0,0,0.00,0.00,0.00,CNY,match\n"
    )


def test_the_reconciliation_json():
    document = json.loads(reconciliation_json(sample()))
    assert list(document) == [
        "host",
        "period",
        "currency",
        "tolerance",
        "rows",
        "our_total",
        "our_total_minor",
        "invoice_total",
        "invoice_total_minor",
        "discrepancies",
    ]
    assert document["tolerance"] == {"amount_minor": 1, "quantity_bp": 10}
    assert document["rows"][1] == {
        "service": "voice",
        "unit": "seconds",
        "our_quantity": 61,
        "invoice_quantity": 0,
        "quantity_difference": -61,
        "our_amount": "0.04",
        "our_amount_minor": 4,
        "invoice_amount": "0.00",
        "invoice_amount_minor": 0,
        "amount_difference": "-0.04",
        "amount_difference_minor": -4,
        "status": "missing_in_invoice",
    }
    assert (document["our_total"], document["invoice_total"], document["discrepancies"]) == (
        "0.54",
        "0.53",
        2,
    )


def test_write_reconciliation_is_byte_identical_for_equal_input(tmp_path):
    paths = write_reconciliation(sample(), tmp_path / "out")
    assert [p.name for p in paths] == [
        "reconciliation_HOSTA_2026-10.csv",
        "reconciliation_HOSTA_2026-10.json",
    ]
    first = [p.read_bytes() for p in paths]
    assert first == [reconciliation_csv(sample()).encode(), reconciliation_json(sample()).encode()]
    write_reconciliation(sample(), tmp_path / "out")
    assert [p.read_bytes() for p in paths] == first
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]
