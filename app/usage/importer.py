"""`mvno cdr import`: a host's usage file in, charged, in one transaction (DESIGN §7, §9).

Every row ends in exactly one of three counts: charged, duplicate (a
`(host, record_id)` seen before, earlier in this file or in an earlier
import) or rejected (kept as a `UsageReject` with its line, raw text and
reason), so `charged + duplicates + rejected = rows`. The same file (same
SHA-256) again changes nothing and reports `already_imported`. The whole
import — the file's row, its records, the periods' counters, the ledger
entries and the rejects — is one transaction of the caller's: a crash
before commit leaves nothing, and the same command again does the whole
job, with the result of a run that was never interrupted.

The pipeline (`charge_rows`) is shared with reprocessing rejects
(`app.usage.rejects`): DuckDB holds the rows (`app.usage.reading`),
duplicates and numbers not held from the host are set aside, charging rates
the rest (`app.charging.rating`), and the records are stored in bulk
(`app.usage.store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import bindparam, insert, text
from sqlmodel import Session, select

from app.charging.rating import load_periods, rate_usage
from app.core.audit import Actor, record_audit
from app.core.faults import crash_point
from app.core.fileimport import file_sha256
from app.usage import reading, store
from app.usage.models import UsageFile, UsageReject
from wholesale.models import HostCarrier
from wholesale.services import get_host_by_code

_HELD_NUMBERS = text(
    "SELECT n.msisdn FROM phone_number n JOIN number_block b ON b.id = n.block_id"
    " WHERE b.host_id = :host AND n.msisdn IN :msisdns"
).bindparams(bindparam("msisdns", expanding=True))


@dataclass
class RejectRow:
    """A row that could not be used: its line in the file read, raw text and reason."""

    line: int
    raw: str
    reason: str
    record_id: str | None = None


@dataclass
class Charged:
    """What the pipeline made of the rows read into DuckDB."""

    rows: int = 0
    charged: int = 0
    duplicates: int = 0
    charge_minor: int = 0
    suspended_lines: tuple[int, ...] = ()
    first_start: datetime | None = None
    last_start: datetime | None = None
    rejects: list[RejectRow] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    """The outcome of `import_usage_file`, as `mvno cdr import --json` prints it."""

    file: str
    file_id: int
    rows: int
    charged: int
    duplicates: int
    rejected: int
    already_imported: bool
    charge_minor: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape of DESIGN §13."""
        return {
            "file": self.file,
            "rows": self.rows,
            "charged": self.charged,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "already_imported": self.already_imported,
        }


def _set_aside_duplicates(session: Session, con: Any, host_id: int) -> int:
    """`usage_in`: one row per record id not stored before; returns the duplicates set aside.

    Of the rows sharing an id, the one kept is the first (by line) that a
    period contains, else the first: a copy that cannot be charged never
    shadows one that can.
    """
    held = con.execute("SELECT count(*) FROM cdr_held_rows").fetchone()[0]
    distinct = con.execute("SELECT count(DISTINCT record_id) FROM cdr_held_rows").fetchone()[0]
    if distinct == held:  # no id repeats within the file: every row is its id's first
        con.execute("ALTER TABLE cdr_held_rows RENAME TO cdr_first")
    else:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE cdr_first AS SELECT * FROM cdr_held_rows
               QUALIFY row_number() OVER (
                   PARTITION BY record_id
                   ORDER BY line IN (SELECT line FROM rating_chargeable) DESC, line) = 1"""
        )
    seen: list[str] = []
    if store.host_has_records(session, host_id):
        ids = [
            r
            for (r,) in con.execute(
                "SELECT record_id FROM cdr_first UNION SELECT record_id FROM cdr_unknown"
            ).fetchall()
        ]
        seen = store.seen_record_ids(session, host_id, ids)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cdr_seen AS SELECT unnest(?::VARCHAR[]) AS record_id",
        [seen],
    )
    if seen:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE usage_in AS
               SELECT * FROM cdr_first ANTI JOIN cdr_seen USING (record_id)"""
        )
    else:
        con.execute("ALTER TABLE cdr_first RENAME TO usage_in")
    new = con.execute("SELECT count(*) FROM usage_in").fetchone()[0]
    return int(held - new)


