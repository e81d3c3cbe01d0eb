"""Events the line lifecycle announces to the floors above it (app/core/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LineActivated:
    """A line became active for the first time and has no period yet.

    Charging opens its first period from `now`, paid by `entry_id` (the
    journal entry of the order that bought it) when there is one; the
    handler's result is what the activation's audit record reports.
    """

    line_id: int
    now: datetime
    entry_id: int | None
