"""A reseller about to leave the market, through the real services.

HOSTA with two active lines of one customer, who holds 50.00 prepaid: one
line's period runs 20 days past the exit instant (26.00 of unused plan
value), the other's ended long before. Shared by the console and API tests
of the market exit, which move the clock with `ExitClock`.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from app.subscribers.models import Line
from tests.factories import NOW
from tests.integration.usage_world import line_on
from tests.unit.charging.helpers import fund
from tests.unit.subscribers.helpers import FIRST, World, make_world

# 2027-02-15 00:00 in Asia/Shanghai: 106 days after NOW, past the default 90 days' notice.
EXIT_DATE = date(2027, 2, 15)
EXIT_AT = datetime(2027, 2, 14, 16, 0, tzinfo=UTC)
# With 90 days' notice from NOW (1 Nov 2026 16:00 local), the first date allowed.
EARLIEST = "2027-01-31"
BALANCE_MINOR = 5000
# LITE30 (39.00 for 30 days) with 20 of its days after the exit instant.
UNUSED_MINOR = 2600
CURRENT_MSISDN = f"+{FIRST + 160}"
OLD_MSISDN = f"+{FIRST + 161}"


@dataclasses.dataclass
class ExitWorld:
    world: World
    current: Line
    old: Line


def exit_world(session: Session) -> ExitWorld:
    world = make_world(session)
    current = line_on(session, world, CURRENT_MSISDN, start=EXIT_AT - timedelta(days=10))
    old = line_on(session, world, OLD_MSISDN)
    fund(session, world, BALANCE_MINOR)
    return ExitWorld(world, current, old)


class ExitClock:
    """The web layer's clock for the exit's views: NOW until a test moves it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def install_clock(monkeypatch: pytest.MonkeyPatch) -> ExitClock:
    """Point the exit's console and API views at one clock the test controls."""
    import app.web.api.exit as api
    import app.web.console.exit as console

    clock = ExitClock()
    for module in (api, console):
        monkeypatch.setattr(module, "utcnow", clock)
    return clock


def exit_files(app: Any) -> Any:
    """The folder the exit's files are written into."""
    from app.exit.workflow import exit_folder

    return exit_folder(app.extensions["mvno.settings"])


def empty_folder(app: Any) -> None:
    """Remove the exit files earlier tests left in the (session-wide) instance folder."""
    import shutil

    shutil.rmtree(exit_files(app), ignore_errors=True)
