"""Retail rating of usage (DESIGN §9): allowances, splits, rounding, order, periods, ledger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from app.charging.addons import buy_addon
from app.charging.models import ArrearsSuspension
from app.charging.periods import open_period
from app.ledger.balances import customer_balance
from app.ledger.models import JournalEntry
from app.usage.models import UsageRecord, UsageReject
from plans.addons import upsert_addon
from tests.unit.subscribers.helpers import STAFF, World, make_world
from tests.unit.usage.helpers import T0, at, import_rows, period_of, small_plan, subject


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def record(session: Session, record_id: str) -> UsageRecord:
    return session.exec(select(UsageRecord).where(UsageRecord.record_id == record_id)).one()


def rated(session: Session, record_id: str) -> tuple[int, int, int, int]:
    """(billable, within, over, charge_minor) of a stored record."""
    r = record(session, record_id)
    return r.billable, r.within, r.over, r.charge_minor


# (service, quantities in start order, expected (billable, within, over, charge) of each)
# The small plan: 1024 KB, 120 s (60 s increment), 2 SMS; 5 fen/MB, 15 fen/min, 10 fen/SMS.
CASES = {
    "data exactly the allowance": ("data", [1_048_576], [(1024, 1024, 0, 0)]),
    "data one byte is one KB": ("data", [1], [(1, 1, 0, 0)]),
    "data 1025 bytes are two KB": ("data", [1025], [(2, 2, 0, 0)]),
    "data crossing the end is split": (
        "data",
        [614_400, 614_400],
        # 600 KB + 600 KB: the second takes 424 KB within, 176 KB over: ceil(176×5/1024) = 1
        [(600, 600, 0, 0), (600, 424, 176, 1)],
    ),
    "data overage rounds up per record": (
        "data",
        [1_048_576, 1024, 1024],
        # each 1 KB over costs ceil(5/1024) = 1 fen, per record
        [(1024, 1024, 0, 0), (1, 0, 1, 1), (1, 0, 1, 1)],
    ),
    "data overage of a whole MB": (
        "data",
        [1_048_576, 1_048_576],
        [(1024, 1024, 0, 0), (1024, 0, 1024, 5)],
    ),
    "voice rounds up to the increment": ("voice", [61], [(120, 120, 0, 0)]),
    "voice one second is one increment": ("voice", [1], [(60, 60, 0, 0)]),
    "voice crossing the end": (
        "voice",
        [90, 90],
        # 120 + 120 billable: the first uses all 120; the second is all over: ceil(120×15/60) = 30
        [(120, 120, 0, 0), (120, 0, 120, 30)],
    ),
    "voice split inside a call": (
        "voice",
        [60, 120],
        # 60 within, then 120 billable of which 60 within and 60 over: ceil(60×15/60) = 15
        [(60, 60, 0, 0), (120, 60, 60, 15)],
    ),
    "sms counts more than one": ("sms", [3], [(3, 2, 1, 10)]),
    "sms after the allowance": ("sms", [2, 1], [(2, 2, 0, 0), (1, 0, 1, 10)]),
    "zero quantity charges nothing": ("data", [0], [(0, 0, 0, 0)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rating_table(session: Session, world: World, tmp_path: Path, case: str) -> None:
    service, quantities, expected = CASES[case]
    s = subject(session, world, balance=10_000)
    rows = [(f"R{i}", s.msisdn, service, at(i), q) for i, q in enumerate(quantities)]
    result = import_rows(session, tmp_path, rows)
    assert (result.charged, result.rejected, result.duplicates) == (len(rows), 0, 0)
    assert [rated(session, f"R{i}") for i in range(len(rows))] == expected
    period = period_of(session, s.period.id or 0)
    used = {"data": period.data_kb_used, "voice": period.voice_s_used, "sms": period.sms_used}
    assert used[service] == sum(within for _, within, _, _ in expected)
    charges = sum(charge for *_, charge in expected)
    assert customer_balance(session, customer_id=world.customer.id or 0) == 10_000 - charges


@pytest.mark.parametrize(
    ("increment", "seconds", "billable"), [(1, 61, 61), (30, 61, 90), (60, 61, 120), (60, 60, 60)]
)
def test_voice_increments(
    session: Session, world: World, tmp_path: Path, increment: int, seconds: int, billable: int
) -> None:
    plan = small_plan(session, world, voice_min=10, voice_increment_s=increment)
    s = subject(session, world, plan=plan)
    import_rows(session, tmp_path, [("V1", s.msisdn, "voice", at(1), seconds)])
    assert rated(session, "V1") == (billable, billable, 0, 0)


def test_order_is_start_time_then_record_id(session: Session, world: World, tmp_path: Path) -> None:
    """The file's order does not matter; equal start times go by record id."""
    s = subject(session, world, balance=10_000)
    same = at(5)
    rows = [
        ("C", s.msisdn, "data", at(9), 102_400),  # 100 KB, last
        ("B", s.msisdn, "data", same, 102_400),  # 100 KB, second (B after A)
        ("A", s.msisdn, "data", same, 921_600),  # 900 KB, first
    ]
    import_rows(session, tmp_path, rows)
    assert rated(session, "A") == (900, 900, 0, 0)
    assert rated(session, "B") == (100, 100, 0, 0)
    assert rated(session, "C") == (100, 24, 76, 1)


