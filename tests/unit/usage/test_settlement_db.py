"""Settlement from the database (DESIGN §7) against a slow reference, and reconciliation.

The reference works from the records as generated, with fractions: each
record's local day in the host's zone decides its month and its rate card.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from app.charging.periods import open_period
from app.usage.models import UsageQuarterHour
from app.usage.settlement import (
    compute_settlement,
    export_settlement,
    reconcile_settlement,
    usage_by_day,
)
from app.usage.store import rebuild_quarter_hours
from tests.unit.subscribers.helpers import World, make_world
from tests.unit.usage.helpers import ACTOR, import_rows, subject
from tests.unit.wholesale.helpers import PRICES_MICRO, make_rate_card
from wholesale.models import RateCard, SettlementDispute, SettlementRun
from wholesale.settlement import month_bounds

NOV = datetime(2026, 11, 1, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
PER_UNIT = {"data": 1_048_576, "voice": 60, "sms": 1}
MICRO_PER_MINOR = 10_000


@pytest.fixture
def world(session: Session) -> World:
    w = make_world(session, code="HOSTA")
    # a second card from 16 November: data and voice cost more
    make_rate_card(
        session,
        host=w.host,
        effective_from=date(2026, 11, 16),
        data=PRICES_MICRO["data"] + 700,
        voice=PRICES_MICRO["voice"] + 1,
    )
    return w


def _records(seed: int, msisdns: list[str]) -> list[tuple[str, str, str, datetime, int]]:
    rng = random.Random(seed)
    rows = []
    for n in range(rng.randrange(20, 120)):
        service = rng.choice(("data", "data", "voice", "sms"))
        quantity = {
            "data": rng.randrange(0, 5_000_000),
            "voice": rng.randrange(0, 900),
            "sms": rng.randrange(0, 3),
        }[service]
        # across the whole first period: the last hours fall in December, Shanghai time
        start = NOV + timedelta(seconds=rng.randrange(0, 30 * 86_400))
        rows.append((f"S{seed}-{n}", rng.choice(msisdns), service, start, quantity))
    return rows


def _reference(
    session: Session, host_id: int, rows: list[tuple[str, str, str, datetime, int]]
) -> list[tuple[str, int, int, int]]:
    """(service, quantity, unit price, amount) per service and price, the slow way."""
    cards = session.exec(
        select(RateCard).where(RateCard.host_id == host_id).order_by(col(RateCard.effective_from))
    ).all()
    sums: dict[tuple[str, int], list[Fraction | int]] = defaultdict(lambda: [0, Fraction(0)])
    for _, _, service, start, quantity in rows:
        day = start.astimezone(ZONE).date()
        if (day.year, day.month) != (2026, 11):
            continue
        card = [c for c in cards if c.effective_from <= day][-1]
        price = card.price(service)
        entry = sums[(service, price)]
        entry[0] += quantity
        entry[1] += Fraction(quantity * price, PER_UNIT[service] * MICRO_PER_MINOR)
    result = []
    for (service, price), (quantity, amount) in sums.items():
        exact = Decimal(amount.numerator) / Decimal(amount.denominator)
        result.append(
            (service, int(quantity), price, int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
        )
    return sorted(result)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_settlement_matches_a_slow_reference(
    session: Session, world: World, tmp_path: Path, seed: int
) -> None:
    subjects = [subject(session, world, start=NOV) for _ in range(3)]
    idle = subject(session, world, start=NOV - timedelta(days=60))  # its period ended in October
    rows = _records(seed, [s.msisdn for s in subjects])
    result = import_rows(session, tmp_path, rows, now=NOV + timedelta(days=31))
    assert result.charged == len({r[0] for r in rows})
    settlement = compute_settlement(session, host=world.host, month="2026-11")
    usage = sorted(
        (r.service, r.quantity, r.unit_price_micro, r.amount_minor)
        for r in settlement.rows
        if r.service in PER_UNIT and (r.quantity or r.amount_minor)
    )
    assert usage == _reference(session, world.host.id or 0, rows)
    monthly = {r.service: r.quantity for r in settlement.rows if r.service not in PER_UNIT}
    # three lines with November periods; the idle one's ended before; 200 numbers held
    assert monthly == {"line": 3, "number": 200}
    assert idle.period.end < NOV


def test_a_line_counts_if_active_on_any_day(session: Session, world: World, tmp_path: Path) -> None:
    # a period that ends one hour into November (Shanghai): the line was active that day
    start = datetime(2026, 10, 2, 16, tzinfo=UTC)
    s = subject(session, world, start=start)
    assert s.period.end == datetime(2026, 11, 1, 16, tzinfo=UTC)
    # one starting a minute before December in Shanghai counts; one starting at December does not
    subject(session, world, start=datetime(2026, 11, 30, 15, 59, tzinfo=UTC))
    subject(session, world, start=datetime(2026, 11, 30, 16, tzinfo=UTC))
    settlement = compute_settlement(session, host=world.host, month="2026-11")
    assert {r.service: r.quantity for r in settlement.rows}["line"] == 2


def test_export_is_byte_identical_and_kept(session: Session, world: World, tmp_path: Path) -> None:
    s = subject(session, world, start=NOV)
    import_rows(session, tmp_path, [("E1", s.msisdn, "data", NOV + timedelta(days=2), 53_477_376)])
    out = tmp_path / "out"
    first = export_settlement(
        session, host_code="HOSTA", month="2026-11", out_dir=out, actor=ACTOR, now=NOV
    )
    csv_bytes = (out / "settlement_HOSTA_2026-11.csv").read_bytes()
    json_bytes = (out / "settlement_HOSTA_2026-11.json").read_bytes()
    second = export_settlement(
        session, host_code="HOSTA", month="2026-11", out_dir=out, actor=ACTOR, now=NOV
    )
    assert [p.name for p in second.files] == [
        "settlement_HOSTA_2026-11.csv",
        "settlement_HOSTA_2026-11.json",
    ]
    assert (out / "settlement_HOSTA_2026-11.csv").read_bytes() == csv_bytes
    assert (out / "settlement_HOSTA_2026-11.json").read_bytes() == json_bytes
    runs = session.exec(select(SettlementRun).order_by(col(SettlementRun.id))).all()
    assert [r.id for r in runs] == [first.run_id, second.run_id]
    assert runs[0].csv_text.encode() == csv_bytes
    assert csv_bytes.splitlines()[0] == (
        b"host,period,service,unit,quantity,unit_price,amount,currency,compliant"
    )
    assert b"HOSTA,2026-11,data,bytes,53477376," in csv_bytes


def test_reconciliation_records_disputes_and_supersedes(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world, start=NOV)
    import_rows(session, tmp_path, [("E1", s.msisdn, "sms", NOV + timedelta(days=2), 1)])
    ours = compute_settlement(session, host=world.host, month="2026-11")
    lines = ["host,period,service,unit,quantity,unit_price,amount,currency"]
    for row in ours.rows:
        quantity, amount = row.quantity, row.amount_minor
        if row.service == "sms":
            quantity, amount = quantity + 100, amount + 150  # the host bills 100 more SMS
        lines.append(
            f"HOSTA,2026-11,{row.service},{row.unit},{quantity},"
            f"{Decimal(row.unit_price_micro) / 1_000_000},{Decimal(amount) / 100:.2f},CNY"
        )
    invoice = ("\n".join(lines) + "\n").encode()
    out = tmp_path / "rec"
    first = reconcile_settlement(
        session,
        host_code="HOSTA",
        month="2026-11",
        invoice=invoice,
        out_dir=out,
        actor=ACTOR,
        now=NOV,
    )
    assert first.reconciliation is not None
    assert [r.service for r in first.reconciliation.discrepancies] == ["sms"]
    report = (out / "reconciliation_HOSTA_2026-11.csv").read_text()
    assert ",discrepancy" in report.splitlines()[3]
    dispute = session.exec(select(SettlementDispute)).one()
    assert (dispute.service, dispute.invoice_quantity - dispute.our_quantity) == ("sms", 100)
    assert dispute.status == "open"
    second = reconcile_settlement(
        session,
        host_code="HOSTA",
        month="2026-11",
        invoice=invoice,
        out_dir=out,
        actor=ACTOR,
        now=NOV,
    )
    disputes = session.exec(select(SettlementDispute).order_by(col(SettlementDispute.id))).all()
    assert [(d.run_id, d.status) for d in disputes] == [
        (first.run_id, "resolved"),
        (second.run_id, "open"),
    ]


def test_settlement_refuses_a_bad_month(session: Session, world: World) -> None:
    from app.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        compute_settlement(session, host=world.host, month="2026-13")


def test_a_renewed_line_counts_once(session: Session, world: World) -> None:
    s = subject(session, world, start=datetime(2026, 10, 20, tzinfo=UTC))
    open_period(session, line=s.line, plan=s.plan, start=s.period.end, now=s.period.end)
    settlement = compute_settlement(session, host=world.host, month="2026-11")
    assert {r.service: r.quantity for r in settlement.rows}["line"] == 1


def _quarter_hours(session: Session) -> list[tuple[int, str, int, int, int]]:
    return sorted(
        (r.host_id, r.service, r.bucket, r.quantity, r.records)
        for r in session.exec(select(UsageQuarterHour)).all()
    )


@pytest.mark.parametrize("seed", [4, 5])
def test_the_quarter_hour_sums_kept_by_imports_equal_the_records(
    session: Session, world: World, tmp_path: Path, seed: int
) -> None:
    subjects = [subject(session, world, start=NOV) for _ in range(3)]
    rows = _records(seed, [s.msisdn for s in subjects])
    half = len(rows) // 2
    # two imports, the second repeating part of the first: duplicates add nothing
    import_rows(session, tmp_path, rows[:half], now=NOV + timedelta(days=31))
    import_rows(session, tmp_path, rows[half // 2 :], now=NOV + timedelta(days=31))
    kept = _quarter_hours(session)
    assert sum(r[4] for r in kept) == len({r[0] for r in rows})
    start, end = month_bounds("2026-11", world.host.timezone)
    from_records = usage_by_day(session, host=world.host, start=start, end=end)
    assert usage_by_day(session, host=world.host, start=start, end=end, summed=True) == (
        from_records
    )
    assert sum(u.quantity for u in from_records) > 0
    rebuild_quarter_hours(session)
    assert _quarter_hours(session) == kept


def test_a_line_with_a_gap_counts_only_in_the_months_of_its_periods(
    session: Session, world: World
) -> None:
    # Both lapse after September (Shanghai); one is renewed in November, one in December.
    september = datetime(2026, 9, 1, tzinfo=ZONE)
    back = subject(session, world, start=september)
    open_period(session, line=back.line, plan=back.plan, start=NOV + timedelta(days=9), now=NOV)
    later = subject(session, world, start=september)
    december = datetime(2026, 12, 5, tzinfo=UTC)
    open_period(session, line=later.line, plan=later.plan, start=december, now=NOV)
    assert back.line.period_gap_at is not None and later.line.period_gap_at == december
    months = {
        month: {
            r.service: r.quantity
            for r in compute_settlement(session, host=world.host, month=month).rows
        }["line"]
        for month in ("2026-09", "2026-10", "2026-11", "2026-12")
    }
    assert months == {"2026-09": 2, "2026-10": 0, "2026-11": 1, "2026-12": 2}
