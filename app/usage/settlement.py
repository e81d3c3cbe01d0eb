"""Monthly settlement with the host and reconciliation of its invoice (DESIGN §7).

The arithmetic is `wholesale.settlement` and `wholesale.reconcile`; this
module counts what they are handed, for one host and one calendar month in
the host's time zone:

* usage: the quantities of the month's records per service and local day
  (a record belongs to the month of its `start_time`), so that each day is
  priced with the rate card in force on it — on PostgreSQL grouped by
  `start_time AT TIME ZONE`, on SQLite by UTC quarter-hour (every time
  zone's offset is a whole number of quarter-hours) and dated here;
* lines: the host's lines active on any day of the month (a period of the
  line overlaps it);
* numbers: the numbers of the host's blocks held at the month's end —
  received by then and not returned or ported out by then.

`export_settlement` writes `settlement_<HOST>_<YYYY-MM>.csv` and `.json`
(byte-identical when nothing changed) and keeps the run with its files.
`reconcile_settlement` reads the host's invoice against the same figures,
writes `reconciliation_<HOST>_<YYYY-MM>.csv` and `.json`, and records each
difference beyond the host's tolerance as an open `SettlementDispute`
(an earlier run's open disputes for that month are superseded).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlmodel import Session, col, select

from app.core.audit import Actor, record_audit
from wholesale.models import HostCarrier, SettlementDispute, SettlementRun
from wholesale.reconcile import (
    Reconciliation,
    Tolerance,
    parse_invoice,
    reconcile,
    reconciliation_csv,
    reconciliation_json,
)
from wholesale.services import get_host_by_code, list_rate_cards
from wholesale.settlement import (
    Settlement,
    UsageQuantity,
    month_bounds,
    parse_month,
    report_paths,
    settle,
    settlement_csv,
    settlement_json,
    write_text_atomic,
)

_QUARTER_HOUR_S = 900

_USAGE_PG = text(
    "SELECT service, CAST(start_time AT TIME ZONE :tz AS DATE) AS day, sum(quantity)"
    " FROM usage_record WHERE host_id = :host AND start_time >= :start AND start_time < :end"
    " GROUP BY 1, 2"
)
_USAGE_SQLITE = text(
    "SELECT service, CAST(strftime('%s', start_time) AS INTEGER) / 900 AS bucket, sum(quantity)"
    " FROM usage_record WHERE host_id = :host AND start_time >= :start AND start_time < :end"
    " GROUP BY 1, 2"
)
_USAGE_SUMMED = text(
    "SELECT service, bucket, quantity FROM usage_quarter_hour"
    " WHERE host_id = :host AND bucket >= :first AND bucket < :last"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The host's lines with a period overlapping the month, each once. A line is the host's
# when its number lies in one of the host's blocks: blocks never overlap and hold every
# number of their range (numbering/blocks.py), so the range says it without reading
# the numbers. A line whose periods run end to start (no period_gap_at,
# app/charging/periods.py) has one exactly when its service started before the month
# ends and its period_end comes after the month begins; a line with a gap between its
# periods is looked for in its periods.
_HOST_LINE = (
    " JOIN number_block b ON b.host_id = :host AND length(b.first) = length(l.msisdn)"
    " AND l.msisdn BETWEEN b.first AND b.last"
)
_LINES = text(
    "SELECT (SELECT count(*) FROM line l"  # noqa: S608 (constants)
    + _HOST_LINE
    + " WHERE l.period_gap_at IS NULL AND l.service_started_at < :end AND l.period_end > :start)"
    " + (SELECT count(DISTINCT p.line_id) FROM line_period p JOIN line l ON l.id = p.line_id"
    + _HOST_LINE
    + ' WHERE l.period_gap_at IS NOT NULL AND p.start < :end AND p."end" > :start)'
)
# Numbers held at the month's end: every number of the blocks received by then (a block
# holds `size` numbers), less those returned or ported out before it (through the
# status index: they are few).
_NUMBERS = text(
    "SELECT (SELECT coalesce(sum(b.size), 0) FROM number_block b"
    " WHERE b.host_id = :host AND b.received_at < :end)"
    " - (SELECT count(*) FROM phone_number n JOIN number_block b ON b.id = n.block_id"
    " WHERE b.host_id = :host AND b.received_at < :end"
    " AND n.status IN ('returned', 'ported_out') AND n.status_changed_at < :end)"
)


@dataclass(frozen=True)
class SettlementFiles:
    """A settlement or reconciliation run: the figures, the files written, the run kept."""

    run_id: int
    settlement: Settlement
    files: tuple[Path, ...]
    reconciliation: Reconciliation | None = None

    def as_dict(self) -> dict[str, Any]:
        """Summary for `--json` and the API (money in minor units)."""
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "host": self.settlement.host,
            "month": self.settlement.period,
            "currency": self.settlement.currency,
            "total": self.settlement.total_minor,
            "files": [str(path) for path in self.files],
        }
        if self.reconciliation is not None:
            data["invoice_total"] = self.reconciliation.invoice_total_minor
            data["discrepancies"] = len(self.reconciliation.discrepancies)
        return data


def _params(session: Session, **values: Any) -> dict[str, Any]:
    """Bind instants as the backend stores them (SQLite: naive UTC text)."""
    if session.get_bind().dialect.name == "sqlite":
        return {
            k: v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            if isinstance(v, datetime)
            else v
            for k, v in values.items()
        }
    return values


def usage_by_day(
    session: Session,
    *,
    host: HostCarrier,
    start: datetime,
    end: datetime,
    summed: bool = False,
) -> list[UsageQuantity]:
    """The month's usage quantities per service and local day of the host.

    From the records themselves (the settlement export), or with `summed`
    from `usage_quarter_hour`, which the importer keeps equal to them (the
    dashboard: a few rows per day). Both give the same quantities when
    `start` and `end` are whole quarter-hours, as every zone's days are.
    """
    assert host.id is not None
    connection = session.connection()
    totals: dict[tuple[str, date], int] = defaultdict(int)
    params = _params(session, host=host.id, start=start, end=end, tz=host.timezone)
    if not summed and session.get_bind().dialect.name == "postgresql":
        for service, day, quantity in connection.execute(_USAGE_PG, params):
            totals[(service, day)] += int(quantity)
    else:
        if summed:
            params["first"] = int((start - _EPOCH).total_seconds()) // _QUARTER_HOUR_S
            params["last"] = -(-int((end - _EPOCH).total_seconds()) // _QUARTER_HOUR_S)
        zone = ZoneInfo(host.timezone)
        query = _USAGE_SUMMED if summed else _USAGE_SQLITE
        for service, bucket, quantity in connection.execute(query, params):
            instant = _EPOCH + timedelta(seconds=int(bucket) * _QUARTER_HOUR_S)
            totals[(service, instant.astimezone(zone).date())] += int(quantity)
    return [
        UsageQuantity(service=service, day=day, quantity=quantity)
        for (service, day), quantity in sorted(totals.items())
    ]


def count_lines_and_numbers(
    session: Session, *, host: HostCarrier, start: datetime, end: datetime
) -> tuple[int, int]:
    """(lines active on any day of the month, numbers held at its end) of the host."""
    connection = session.connection()
    params = _params(session, host=host.id, start=start, end=end)
    lines = connection.execute(_LINES, params).scalar_one()
    numbers = connection.execute(_NUMBERS, params).scalar_one()
    return int(lines), int(numbers)


def compute_settlement(
    session: Session,
    *,
    host: HostCarrier,
    month: str,
    usage: list[UsageQuantity] | None = None,
) -> Settlement:
    """The host's settlement for the month, from the database's records and counts.

    `usage` is the month's `usage_by_day` when the caller has read it already
    (the dashboard draws the same quantities); None reads it here.
    """
    assert host.id is not None
    first = parse_month(month)
    month = f"{first.year:04d}-{first.month:02d}"
    start, end = month_bounds(month, host.timezone)
    lines, numbers = count_lines_and_numbers(session, host=host, start=start, end=end)
    if usage is None:
        usage = usage_by_day(session, host=host, start=start, end=end)
    return settle(
        host_code=host.code,
        currency=host.currency,
        month=month,
        cards=list_rate_cards(session, host_id=host.id),
        usage=usage,
        lines=lines,
        numbers=numbers,
    )


def _write(paths: tuple[Path, Path], files: list[tuple[str, str]]) -> tuple[Path, ...]:
    """Write each file's text atomically at its path (the folder is created)."""
    for path, (_, body) in zip(paths, files, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, body)
    return paths


