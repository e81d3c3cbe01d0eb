"""Charging refusals (DESIGN §9)."""

from __future__ import annotations

from app.core.errors import Conflict


class RenewalRefused(Conflict):
    """A manual renewal the line's state or the 24-month rule forbids."""

    code = "renewal_refused"
