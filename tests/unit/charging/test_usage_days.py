"""The daily usage rollup rating writes (app/charging/usage_days.py), on both databases."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.charging.models import LineUsageDay
from app.charging.usage_days import busy_usage_days, early_usage, first_usage_days
from tests.unit.subscribers.helpers import World, make_world
from tests.unit.usage.helpers import T0, import_rows, subject

FOREIGN = "+8613800138000"


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def days(session: Session, line_id: int) -> dict[date, LineUsageDay]:
    session.expire_all()
    rows = session.exec(select(LineUsageDay).where(LineUsageDay.line_id == line_id)).all()
    return {row.day: row for row in rows}


def test_usage_is_summed_per_local_day_of_the_host(session, world, tmp_path: Path):
    line = subject(session, world).line
    # 16:30 UTC on 2 October is 00:30 on 3 October in Shanghai (the host's zone).
    late = datetime(2026, 10, 2, 16, 30, tzinfo=T0.tzinfo)
    import_rows(
        session,
        tmp_path,
        [
            ("D1", line.msisdn, "data", T0 + timedelta(days=1, hours=2), 1025),
            ("D2", line.msisdn, "data", T0 + timedelta(days=1, hours=3), 1024),
            ("V1", line.msisdn, "voice", T0 + timedelta(days=1, hours=4), 61, FOREIGN),
            ("S1", line.msisdn, "sms", T0 + timedelta(days=1, hours=5), 2),
            ("V2", line.msisdn, "voice", late, 30, FOREIGN),
        ],
    )
    rows = days(session, line.id)
    assert set(rows) == {date(2026, 10, 2), date(2026, 10, 3)}
    first = rows[date(2026, 10, 2)]
    # Data in billable KB (ceil per record), voice in reported seconds.
    assert (first.data_kb, first.voice_s, first.sms, first.voice_calls) == (3, 61, 2, 1)
    second = rows[date(2026, 10, 3)]
    assert (second.data_kb, second.voice_s, second.voice_calls) == (0, 30, 1)
    assert first.incoming_calls == second.incoming_calls == 0


def test_a_later_import_adds_to_the_same_day(session, world, tmp_path: Path):
    line = subject(session, world).line
    when = T0 + timedelta(days=5, hours=2)
    import_rows(session, tmp_path, [("A", line.msisdn, "data", when, 2048)])
    import_rows(session, tmp_path, [("B", line.msisdn, "data", when, 1024)])
    # A duplicate is never rated, so it adds nothing.
    import_rows(session, tmp_path, [("A", line.msisdn, "data", when, 2048)])
    assert days(session, line.id)[date(2026, 10, 6)].data_kb == 3


def test_calls_to_our_lines_count_as_their_incoming_calls(session, world, tmp_path: Path):
    caller = subject(session, world).line
    callee = subject(session, world).line
    when = T0 + timedelta(days=2, hours=3)
    import_rows(
        session,
        tmp_path,
        [
            ("C1", caller.msisdn, "voice", when, 60, callee.msisdn),
            ("C2", caller.msisdn, "voice", when + timedelta(minutes=5), 60, callee.msisdn),
            ("C3", caller.msisdn, "voice", when + timedelta(minutes=9), 60, FOREIGN),
        ],
    )
    called = days(session, callee.id)[date(2026, 10, 3)]
    assert (called.incoming_calls, called.voice_calls, called.voice_s) == (2, 0, 0)
    assert days(session, caller.id)[date(2026, 10, 3)].voice_calls == 3
    assert days(session, caller.id)[date(2026, 10, 3)].incoming_calls == 0


def test_usage_within_24_hours_of_activation_is_early(session, world, tmp_path: Path):
    line = subject(session, world).line  # first period from T0
    import_rows(
        session,
        tmp_path,
        [
            ("E1", line.msisdn, "data", T0 + timedelta(hours=23, minutes=59), 10 * 1024),
            ("E2", line.msisdn, "voice", T0 + timedelta(hours=1), 100, FOREIGN),
            ("L1", line.msisdn, "data", T0 + timedelta(hours=24), 5 * 1024),
        ],
    )
    assert early_usage(session, since=date(2026, 9, 30)) == [(line.id, date(2026, 10, 1), 10, 100)]
    assert sum(row.data_kb for row in days(session, line.id).values()) == 15


def test_readers_pick_busy_days_and_first_days(session, world, tmp_path: Path):
    quiet = subject(session, world).line
    busy = subject(session, world).line
    import_rows(
        session,
        tmp_path,
        [
            ("Q", quiet.msisdn, "data", T0 + timedelta(days=3), 1024),
            ("B", busy.msisdn, "data", T0 + timedelta(days=4), 100 * 1024),
        ],
    )
    found = busy_usage_days(
        session, first=date(2026, 10, 1), last=date(2026, 10, 31), min_data_kb=100
    )
    assert [row.line_id for row in found] == [busy.id]
    assert busy_usage_days(session, first=date(2026, 10, 1), last=date(2026, 10, 31)) == []
    assert first_usage_days(session, line_ids=[quiet.id, busy.id]) == {
        quiet.id: date(2026, 10, 4),
        busy.id: date(2026, 10, 5),
    }
