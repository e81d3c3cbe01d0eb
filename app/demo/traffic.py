"""The demo business's usage: the host's weekly CDR files, generated and imported.

Each week the host delivers one file (`HOSTA-cdr-<first day>.csv`, in the
documented `cdr.csv` format) with the data sessions, calls and messages of
every line in service during the week, inside the line's periods and
before it was suspended or ended. A line uses about its share `use` of
the period's allowances, spread day by day with some scatter, so heavy
users now and then go over (overage) and light users never do. The files
are written under the demo's work folder and imported with the real
importer (app/usage/importer.py), rejects and all: each file carries a few
rows the host got wrong (a number that is not ours, an unknown service, a
negative quantity, a bad time) and repeats two rows of the week before
(duplicates).

One line is the fraud case: bought two days ago, it moves 20 GB within its
first day, which the rule "heavy usage within 24 h of activation" flags.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from app.charging.models import LinePeriod
from app.core.audit import Actor
from app.demo.world import HOST_CODE, DemoLine, World
from app.subscribers.models import Line
from app.usage.importer import import_usage_file

HEADER = ("record_id", "msisdn", "service", "start_time", "quantity", "called_number")
FRAUD_BYTES = 20 * 1024**3
CALLED = ("+8613800138000", "+8613912345678", "+8618600001111", "+8615000002222", "+8613761234567")
Row = tuple[str, str, str, str, str, str]


def _stamp(world: World, instant: datetime) -> str:
    return instant.astimezone(world.zone).isoformat(timespec="seconds")


def _next_id(world: World) -> str:
    world.record_seq += 1
    return f"{HOST_CODE}-D{world.record_seq:08d}"


def _spans(session: Session, world: World, start: datetime, end: datetime) -> list[tuple]:
    """(line, period, from, to) for every demo line's period overlapping [start, end)."""
    ids = [line.line_id for line in world.lines if not line.fraud]
    rows = session.exec(
        select(LinePeriod, Line)
        .join(Line, col(Line.id) == col(LinePeriod.line_id))
        .where(
            col(LinePeriod.line_id).in_(ids),
            col(LinePeriod.start) < end,
            col(LinePeriod.end) > start,
        )
        .order_by(col(LinePeriod.line_id), col(LinePeriod.start))
    ).all()
    spans = []
    for period, line in rows:
        stop = min(period.end, end)
        if line.status != "active":
            stop = min(stop, line.status_changed_at)
        begin = max(period.start, start)
        if begin < stop:
            spans.append((line, period, begin, stop))
    return spans


def _day_rows(world: World, line: Line, period: LinePeriod, use: float, day: datetime) -> list[Row]:
    """One line's records of one day at `use` of its allowances."""
    rng, rows = world.rng, []
    days = max((period.end - period.start).total_seconds() / 86400, 1)
    data_kb = period.data_kb * use / days * rng.uniform(0.3, 1.7)
    sessions = rng.randint(1, 3)
    for _ in range(sessions):
        at = day + timedelta(seconds=rng.randrange(86400))
        rows.append(
            (
                _next_id(world),
                line.msisdn,
                "data",
                _stamp(world, at),
                str(max(int(data_kb * 1024 / sessions), 1024)),
                "",
            )
        )
    voice_s = period.voice_s * use / days * rng.uniform(0.2, 1.8)
    calls = rng.choice((0, 1, 1, 2, 2, 3))
    for _ in range(calls):
        at = day + timedelta(seconds=rng.randrange(86400))
        rows.append(
            (
                _next_id(world),
                line.msisdn,
                "voice",
                _stamp(world, at),
                str(max(int(voice_s / calls), 5)),
                rng.choice(CALLED),
            )
        )
    if rng.random() < min(period.sms * use / days, 1.0):
        at = day + timedelta(seconds=rng.randrange(86400))
        rows.append(
            (_next_id(world), line.msisdn, "sms", _stamp(world, at), "1", rng.choice(CALLED))
        )
    return rows


def _span_rows(world: World, span: tuple, uses: dict[int, float]) -> list[Row]:
    line, period, begin, stop = span
    rows: list[Row] = []
    day = begin
    while day < stop:
        length = min(stop - day, timedelta(days=1))
        for row in _day_rows(world, line, period, uses[line.id], day):
            at = datetime.fromisoformat(row[3])
            if at < day + length:
                rows.append(row)
        day += timedelta(days=1)
    return rows


def _bad_rows(world: World, when: datetime) -> list[Row]:
    """The rows a host gets wrong now and then: each becomes a reject."""
    stamp = _stamp(world, when)
    return [
        (_next_id(world), "+8613300001234", "data", stamp, "1048576", ""),
        (_next_id(world), "+8617012340999", "mms", stamp, "1", ""),
        (_next_id(world), "+8617012340998", "voice", stamp, "-30", ""),
        (_next_id(world), "+8617012340997", "sms", "2026-13-01 25:00", "1", ""),
    ]


def write_file(folder: Path, name: str, rows: list[Row]) -> Path:
    """Write a CDR file in the documented format; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    path = folder / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def import_week(
    session: Session,
    world: World,
    *,
    start: datetime,
    end: datetime,
    extra: list[Row] | None = None,
) -> None:
    """Generate, write and import the host's file of usage in [start, end)."""
    uses = {line.line_id: line.use for line in world.lines}
    rows: list[Row] = []
    for span in _spans(session, world, start, end):
        rows.extend(_span_rows(world, span, uses))
    rows.sort(key=lambda row: row[3])
    good = list(rows)
    rows.extend(_bad_rows(world, end - timedelta(hours=5)))
    rows.extend(world.rng.sample(good, min(2, len(good))) if good else [])
    rows.extend(extra or [])
    if not rows:
        return
    local = start.astimezone(world.zone)
    path = write_file(world.workdir / "cdr", f"{HOST_CODE}-cdr-{local:%Y-%m-%d}.csv", rows)
    result = import_usage_file(
        session,
        host_code=HOST_CODE,
        path=path,
        actor=Actor.system("demo"),
        now=min(end + timedelta(hours=3), world.now),
    )
    world.count("usage_files")
    world.count("usage_rows", result.rows)
    world.count("usage_charged", result.charged)
    world.count("usage_rejected", result.rejected)
    world.count("usage_duplicates", result.duplicates)


def fraud_rows(world: World, line: DemoLine, *, activated: datetime) -> list[Row]:
    """20 GB in the first 20 hours after `activated`: the fraud case's records."""
    rows: list[Row] = []
    chunks = 40
    for k in range(chunks):
        at = activated + timedelta(minutes=20 + k * 29)
        rows.append(
            (
                _next_id(world),
                line.msisdn,
                "data",
                _stamp(world, at),
                str(FRAUD_BYTES // chunks),
                "",
            )
        )
    return rows


def utc(instant: datetime) -> datetime:
    """`instant` in UTC (the database's times come back as UTC)."""
    return instant.astimezone(UTC)
