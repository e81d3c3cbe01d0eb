"""Properties of mediation and rating on random files (hypothesis).

* every row is charged, a duplicate or a reject: charged + duplicates + rejected = rows;
* a file split in two imports at a point in time charges exactly what one import does;
* split anywhere, the allowance used and the overage quantity per period are the same
  (only the ceiling of each record's charge may fall on other records).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from app.ledger.balances import customer_balance
from app.usage.models import UsageRecord
from tests.unit.subscribers.helpers import make_world
from tests.unit.usage.helpers import T0, import_rows, period_of, subject

SERVICES = ("data", "voice", "sms")
QUANTITY = {"data": st.integers(0, 400_000), "voice": st.integers(0, 200), "sms": st.integers(0, 3)}


@st.composite
def usage_rows(draw: Any) -> list[tuple[Any, ...]]:
    """Records of three lines over a month, with some bad rows and repeated ids."""
    rows: list[tuple[Any, ...]] = []
    for n in range(draw(st.integers(1, 20))):
        service = draw(st.sampled_from(SERVICES))
        line = draw(st.integers(0, 2))
        minute = draw(st.integers(-60, 31 * 1440))  # a few before the period, a few after
        quantity: Any = draw(QUANTITY[service])
        kind = draw(st.sampled_from(("ok",) * 8 + ("bad_service", "bad_quantity", "repeat")))
        record_id = f"R{n:03d}"
        if kind == "bad_service":
            service = "fax"
        elif kind == "bad_quantity":
            quantity = -1
        elif kind == "repeat" and rows:
            record_id = rows[draw(st.integers(0, len(rows) - 1))][0]
        rows.append((record_id, line, service, T0 + timedelta(minutes=minute), quantity))
    return rows


def _run(
    session: Session, folder: Path, parts: list[list[tuple[Any, ...]]]
) -> tuple[list[Any], dict[str, Any]]:
    """Import the parts in order on a fresh world, inside a savepoint rolled back after."""
    nested = session.begin_nested()
    try:
        world = make_world(session, code="HOSTP")
        subjects = [subject(session, world, balance=500) for _ in range(3)]
        results = []
        for part in parts:
            if not part:
                continue  # an empty file is refused as a whole, not imported
            rows = [(r, subjects[line].msisdn, s, t, q) for r, line, s, t, q in part]
            results.append(import_rows(session, folder, rows, host="HOSTP"))
        records = {
            r.record_id: (r.billable, r.within, r.over, r.charge_minor)
            for r in session.exec(select(UsageRecord)).all()
        }
        used = [
            (p.data_kb_used, p.voice_s_used, p.sms_used)
            for p in (period_of(session, x.period.id or 0) for x in subjects)
        ]
        over: dict[tuple[str, str], int] = defaultdict(int)
        for r in session.exec(select(UsageRecord)).all():
            over[(str(r.line_id - (subjects[0].line.id or 0)), r.service)] += r.over
        state = {
            "records": records,
            "used": used,
            "over": dict(over),
            "balance": customer_balance(session, customer_id=world.customer.id or 0),
        }
        return results, state
    finally:
        nested.rollback()


SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(rows=usage_rows())
def test_every_row_is_counted_once(session: Session, tmp_path: Path, rows: list[Any]) -> None:
    (result,), _ = _run(session, tmp_path, [rows])
    assert result.charged + result.duplicates + result.rejected == result.rows == len(rows)


@SETTINGS
@given(rows=usage_rows(), cut=st.integers(0, 20))
def test_split_in_time_charges_as_one_import(
    session: Session, tmp_path: Path, rows: list[Any], cut: int
) -> None:
    ordered = sorted(rows, key=lambda r: (r[3], r[0]))
    _, whole = _run(session, tmp_path, [ordered])
    results, split = _run(session, tmp_path, [ordered[:cut], ordered[cut:]])
    assert split == whole
    assert sum(r.rows for r in results) == len(rows)


@SETTINGS
@given(rows=usage_rows(), cut=st.integers(0, 20))
def test_split_anywhere_uses_the_same_allowance(
    session: Session, tmp_path: Path, rows: list[Any], cut: int
) -> None:
    _, whole = _run(session, tmp_path, [rows])
    _, split = _run(session, tmp_path, [rows[:cut], rows[cut:]])
    assert split["used"] == whole["used"]
    assert split["over"] == whole["over"]
    assert set(split["records"]) == set(whole["records"])
