"""Times on pages: one compact form in the viewer's time zone, kept on one line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from app.web.formatting import time_tag

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_time_is_shown_compactly_in_the_viewers_zone_with_its_instant() -> None:
    tag = time_tag(datetime(2026, 10, 2, 0, 15, tzinfo=UTC), SHANGHAI)
    assert str(tag) == '<time datetime="2026-10-02T00:15:00Z">2026-10-02 08:15</time>'


def test_a_naive_time_is_read_as_utc() -> None:
    assert "2026-10-02 08:15" in time_tag(datetime(2026, 10, 2, 0, 15), SHANGHAI)


def test_the_day_changes_with_the_zone() -> None:
    assert ">2026-10-01 00:00<" in time_tag(datetime(2026, 9, 30, 16, 0, tzinfo=UTC), SHANGHAI)


def test_a_date_and_nothing() -> None:
    assert str(time_tag(date(2026, 1, 1), SHANGHAI)) == (
        '<time datetime="2026-01-01">2026-01-01</time>'
    )
    assert str(time_tag(None, SHANGHAI)) == "—"
