"""Reading a usage file with DuckDB: columns mapped, rows checked, reasons given (DESIGN §7).

The file is UTF-8 CSV with a header. The default columns are
`record_id,msisdn,service,start_time,quantity` and optionally
`called_number`; a host may declare its own names for them (its
`cdr_columns` mapping, with `ignore` listing further columns it sends).
DuckDB reads every field as text into the table `cdr_raw` of the given
connection, keeping each row's line in the file (the header is line 1);
a line with the wrong number of fields is a reject (`column_count`) with
its raw text. The checks then run set-based, in this order, and the first
that fails names the reason: record id (1–64 characters), number (E.164
form, `+` and 7–15 digits), service (`data`, `voice`, `sms`), quantity (a
whole number of bytes, seconds or messages, at most 15 digits), start time
(ISO 8601 with a `Z` or ±hh:mm offset). Rows that pass are in `cdr_valid`
with the start time as microseconds since the epoch (UTC).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import N_
from app.core.fileimport import EMPTY, ENCODING, HEADER, NO_ROWS, FileRejected, Reject

FIELDS = ("record_id", "msisdn", "service", "start_time", "quantity")
OPTIONAL_FIELDS = ("called_number",)
DEFAULT_COLUMNS: dict[str, str] = {name: name for name in (*FIELDS, *OPTIONAL_FIELDS)}
MAX_FILE_BYTES = 2 * 1024**3

_TIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$"
_CHECKS = f"""
CASE
  WHEN record_id IS NULL OR length(record_id) > 64 THEN 'bad_record_id'
  WHEN msisdn IS NULL OR NOT regexp_full_match(msisdn, '\\+[1-9][0-9]{{6,14}}') THEN 'bad_number'
  WHEN service IS NULL OR service NOT IN ('data', 'voice', 'sms') THEN 'unknown_service'
  WHEN quantity IS NULL OR NOT regexp_full_match(quantity, '[0-9]{{1,15}}') THEN 'bad_quantity'
  WHEN start_time IS NULL OR NOT regexp_matches(start_time, '{_TIME}')
       OR try_cast(start_time AS TIMESTAMPTZ) IS NULL THEN 'bad_time'
END
"""


@dataclass(frozen=True)
class FileShape:
    """What the header said: the file's columns and where each field is."""

    header: str
    columns: tuple[str, ...]
    positions: dict[str, int]  # field -> column index


_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?:\n|$)")


def _refuse(reason: str, code: str, *, line: int = 1, raw: str = "") -> FileRejected:
    return FileRejected(Reject(line=line, raw=raw, reason=reason, code=code))


def check_text(data: bytes) -> None:
    """Refuse a file that is not UTF-8, is empty, or is too large."""
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(N_("larger than 2 GiB"), "too_large")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _refuse(
            N_("not UTF-8 text: byte %(byte)s at line %(line)s")
            % {"byte": f"0x{data[error.start]:02x}", "line": line},
            ENCODING,
            line=line,
        ) from None
    if not data.strip():
        raise _refuse(N_("the file is empty"), EMPTY)


def read_shape(data: bytes, mapping: Mapping[str, Any] | None) -> FileShape:
    """Read the header line and place every field; refuse a header that does not fit.

    `mapping` is the host's `cdr_columns` (field -> its column name, and
    `ignore`: columns to skip), or None for the default columns.
    """
    first = data.split(b"\n", 1)[0].decode("utf-8").lstrip("\ufeff").rstrip("\r")
    columns = tuple(name.strip() for name in next(csv.reader([first])))
    names = dict(DEFAULT_COLUMNS)
    ignore: set[str] = set()
    if mapping:
        names.update({k: str(v) for k, v in mapping.items() if k in DEFAULT_COLUMNS})
        ignore = {str(name) for name in mapping.get("ignore", ())}
    positions = {field: columns.index(names[field]) for field in names if names[field] in columns}
    missing = [names[field] for field in FIELDS if field not in positions]
    known = {names[field] for field in names} | ignore
    unknown = [name for name in columns if name not in known]
    if missing or unknown or len(set(columns)) != len(columns):
        detail = "; ".join(
            part
            for part in (
                ("missing " + ", ".join(missing)) if missing else "",
                ("unknown " + ", ".join(unknown)) if unknown else "",
                "a column named twice" if len(set(columns)) != len(columns) else "",
            )
            if part
        )
        raise _refuse(
            N_("the header does not fit the host's columns (%(detail)s)") % {"detail": detail},
            HEADER,
            raw=first,
        )
    return FileShape(header=first, columns=columns, positions=positions)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_raw(con: Any, path: Path, shape: FileShape) -> None:
    """Read the file into `cdr_raw(line, <fields>)` and its bad lines into `cdr_bad_lines`."""
    types = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(shape.columns)))
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    # Built from constants and the quoted path only.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE cdr_read AS SELECT * FROM read_csv({_sql_text(str(path))},
        header = true, auto_detect = false, columns = {{{types}}}, delim = ',', quote = '"',
        escape = '"', store_rejects = true, strict_mode = true, null_padding = false)"""  # noqa: S608
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE cdr_bad_lines AS
        SELECT line, any_value(csv_line) AS raw FROM reject_errors GROUP BY line"""
    )