def _keep_run(
    session: Session,
    *,
    host: HostCarrier,
    settlement: Settlement,
    kind: str,
    files: list[tuple[str, str]],
    actor: Actor,
    now: datetime,
    reconciliation: Reconciliation | None = None,
) -> SettlementRun:
    assert host.id is not None
    (csv_name, csv_text), (json_name, json_text) = files
    run = SettlementRun(
        host_id=host.id,
        month=settlement.period,
        kind=kind,
        total_minor=settlement.total_minor,
        invoice_total_minor=reconciliation.invoice_total_minor if reconciliation else None,
        discrepancies=len(reconciliation.discrepancies) if reconciliation else 0,
        csv_name=csv_name,
        csv_text=csv_text,
        json_name=json_name,
        json_text=json_text,
        actor=actor.label[:254],
        created_at=now,
    )
    session.add(run)
    session.flush()
    return run


def export_settlement(
    session: Session, *, host_code: str, month: str, out_dir: Path, actor: Actor, now: datetime
) -> SettlementFiles:
    """Write the host's settlement files for the month into `out_dir` and keep the run.

    :raises HostNotFound: no such host.
    :raises InvalidInput: the month is not YYYY-MM. :raises NoRateCard: a day has no card.
    """
    host = get_host_by_code(session, host_code)
    settlement = compute_settlement(session, host=host, month=month)
    paths = report_paths("settlement", host.code, settlement.period, out_dir)
    files = [
        (paths[0].name, settlement_csv(settlement)),
        (paths[1].name, settlement_json(settlement)),
    ]
    _write(paths, files)
    run = _keep_run(
        session, host=host, settlement=settlement, kind="export", files=files, actor=actor, now=now
    )
    record_audit(
        session,
        actor=actor,
        action="settlement.export",
        target_type="settlement_run",
        target_id=run.id,
        now=now,
        details={
            "host": host.code,
            "month": settlement.period,
            "total_minor": settlement.total_minor,
        },
    )
    assert run.id is not None
    return SettlementFiles(run_id=run.id, settlement=settlement, files=paths)


