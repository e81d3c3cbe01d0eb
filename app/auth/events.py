"""Events app/auth announces to the floors above it (app/core/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PasswordResetRequested:
    """A store login asked for a password reset and a single-use token was stored.

    The handler queues the e-mail with the link; `reset_url` holds the token in
    clear and lives only as long as this unit of work and the notice it writes.
    """

    account_id: int
    email: str
    locale: str
    reset_url: str
    expires_minutes: int
    now: datetime