def number_lines(con: Any, data: bytes) -> None:
    """Give every row read its line in the file (`cdr_lines(rowid, line)`).

    Rows are read in file order; without blank or refused lines the n-th
    row is line n + 2. Otherwise the lines that hold rows are the non-blank
    lines after the header less the refused ones, counted here.
    :raises FileRejected: a quoted field spans lines (rows and lines disagree).
    """
    rows = con.execute("SELECT count(*) FROM cdr_read").fetchone()[0]
    bad = {line for (line,) in con.execute("SELECT line FROM cdr_bad_lines").fetchall()}
    body = data.rstrip(b" \t\r\n")
    regular = not bad and _BLANK_LINE.search(body) is None and body.count(b"\n") == rows
    if regular:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cdr_lines AS"
            " SELECT rowid, rowid + 2 AS line FROM cdr_read"
        )
        return
    lines = data.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()
    numbers = [
        number
        for number, text in enumerate(lines[1:], start=2)
        if text.strip() and number not in bad
    ]
    if len(numbers) != rows:
        raise _refuse(N_("a quoted field runs over several lines"), "csv_syntax")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cdr_lines AS"
        " SELECT unnest(range(?)) AS rowid, unnest(?) AS line",
        [rows, numbers],
    )


def check_rows(con: Any, shape: FileShape) -> int:
    """Check every row set-based: `cdr_rows` holds each with its reason (NULL when usable).

    Returns the number of rows read (good and refused lines). Usable rows
    are also in `cdr_valid(line, record_id, msisdn, service, t, quantity,
    called_number)`, `t` in microseconds since the epoch.
    """
    pos = shape.positions

    def column(field: str) -> str:
        if field not in pos:
            return "NULL"
        return f"nullif(trim(r.c{pos[field]}), '')"

    fields = ", ".join(f"{column(field)} AS {field}" for field in (*FIELDS, *OPTIONAL_FIELDS))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE cdr_rows AS
        WITH fields AS (
            SELECT l.line, {fields} FROM cdr_read r JOIN cdr_lines l ON l.rowid = r.rowid
        )
        SELECT *, {_CHECKS} AS reason FROM fields"""  # noqa: S608
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE cdr_valid AS
        SELECT line, record_id, msisdn, service,
               epoch_us(CAST(start_time AS TIMESTAMPTZ)) AS t,
               CAST(quantity AS BIGINT) AS quantity, left(called_number, 32) AS called_number
        FROM cdr_rows WHERE reason IS NULL"""
    )
    total = con.execute(
        "SELECT (SELECT count(*) FROM cdr_rows) + (SELECT count(*) FROM cdr_bad_lines)"
    ).fetchone()[0]
    if total == 0:
        raise _refuse(N_("a header and no rows"), NO_ROWS)
    return int(total)


def raw_lines(data: bytes, numbers: list[int]) -> dict[int, str]:
    """The raw text of the given lines of the file (for rejects)."""
    if not numbers:
        return {}
    wanted = set(numbers)
    found: dict[int, str] = {}
    for number, text in enumerate(data.split(b"\n"), start=1):
        if number in wanted:
            found[number] = text.decode("utf-8").rstrip("\r")
    return found
