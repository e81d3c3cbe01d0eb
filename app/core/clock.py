"""Time: stored in UTC, passed in as `now`, parsed strictly.

Services never read the clock; the boundary (request, command, job) reads
it once with `utcnow()` or takes `--now` and passes it down.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.core.errors import N_, InvalidInput


def utcnow() -> datetime:
    """The current time in UTC; read only at the entry points and passed down as `now`."""
    return datetime.now(UTC)


def parse_instant(text: str, *, field: str = "now") -> datetime:
    """Parse an ISO 8601 time that carries its offset, returned in UTC.

    A time without an offset is refused: guessing a zone is how months
    end up an hour off.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            N_("%(name)s: %(text)r is not an ISO 8601 time such as 2026-10-01T00:00:00+08:00"),
            field=field,
            name=field,
            text=text,
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            N_("%(name)s: %(text)r has no UTC offset (add +08:00 or Z)"),
            field=field,
            name=field,
            text=text,
        )
    return value.astimezone(UTC)
