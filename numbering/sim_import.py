"""The SIM stock file import, all or nothing (DESIGN §6).

A SIM file is imported all or nothing: every row is checked first, and one
bad row refuses the whole file with a reject per bad row. Importing the same
file twice refuses the second time (every row is already in stock) — unlike
the catalog, a SIM file describes physical stock arriving, so a repeat is a
mistake worth showing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from stdnum import luhn

from app.core.audit import Actor, record_audit
from app.core.errors import N_, clean_text
from app.core.fileimport import NO_ROWS, FileRejected, Reject, read_csv
from numbering.common import get_host
from numbering.errors import SimImportRejected
from numbering.models import SIM_KINDS, Sim

SIM_HEADER = "iccid,imsi,kind,lpa"
SIM_COLUMNS = tuple(SIM_HEADER.split(","))
LPA_PREFIX = "LPA:1$"

_ICCID = re.compile(r"[0-9]{18,22}")
_IMSI = re.compile(r"[0-9]{15}")
# PostgreSQL refuses NUL and the rest only come from broken files.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_IN_CHUNK = 500


@dataclass(frozen=True)
class SimImportReport:
    """What an import did: every data row of the file was imported."""

    filename: str
    rows: int
    imported: int


@dataclass
class _SimRow:
    line: int
    raw: str
    iccid: str = ""
    imsi: str = ""
    kind: str = ""
    lpa: str | None = None
    reasons: list[str] = field(default_factory=list)


def _check_sim_fields(row: _SimRow, fields: Sequence[str]) -> None:
    iccid, imsi, kind, lpa = (value.strip(" ") for value in fields)
    if not _ICCID.fullmatch(iccid):
        row.reasons.append("ICCID must be 18 to 22 digits")
    elif not luhn.is_valid(iccid):
        row.reasons.append("ICCID check digit is wrong (Luhn)")
    if not _IMSI.fullmatch(imsi):
        row.reasons.append("IMSI must be exactly 15 digits")
    if kind not in SIM_KINDS:
        row.reasons.append("kind must be physical or esim")
    if kind == "esim":
        if not lpa:
            row.reasons.append("an eSIM needs its LPA activation code")
        elif not lpa.startswith(LPA_PREFIX) or not lpa[len(LPA_PREFIX) :].split("$")[0]:
            row.reasons.append("the LPA activation code must look like LPA:1$<SM-DP+ address>$<id>")
        elif len(lpa) > 255 or _CONTROL.search(lpa):
            row.reasons.append("the LPA activation code is too long or holds control characters")
    elif kind == "physical" and lpa:
        row.reasons.append("a physical SIM has no LPA activation code")
    row.iccid, row.imsi, row.kind, row.lpa = iccid, imsi, kind, lpa or None


def _parse_sim_file(data: str | bytes) -> list[_SimRow]:
    """The data rows with their problems.

    :raises FileRejected: not UTF-8, empty, a wrong header or no rows.
    """
    file = read_csv(data, columns=SIM_COLUMNS)
    rows: list[_SimRow] = []
    first_iccid: dict[str, int] = {}
    first_imsi: dict[str, int] = {}
    for record in file.records:
        row = _SimRow(line=record.line, raw=record.raw)
        rows.append(row)
        if record.reject is not None:
            row.reasons.append(record.reject.reason)
            continue
        _check_sim_fields(row, record.values)
        if row.iccid in first_iccid:
            row.reasons.append(f"ICCID duplicates line {first_iccid[row.iccid]}")
        elif _ICCID.fullmatch(row.iccid):
            first_iccid[row.iccid] = record.line
        if row.imsi in first_imsi:
            row.reasons.append(f"IMSI duplicates line {first_imsi[row.imsi]}")
        elif _IMSI.fullmatch(row.imsi):
            first_imsi[row.imsi] = record.line
    return rows


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _mark_stock_duplicates(session: Session, rows: list[_SimRow]) -> None:
    """Add a reason to every row whose ICCID or IMSI is already a SIM of ours."""
    for attribute, label in (("iccid", "ICCID"), ("imsi", "IMSI")):
        column = col(getattr(Sim, attribute))
        shape = _ICCID if attribute == "iccid" else _IMSI
        values = sorted(
            {getattr(row, attribute) for row in rows if shape.fullmatch(getattr(row, attribute))}
        )
        known: set[str] = set()
        for chunk in _chunks(values):
            known.update(session.exec(select(column).where(column.in_(chunk))).all())
        for row in rows:
            if getattr(row, attribute) in known:
                row.reasons.append(f"{label} already in stock")


def _refuse(rows: list[_SimRow]) -> SimImportRejected:
    rejects = [Reject(row.line, row.raw, "; ".join(row.reasons)) for row in rows if row.reasons]
    return SimImportRejected(
        N_("%(refused)s of %(rows)s rows refused; nothing imported."),
        rejects=rejects,
        refused=len(rejects),
        rows=len(rows),
    )


def import_sims(
    session: Session,
    *,
    text: str | bytes,
    filename: str,
    host_id: int,
    actor: Actor,
    now: datetime,
) -> SimImportReport:
    """Import a SIM stock file (header `iccid,imsi,kind,lpa`) all or nothing.

    Not idempotent by design (see the module docstring): a second import of
    the same file is refused because every SIM is already in stock.
    :raises HostNotFound: no such host.
    :raises SimImportRejected: any bad row, or a bad file; `.rejects` lists
        each refused line with its reason, and nothing is imported.
    """
    get_host(session, host_id)
    filename = clean_text(filename, field="filename", max_length=500)
    try:
        rows = _parse_sim_file(text)
    except FileRejected as exc:
        if exc.reject.code == NO_ROWS:
            raise SimImportRejected(
                N_("The file has a header but no SIMs; nothing imported."), rejects=[exc.reject]
            ) from None
        raise SimImportRejected(
            N_("The file was refused (%(reason)s); nothing imported."),
            rejects=[exc.reject],
            reason=exc.reject.reason,
        ) from None
    _mark_stock_duplicates(session, rows)
    if any(row.reasons for row in rows):
        raise _refuse(rows)
    values = [
        {
            "iccid": row.iccid,
            "imsi": row.imsi,
            "kind": row.kind,
            "lpa": row.lpa,
            "host_id": host_id,
            "status": "in_stock",
            "created_at": now,
            "status_changed_at": now,
        }
        for row in rows
    ]
    try:
        with session.begin_nested():
            session.execute(insert(Sim), values)
    except IntegrityError:
        # Another import committed some of these SIMs after our check.
        _mark_stock_duplicates(session, rows)
        if not any(row.reasons for row in rows):
            raise
        raise _refuse(rows) from None
    record_audit(
        session,
        actor=actor,
        action="sims.import",
        now=now,
        target_type="host_carrier",
        target_id=host_id,
        details={"filename": filename, "count": len(rows)},
    )
    return SimImportReport(filename=filename, rows=len(rows), imported=len(rows))