def _keep_held_numbers(session: Session, con: Any, host_id: int) -> None:
    """`cdr_held_rows`: valid rows whose number is held from the host; the rest `cdr_unknown`."""
    msisdns = [m for (m,) in con.execute("SELECT DISTINCT msisdn FROM cdr_valid").fetchall()]
    held: list[str] = []
    connection = session.connection()
    for start in range(0, len(msisdns), 5_000):
        chunk = msisdns[start : start + 5_000]
        held.extend(
            m for (m,) in connection.execute(_HELD_NUMBERS, {"host": host_id, "msisdns": chunk})
        )
    if len(set(held)) == len(msisdns):  # every number is held: nothing to set aside
        con.execute("CREATE OR REPLACE TEMP TABLE cdr_unknown AS SELECT * FROM cdr_valid LIMIT 0")
        con.execute("ALTER TABLE cdr_valid RENAME TO cdr_held_rows")
        return
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cdr_held AS SELECT unnest(?::VARCHAR[]) AS msisdn", [held]
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE cdr_held_rows AS
           SELECT * FROM cdr_valid SEMI JOIN cdr_held USING (msisdn)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE cdr_unknown AS
           SELECT * FROM cdr_valid ANTI JOIN cdr_held USING (msisdn)"""
    )


def _unusable(con: Any, data: bytes) -> tuple[list[RejectRow], int]:
    """The refused rows in line order with their raw text, and the duplicates among them.

    A row that cannot be charged (number not held, no period) whose record
    id was charged — before, or from another row of this file — is a
    duplicate, not a reject.
    """
    found = con.execute(
        """WITH charged AS (
               SELECT record_id FROM usage_rated UNION SELECT record_id FROM cdr_seen
           ), unusable AS (
               SELECT line, 'unknown_msisdn' AS reason, record_id FROM cdr_unknown
               UNION ALL SELECT u.line, 'no_active_line', u.record_id
                         FROM usage_in u SEMI JOIN usage_unrated USING (line)
           )
           SELECT line, reason, record_id FROM cdr_rows WHERE reason IS NOT NULL
           UNION ALL SELECT line, reason, record_id FROM unusable
                     WHERE record_id NOT IN (SELECT record_id FROM charged)
           ORDER BY line"""
    ).fetchall()
    duplicates = con.execute(
        """SELECT count(*) FROM (
               SELECT record_id FROM cdr_unknown
               UNION ALL SELECT u.record_id FROM usage_in u SEMI JOIN usage_unrated USING (line)
           ) WHERE record_id IN (
               SELECT record_id FROM usage_rated UNION SELECT record_id FROM cdr_seen)"""
    ).fetchone()[0]
    raw = reading.raw_lines(data, [line for line, _, _ in found])
    rejects = [
        RejectRow(int(line), raw.get(line, ""), reason, record_id)
        for line, reason, record_id in found
    ]
    bad = con.execute("SELECT line, raw FROM cdr_bad_lines ORDER BY line").fetchall()
    rejects.extend(RejectRow(int(line), text or "", "column_count") for line, text in bad)
    rejects.sort(key=lambda reject: reject.line)
    return rejects, int(duplicates)


def read_rows(data: bytes, path: Path, *, host: HostCarrier) -> tuple[Any, int]:
    """A DuckDB connection holding the file's rows, checked; and how many rows it has.

    :raises FileRejected: the header does not fit, a quoted field spans
        lines, or there are no rows. The caller closes the connection.
    """
    shape = reading.read_shape(data, host.cdr_columns)
    # No progress bar: it would be drawn on a command's stdout beside its JSON.
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        reading.load_raw(con, path, shape)
        reading.number_lines(con, data)
        return con, reading.check_rows(con, shape)
    except BaseException:
        con.close()
        raise


def charge_rows(
    session: Session,
    con: Any,
    data: bytes,
    *,
    rows: int,
    host: HostCarrier,
    file_id: int,
    actor: Actor,
    now: datetime,
) -> Charged:
    """Deduplicate, rate and store the rows `read_rows` checked (see the module)."""
    assert host.id is not None
    result = Charged(rows=rows)
    _keep_held_numbers(session, con, host.id)
    load_periods(session, con, source="cdr_held_rows")
    result.duplicates = _set_aside_duplicates(session, con, host.id)
    rating = rate_usage(
        session,
        con,
        key=f"usage:{file_id}",
        memo=f"usage of {host.code} import {file_id}",
        actor=actor,
        now=now,
        periods_loaded=True,
        timezone=host.timezone,
    )
    crash_point("usage.rated")
    result.charged = store.write_records(session, con, host_id=host.id, file_id=file_id)
    result.charge_minor = rating.charge_minor
    result.suspended_lines = rating.suspended_lines
    first, last = con.execute("SELECT min(t), max(t) FROM usage_rated").fetchone()
    result.first_start = store.utc_from_micros(first)
    result.last_start = store.utc_from_micros(last)
    result.rejects, late_duplicates = _unusable(con, data)
    result.duplicates += late_duplicates
    return result


def _write_rejects(
    session: Session, rejects: list[RejectRow], *, file_id: int, host_id: int, now: datetime
) -> None:
    if not rejects:
        return
    session.connection().execute(
        insert(UsageReject.__table__),  # type: ignore[attr-defined]
        [
            {
                "file_id": file_id,
                "host_id": host_id,
                "line_no": reject.line,
                "raw": reject.raw,
                "reason": reject.reason,
                "record_id": (reject.record_id or None) and reject.record_id[:64],
                "status": "open",
                "created_at": now,
            }
            for reject in rejects
        ],
    )


def find_import(session: Session, *, host_id: int, sha256: str) -> UsageFile | None:
    """The import of this file (by SHA-256) for the host, if it was imported."""
    return session.exec(
        select(UsageFile).where(UsageFile.host_id == host_id, UsageFile.sha256 == sha256)
    ).first()


def _result(usage_file: UsageFile, *, already: bool) -> ImportResult:
    assert usage_file.id is not None
    return ImportResult(
        file=usage_file.filename,
        file_id=usage_file.id,
        rows=usage_file.rows_total,
        charged=usage_file.charged,
        duplicates=usage_file.duplicates,
        rejected=usage_file.rejected,
        already_imported=already,
        charge_minor=usage_file.charge_minor,
    )


def import_usage_file(
    session: Session,
    *,
    host_code: str,
    path: Path,
    actor: Actor,
    now: datetime,
    filename: str | None = None,
) -> ImportResult:
    """Import one usage file of the host, in the caller's transaction (see the module).

    :raises HostNotFound: no host with that code.
    :raises FileRejected: the file cannot be read as a whole (not UTF-8,
        empty, a header that does not fit, no rows); nothing is written.
    """
    host = get_host_by_code(session, host_code)
    assert host.id is not None
    data = path.read_bytes()
    reading.check_text(data)
    sha256 = file_sha256(data)
    store.lock_host(session, host.id)
    before = find_import(session, host_id=host.id, sha256=sha256)
    if before is not None:
        return _result(before, already=True)
    con, rows = read_rows(data, path, host=host)
    try:
        usage_file = UsageFile(
            host_id=host.id,
            filename=(filename or path.name)[:255],
            sha256=sha256,
            header=data.split(b"\n", 1)[0].decode("utf-8").lstrip("\ufeff").rstrip("\r"),
            actor=actor.label[:254],
            created_at=now,
        )
        session.add(usage_file)
        session.flush()
        assert usage_file.id is not None
        charged = charge_rows(
            session, con, data, rows=rows, host=host, file_id=usage_file.id, actor=actor, now=now
        )
    finally:
        con.close()
    _write_rejects(session, charged.rejects, file_id=usage_file.id, host_id=host.id, now=now)
    usage_file.rows_total = charged.rows
    usage_file.charged = charged.charged
    usage_file.duplicates = charged.duplicates
    usage_file.rejected = len(charged.rejects)
    usage_file.charge_minor = charged.charge_minor
    usage_file.first_start = charged.first_start
    usage_file.last_start = charged.last_start
    session.add(usage_file)
    record_audit(
        session,
        actor=actor,
        action="usage.import",
        target_type="usage_file",
        target_id=usage_file.id,
        now=now,
        details={
            "host": host.code,
            "file": usage_file.filename,
            "sha256": sha256,
            "rows": charged.rows,
            "charged": charged.charged,
            "duplicates": charged.duplicates,
            "rejected": len(charged.rejects),
            "charge_minor": charged.charge_minor,
            "suspended_lines": list(charged.suspended_lines),
        },
    )
    session.flush()
    crash_point("usage.before_commit")
    return _result(usage_file, already=False)
