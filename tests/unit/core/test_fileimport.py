"""The file-import kit (app/core/fileimport.py): text, header, records, rejects, fingerprint."""

from __future__ import annotations

import hashlib

import pytest

from app.core import fileimport
from app.core.errors import InvalidInput
from app.core.fileimport import FileRejected, Record, Reject, read_csv, read_records

COLUMNS = ("iccid", "imsi", "kind")
HEADER = "iccid,imsi,kind"
ROW = "8986,4600,physical"


def refusal(data: str | bytes) -> Reject:
    with pytest.raises(FileRejected) as caught:
        read_csv(data, columns=COLUMNS)
    return caught.value.reject


# -- text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        f"{HEADER}\n{ROW}\n",
        f"\ufeff{HEADER}\n{ROW}\n",
        f"{HEADER}\n{ROW}\n".encode(),
        f"\ufeff{HEADER}\n{ROW}\n".encode(),
        f"\ufeff{HEADER}\r\n{ROW}\r\n".encode(),
    ],
    ids=["text", "text-bom", "bytes", "bytes-bom", "bytes-bom-crlf"],
)
def test_utf8_with_or_without_a_byte_order_mark_reads_the_same(data):
    file = read_csv(data, columns=COLUMNS)
    assert not file.text.startswith("\ufeff")
    assert file.records == [Record(2, ROW, ["8986", "4600", "physical"])]


def test_a_file_that_is_not_utf8_is_refused_naming_its_line_and_byte():
    data = f"{HEADER}\n{ROW}\n8986\xe9,4600,physical\n".encode("latin-1")
    reject = refusal(data)
    assert (reject.line, reject.code) == (3, fileimport.ENCODING)
    assert reject.reason == "not UTF-8 text (byte 0xe9)"
    assert reject.raw == "8986\ufffd,4600,physical"


def test_the_bad_byte_is_found_after_a_byte_order_mark():
    """The UTF-8-sig codec reports offsets after the mark; the reject must not be 3 bytes off."""
    data = b"\xef\xbb\xbf" + f"{HEADER}\n{ROW}\nab\xffcd,1,2\n".encode("latin-1")
    reject = refusal(data)
    assert (reject.line, reject.reason) == (3, "not UTF-8 text (byte 0xff)")
    assert reject.raw == "ab\ufffdcd,1,2"


def test_utf16_is_not_utf8():
    reject = refusal(f"{HEADER}\n{ROW}\n".encode("utf-16"))
    assert reject.code == fileimport.ENCODING
    assert reject.reason.startswith("not UTF-8 text (byte 0xff)")


@pytest.mark.parametrize("bad", ["\ufffd", "\udcff"], ids=["replacement", "surrogate"])
def test_text_decoded_with_replacements_is_refused_on_its_line(bad):
    file = read_csv(f"{HEADER}\n{ROW}\n89{bad}86,4600,physical\n", columns=COLUMNS)
    good, refused = file.records
    assert good.reject is None
    assert refused.reject == Reject(
        3, f"89{bad}86,4600,physical", "not UTF-8 text", code="encoding"
    )
    assert refused.values == ()


# -- header -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_line", "detail"),
    [
        ("iccid,imsi", "missing: kind"),
        ("iccid,imsi,kind,lpa", "unknown: 'lpa'"),
        ("iccid,imsi,type", "missing: kind; unknown: 'type'"),
        ("ICCID,IMSI,KIND", "missing: iccid, imsi, kind; unknown: 'ICCID', 'IMSI', 'KIND'"),
        ("imsi,iccid,kind", "the columns are in another order: imsi, iccid, kind"),
        ("iccid,imsi,kind,kind", "a column is named twice"),
        ("", "the first line is blank"),
    ],
)
def test_a_wrong_header_names_the_missing_and_unknown_columns(first_line, detail):
    reject = refusal(f"{first_line}\n{ROW}\n")
    assert (reject.line, reject.raw, reject.code) == (1, first_line, fileimport.HEADER)
    assert reject.reason == f"the first line must be the header {HEADER} ({detail})"


def test_a_header_is_refused_without_detail_when_it_is_not_csv():
    reject = refusal(f'"iccid,imsi,kind\n{ROW}\n')
    assert reject.reason == f"the first line must be the header {HEADER}"