def test_services_have_separate_allowances(session: Session, world: World, tmp_path: Path) -> None:
    s = subject(session, world, balance=10_000)
    rows = [
        ("D", s.msisdn, "data", at(1), 1_048_576),
        ("V", s.msisdn, "voice", at(2), 120),
        ("S", s.msisdn, "sms", at(3), 2),
    ]
    import_rows(session, tmp_path, rows)
    assert [rated(session, r)[2] for r in ("D", "V", "S")] == [0, 0, 0]


def test_late_record_uses_its_own_period_after_a_renewal(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world, balance=10_000)
    second_start = s.period.end
    second = open_period(session, line=s.line, plan=s.plan, start=second_start, now=second_start)
    import_rows(
        session, tmp_path, [("NEW", s.msisdn, "data", second_start + timedelta(hours=2), 1_048_576)]
    )
    # a record of the first period arrives after the renewal: the first period's allowance is whole
    late = import_rows(
        session,
        tmp_path,
        [("LATE", s.msisdn, "data", s.period.end - timedelta(minutes=1), 1_048_576)],
    )
    assert late.charged == 1
    assert record(session, "LATE").period_id == s.period.id
    assert record(session, "NEW").period_id == second.id
    assert rated(session, "LATE") == (1024, 1024, 0, 0)
    assert period_of(session, s.period.id or 0).data_kb_used == 1024
    assert period_of(session, second.id or 0).data_kb_used == 1024


def test_late_record_takes_what_is_left_not_the_current_allowance(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world, balance=10_000)
    import_rows(session, tmp_path, [("EARLY", s.msisdn, "data", at(1), 1_048_576)])
    open_period(session, line=s.line, plan=s.plan, start=s.period.end, now=s.period.end)
    import_rows(session, tmp_path, [("LATE", s.msisdn, "data", at(2), 1024)])
    assert rated(session, "LATE") == (1, 0, 1, 1)


def test_overlapping_periods_take_the_first_once(
    session: Session, world: World, tmp_path: Path
) -> None:
    """Periods of one number that overlap: a record inside both is rated once, by the first."""
    s = subject(session, world, balance=10_000)
    second = open_period(
        session, line=s.line, plan=s.plan, start=s.period.start + timedelta(days=10), now=T0
    )
    result = import_rows(
        session,
        tmp_path,
        [
            ("BOTH", s.msisdn, "sms", s.period.start + timedelta(days=12), 1),
            ("LATER", s.msisdn, "sms", s.period.end + timedelta(days=1), 1),
        ],
    )
    assert (result.charged, result.duplicates, result.rejected) == (2, 0, 0)
    assert record(session, "BOTH").period_id == s.period.id
    assert record(session, "LATER").period_id == second.id
    assert period_of(session, s.period.id or 0).sms_used == 1
    assert period_of(session, second.id or 0).sms_used == 1


