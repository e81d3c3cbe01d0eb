"""Charging refusals (DESIGN §9)."""

from __future__ import annotations

from app.core.errors import Conflict


class RenewalRefused(Conflict):
    """A manual renewal the line's state or the 24-month rule forbids."""

    code = "renewal_refused"


class SalesClosed(Conflict):
    """A new sale after a market exit was announced (DESIGN §12)."""

    code = "sales_closed"
