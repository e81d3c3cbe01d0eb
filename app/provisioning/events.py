"""Events provisioning announces to the floors above it (app/core/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ActivationDelivered:
    """The host acknowledged a line's `activate` event (the line may still be pending)."""

    line_id: int
    event_id: int
    now: datetime