def _record_disputes(
    session: Session,
    *,
    host: HostCarrier,
    run: SettlementRun,
    result: Reconciliation,
    now: datetime,
) -> int:
    """Supersede the month's open disputes and open one per discrepancy; how many opened."""
    assert host.id is not None and run.id is not None
    earlier = session.exec(
        select(SettlementDispute).where(
            SettlementDispute.host_id == host.id,
            SettlementDispute.month == run.month,
            SettlementDispute.status == "open",
            col(SettlementDispute.run_id) != run.id,
        )
    ).all()
    for dispute in earlier:
        dispute.status = "resolved"
        dispute.resolved_at = now
        dispute.note = f"superseded by reconciliation run {run.id}"
        session.add(dispute)
    for row in result.discrepancies:
        session.add(
            SettlementDispute(
                run_id=run.id,
                host_id=host.id,
                month=run.month,
                service=row.service,
                our_quantity=row.our_quantity,
                invoice_quantity=row.invoice_quantity,
                our_amount_minor=row.our_amount_minor,
                invoice_amount_minor=row.invoice_amount_minor,
                status="open",
                created_at=now,
            )
        )
    return len(result.discrepancies)


def reconcile_settlement(
    session: Session,
    *,
    host_code: str,
    month: str,
    invoice: bytes,
    out_dir: Path,
    actor: Actor,
    now: datetime,
) -> SettlementFiles:
    """Check the host's invoice against our settlement; write the report, record disputes.

    A difference is a result, not an error: the report is written whatever
    the invoice says, as long as it can be read.
    :raises InvoiceRejected: the invoice cannot be read (see `wholesale.reconcile`).
    """
    host = get_host_by_code(session, host_code)
    settlement = compute_settlement(session, host=host, month=month)
    rows = parse_invoice(
        invoice, host_code=host.code, month=settlement.period, currency=host.currency
    )
    tolerance = Tolerance(
        amount_minor=host.reconcile_amount_tolerance_minor,
        quantity_bp=host.reconcile_quantity_tolerance_bp,
    )
    result = reconcile(settlement, rows, tolerance)
    paths = report_paths("reconciliation", host.code, settlement.period, out_dir)
    files = [
        (paths[0].name, reconciliation_csv(result)),
        (paths[1].name, reconciliation_json(result)),
    ]
    _write(paths, files)
    run = _keep_run(
        session,
        host=host,
        settlement=settlement,
        kind="reconcile",
        files=files,
        actor=actor,
        now=now,
        reconciliation=result,
    )
    opened = _record_disputes(session, host=host, run=run, result=result, now=now)
    record_audit(
        session,
        actor=actor,
        action="settlement.reconcile",
        target_type="settlement_run",
        target_id=run.id,
        now=now,
        details={"host": host.code, "month": settlement.period, "disputes": opened},
    )
    assert run.id is not None
    return SettlementFiles(run_id=run.id, settlement=settlement, files=paths, reconciliation=result)