def test_whitespace_around_the_header_line_is_ignored():
    assert len(read_csv(f"  {HEADER} \r\n{ROW}\n", columns=COLUMNS).records) == 1


@pytest.mark.parametrize("data", ["", "\n\n", "  \r\n", b"", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data):
    reject = refusal(data)
    assert (reject.line, reject.raw, reject.code) == (1, "", fileimport.EMPTY)
    assert reject.reason == f"the file is empty; it must start with the header {HEADER}"


def test_a_header_without_rows_is_refused():
    reject = refusal(f"{HEADER}\r\n\n  \n")
    assert reject == Reject(1, HEADER, "no rows after the header", code=fileimport.NO_ROWS)


def test_a_refused_file_is_invalid_input_with_the_reject_as_details():
    with pytest.raises(FileRejected) as caught:
        read_csv("", columns=COLUMNS)
    error = caught.value
    assert isinstance(error, InvalidInput) and error.http_status == 422
    assert error.message.startswith("The file was refused (the file is empty;")
    assert error.details() == {"rejects": [{"line": 1, "raw": "", "reason": error.reject.reason}]}


# -- records ----------------------------------------------------------------------------


def test_records_carry_their_file_line_and_raw_text_and_skip_blank_lines():
    text = f"{HEADER}\n{ROW}\n\n   \n8987, 4601 ,esim\r\n"
    assert list(read_records(text, COLUMNS)) == [
        Record(2, ROW, ["8986", "4600", "physical"]),
        Record(5, "8987, 4601 ,esim", ["8987", " 4601 ", "esim"]),
    ]


def test_a_quoted_field_may_hold_commas_and_doubled_quotes():
    [record] = read_records(f'{HEADER}\n"89,86","46""00",physical\n', COLUMNS)
    assert record.values == ["89,86", '46"00', "physical"]
    assert record.raw == '"89,86","46""00",physical'


def test_a_quoted_field_never_spans_lines_so_later_line_numbers_stay_right():
    """The reader reads one line per record: an open quote is refused where it is."""
    text = f'{HEADER}\n8986,"two\nlines",physical\n{ROW}\n'
    first, second, third = read_records(text, COLUMNS)
    assert (first.line, first.raw) == (2, '8986,"two')
    assert first.reject is not None and first.reject.code == fileimport.CSV_SYNTAX
    assert first.reject.reason.startswith("not a CSV line: ")
    assert (second.line, second.raw) == (3, 'lines",physical')
    assert second.reject is not None and second.reject.code == fileimport.COLUMN_COUNT
    assert third == Record(4, ROW, ["8986", "4600", "physical"])


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        ("8986,4600", fileimport.COLUMN_COUNT, f"expected 3 columns ({HEADER}), found 2"),
        ("8986,4600,physical,", fileimport.COLUMN_COUNT, f"expected 3 columns ({HEADER}), found 4"),
        ('8986,"46"00,physical', fileimport.CSV_SYNTAX, "not a CSV line: ',' expected after '\"'"),
    ],
)
def test_a_line_that_is_not_a_record_of_the_columns_is_a_reject(raw, code, reason):
    [record] = read_records(f"{HEADER}\n{raw}\n", COLUMNS)
    assert record == Record(2, raw, (), Reject(2, raw, reason, code=code))


def test_a_reject_is_a_plain_value_with_an_optional_field_and_code():
    assert Reject(2, "raw", "why") == Reject(line=2, raw="raw", reason="why")
    assert Reject(2, "raw", "why").field is None
    assert Reject(2, "raw", "why").code == fileimport.INVALID
    assert Reject(2, "raw", "why", field="imsi") != Reject(2, "raw", "why")


# -- fingerprint ------------------------------------------------------------------------


def test_the_sha256_is_of_the_files_bytes():
    data = f"\ufeff{HEADER}\r\n{ROW}\r\n".encode()
    assert read_csv(data, columns=COLUMNS).sha256 == hashlib.sha256(data).hexdigest()
    text = f"{HEADER}\n{ROW}\n"
    assert read_csv(text, columns=COLUMNS).sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert fileimport.file_sha256(b"") == hashlib.sha256(b"").hexdigest()
    assert fileimport.file_sha256("\udcff") == hashlib.sha256(b"\xed\xb3\xbf").hexdigest()