def test_period_boundaries(session: Session, world: World, tmp_path: Path) -> None:
    """A record at the period's start belongs to it; one at its end does not (no next period)."""
    s = subject(session, world, balance=10_000)
    result = import_rows(
        session,
        tmp_path,
        [
            ("START", s.msisdn, "sms", s.period.start, 1),
            ("END", s.msisdn, "sms", s.period.end, 1),
            ("BEFORE", s.msisdn, "sms", s.period.start - timedelta(microseconds=1), 1),
        ],
    )
    assert (result.charged, result.rejected) == (1, 2)
    reasons = {r.record_id: r.reason for r in session.exec(select(UsageReject)).all()}
    assert reasons == {"END": "no_active_line", "BEFORE": "no_active_line"}


def test_addon_allowance_counts(session: Session, world: World, tmp_path: Path) -> None:
    s = subject(session, world, balance=10_000)
    addon = upsert_addon(
        session,
        code="DATA1M",
        names={"zh_Hans": "1MB 流量包", "en": "1 MB pack"},
        price_minor=100,
        data_mb=1,
        status="published",
        actor=STAFF,
        now=T0,
    )
    buy_addon(
        session,
        line_id=s.line.id or 0,
        addon_id=addon.id or 0,
        key="addon-1",
        actor=STAFF,
        now=at(0),
    )
    import_rows(session, tmp_path, [("D", s.msisdn, "data", at(3), 2 * 1_048_576)])
    assert rated(session, "D") == (2048, 2048, 0, 0)


def test_one_entry_per_line_per_import(session: Session, world: World, tmp_path: Path) -> None:
    s = subject(session, world, balance=10_000)
    other = subject(session, world)
    rows = [
        ("S1", s.msisdn, "sms", at(1), 3),
        ("S2", s.msisdn, "sms", at(2), 2),
        ("S3", other.msisdn, "sms", at(3), 4),
    ]
    result = import_rows(session, tmp_path, rows)
    entries = session.exec(
        select(JournalEntry).where(JournalEntry.kind == "charge.revenue_usage")
    ).all()
    keys = sorted(e.idempotency_key for e in entries)
    assert keys == sorted(f"usage:{result.file_id}:{line.id}" for line in (s.line, other.line))
    # line 1: 1 + 2 SMS over (30 fen); line 2: 2 over (20 fen); same customer
    assert result.charge_minor == 50
    assert customer_balance(session, customer_id=world.customer.id or 0) == 10_000 - 50


def test_overage_may_take_the_balance_below_zero_and_suspends(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world, balance=0)
    sibling = subject(session, world)
    import_rows(session, tmp_path, [("S", s.msisdn, "sms", at(1), 5)])
    customer_id = world.customer.id or 0
    assert customer_balance(session, customer_id=customer_id) == -30
    session.refresh(s.line)
    session.refresh(sibling.line)
    assert (s.line.status, sibling.line.status) == ("suspended", "suspended")
    suspensions = session.exec(
        select(ArrearsSuspension).order_by(col(ArrearsSuspension.line_id))
    ).all()
    assert [(x.line_id, x.balance_minor, x.resumed_at) for x in suspensions] == [
        (s.line.id, -30, None),
        (sibling.line.id, -30, None),
    ]


def test_usage_within_allowance_posts_nothing(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world)
    result = import_rows(session, tmp_path, [("S", s.msisdn, "sms", at(1), 2)])
    assert result.charge_minor == 0
    assert (
        session.exec(select(JournalEntry).where(JournalEntry.kind == "charge.revenue_usage")).all()
        == []
    )
    session.refresh(s.line)
    assert s.line.status == "active"
