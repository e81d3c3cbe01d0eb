"""Reading an import file: UTF-8 CSV with a fixed header, one record per line.

Made for the CSV imports (SIM stock, the subscriber migration): an
importer reads its file here and refuses with the kit's `Reject` records.

Rules:

* **Text.** A file is UTF-8, with or without a byte order mark. Bytes that
  are not UTF-8 refuse the file as a whole, naming the line and the byte.
  Text handed over already decoded is taken as it is, except that a line
  holding U+FFFD or a lone surrogate (bytes decoded with ``errors=
  "replace"`` or ``"surrogateescape"`` on the way in) is refused as not
  UTF-8 text.
* **Header.** The first line is the header and must name exactly the
  importer's columns, in order (whitespace around the line is ignored); a
  header that does not is refused with the missing and unknown columns
  named. An empty file, or one with a header and no rows, is refused too.
* **Records.** Each further line is one record, numbered as the file's
  line (the header is line 1); blank lines are skipped, a trailing CR is
  dropped. A field may be quoted to hold commas and doubled quotes, but a
  record never spans lines: a quoted field left open is refused on its own
  line, so one stray quote cannot swallow the rest of the file and every
  line number is the one an editor shows. A line that is not CSV, or has
  the wrong number of fields, is a reject; the others are handed to the
  importer's checks as they are (values not yet stripped).
* **Rejects.** A refused row keeps its line number, its raw text and the
  reason: a short code (the kit's own below, ``invalid`` for an importer's
  checks unless it names another) and a message for people; an importer
  that checks column by column names the column (`field`).
* **Fingerprint.** `sha256` is the SHA-256 of the file's bytes (text is
  hashed as its UTF-8 encoding), to name a file in audit records.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.errors import N_, InvalidInput

__all__ = [
    "COLUMN_COUNT",
    "CSV_SYNTAX",
    "EMPTY",
    "ENCODING",
    "HEADER",
    "INVALID",
    "NO_ROWS",
    "CsvFile",
    "FileRejected",
    "Record",
    "Reject",
    "check_header",
    "decode_utf8",
    "file_sha256",
    "read_csv",
    "read_records",
]

# Reason codes of the rejects the kit makes itself.
ENCODING = "encoding"  # not UTF-8 text
EMPTY = "empty"  # nothing but blank lines
HEADER = "header"  # the first line is not the header
NO_ROWS = "no_rows"  # a header and nothing after it
CSV_SYNTAX = "csv_syntax"  # a line the CSV reader cannot read
COLUMN_COUNT = "column_count"  # a line with too few or too many fields
# The default code of a reject made by an importer's own checks.
INVALID = "invalid"

# Characters that only appear in text decoded from bytes that were not UTF-8.
_NOT_UTF8 = re.compile("[\ufffd\ud800-\udfff]")


@dataclass(frozen=True)
class Reject:
    """A refused row of an import file, or the whole file (then line 1 or the bad byte's line).

    `line` is the file's line (the header is line 1), `raw` the line's text
    as it is in the file, `reason` the message for people, `field` the
    column at fault (None for the whole row) and `code` a short reason code.
    A plain value: two rejects with the same fields are equal.
    """

    line: int
    raw: str
    reason: str
    field: str | None = None
    code: str = INVALID


class FileRejected(InvalidInput):
    """The file as a whole cannot be read; `reject` says why and where.

    Importers catch it and refuse with their own error, so an API client
    sees one error code per importer; uncaught, it is still a 422.
    """

    code = "import_file_rejected"

    def __init__(self, reject: Reject):
        super().__init__(
            N_("The file was refused (%(reason)s); nothing imported."), reason=reject.reason
        )
        self.reject = reject

    def details(self) -> dict[str, Any]:
        reject = self.reject
        return {"rejects": [{"line": reject.line, "raw": reject.raw, "reason": reject.reason}]}


@dataclass(frozen=True, slots=True)
class Record:
    """One data line of a file: its line number, raw text and fields.

    `values` holds exactly one value per column, or is empty when the line
    was refused (`reject`): not UTF-8, not CSV, or the wrong field count.
    """

    line: int
    raw: str
    values: Sequence[str]
    reject: Reject | None = None


@dataclass(frozen=True)
class CsvFile:
    """A file that passed the file-wide checks: its text, fingerprint and data records."""

    text: str
    sha256: str
    columns: tuple[str, ...]
    records: list[Record]


def file_sha256(data: str | bytes) -> str:
    """The SHA-256 (hex) of the file's bytes; text is hashed as its UTF-8 encoding.

    Never raises: a lone surrogate in text is hashed as its UTF-8 bytes
    (``surrogatepass``), as it came in.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def decode_utf8(data: str | bytes) -> str:
    """The file's text, without its byte order mark if it has one.

    :raises FileRejected: bytes that are not UTF-8; the reject names the
        line (counted from 1) and the first bad byte, and holds that line's
        text with the bad bytes replaced.
    """
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # With a byte order mark, `exc.object` is the data after it, and so
        # are the offsets.
        body: bytes = exc.object
        line = body.count(b"\n", 0, exc.start) + 1
        start = body.rfind(b"\n", 0, exc.start) + 1
        end = body.find(b"\n", exc.start)
        raw = body[start : end if end >= 0 else len(body)].decode("utf-8", "replace").rstrip("\r")
        reason = f"not UTF-8 text (byte 0x{body[exc.start]:02x})"
        raise FileRejected(Reject(line, raw, reason, code=ENCODING)) from None


def check_header(first_line: str, columns: Sequence[str]) -> Reject | None:
    """None when `first_line` is exactly the header of `columns`, else a reject naming
    the missing and unknown columns (or that they are out of order)."""
    header = ",".join(columns)
    raw = first_line.rstrip("\r")
    if raw.strip() == header:
        return None
    reason = f"the first line must be the header {header}"
    detail = _header_difference(raw, columns)
    return Reject(1, raw, f"{reason} ({detail})" if detail else reason, code=HEADER)


def _header_difference(raw: str, columns: Sequence[str]) -> str:
    """What is wrong with a header line, in words ('' when the reader cannot tell)."""
    if not raw.strip():
        return "the first line is blank"
    try:
        names = [name.strip() for name in next(csv.reader([raw], strict=True))]
    except csv.Error:
        return ""
    missing = [column for column in columns if column not in names]
    unknown = [name for name in names if name not in columns]
    parts = []
    if missing:
        parts.append("missing: " + ", ".join(missing))
    if unknown:
        parts.append("unknown: " + ", ".join(repr(name) for name in unknown))
    if not parts:
        if len(names) != len(set(names)):
            return "a column is named twice"
        return f"the columns are in another order: {', '.join(names)}"
    return "; ".join(parts)


def read_records(text: str, columns: Sequence[str]) -> Iterator[Record]:
    """The data records of `text` (after its header line), in file order.

    Blank lines are skipped; every other line gives one record numbered as
    its line in the file (the header is line 1). A line with U+FFFD or a
    lone surrogate, one the CSV reader refuses, or one with another number
    of fields than `columns` comes with a reject and no values.
    """
    header = ",".join(columns)
    width = len(columns)
    suspect = _NOT_UTF8.search(text) is not None
    lines = text.split("\n")
    for number, raw_line in enumerate(lines[1:], start=2):
        raw = raw_line.rstrip("\r")
        if not raw.strip():
            continue
        if suspect and _NOT_UTF8.search(raw):
            yield Record(number, raw, (), Reject(number, raw, "not UTF-8 text", code=ENCODING))
            continue
        try:
            values = next(csv.reader([raw], strict=True))
        except csv.Error as exc:
            reason = f"not a CSV line: {exc}"
            yield Record(number, raw, (), Reject(number, raw, reason, code=CSV_SYNTAX))
            continue
        if len(values) != width:
            reason = f"expected {width} columns ({header}), found {len(values)}"
            yield Record(number, raw, (), Reject(number, raw, reason, code=COLUMN_COUNT))
            continue
        yield Record(number, raw, values)


def read_csv(data: str | bytes, *, columns: Sequence[str]) -> CsvFile:
    """Read an import file with the header `columns` (see the module docstring).

    Reads everything in memory; writes nothing.
    :raises FileRejected: not UTF-8, empty, a wrong header, or no rows
        after the header (codes `ENCODING`, `EMPTY`, `HEADER`, `NO_ROWS`).
        Bad data lines do not raise: they are records with a reject.
    """
    text = decode_utf8(data)
    header = ",".join(columns)
    first_line, _, _ = text.partition("\n")
    if not text.strip():
        reason = f"the file is empty; it must start with the header {header}"
        raise FileRejected(Reject(1, "", reason, code=EMPTY))
    problem = check_header(first_line, columns)
    if problem is not None:
        raise FileRejected(problem)
    records = list(read_records(text, columns))
    if not records:
        raise FileRejected(
            Reject(1, first_line.rstrip("\r"), "no rows after the header", code=NO_ROWS)
        )
    return CsvFile(text=text, sha256=file_sha256(data), columns=tuple(columns), records=records)
