"""The market exit's horizon, as handed to charging from above (DESIGN §12).

Once a market exit is announced, nothing is sold or renewed past its exit
instant. Charging sits below `app/exit`, so it does not read the exit: the
exit registers a `HorizonPolicy` (`set_horizon_policy`) from its `handlers`
module, and charging — and the floors above it that sell — ask
`exit_horizon` for the instant.

* A renewal whose period would end after the instant opens a shortened
  period that ends at it and costs `round_half_up(price × length /
  (validity_days × 24 h))` (`renewal_terms_at`); a renewal starting at or
  after the instant is not made.
* New sales stop (`ensure_sales_open`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session

from app.charging.errors import SalesClosed
from app.charging.unused_value import unused_value_minor
from app.core.errors import N_
from app.core.events import load_handlers


@dataclass(frozen=True)
class Horizon:
    """An announced exit: its instant (UTC, 00:00 of the exit date in TIMEZONE) and its date."""

    instant: datetime
    exit_date: date


# Given a session: the announced exit's horizon, or None while no exit is announced.
HorizonPolicy = Callable[[Session], Horizon | None]

_policy: HorizonPolicy | None = None


def set_horizon_policy(policy: HorizonPolicy | None) -> HorizonPolicy | None:
    """Register the policy that names the exit instant; return the previous one."""
    global _policy
    previous, _policy = _policy, policy
    return previous


def announced_exit(session: Session) -> Horizon | None:
    """The announced market exit, or None when none is announced."""
    load_handlers()
    return _policy(session) if _policy is not None else None


def exit_horizon(session: Session) -> datetime | None:
    """The instant service ends at an announced market exit; None when none is announced."""
    found = announced_exit(session)
    return found.instant if found is not None else None


def renewal_terms_at(
    *,
    price_minor: int,
    validity_days: int,
    start: datetime,
    horizon: datetime | None,
) -> tuple[int, datetime] | None:
    """(price, end) of a period on a plan from `start`; None when `start` is at or past the horizon.

    A period that would run past the horizon ends at it, at the pro-rated
    price round_half_up(price × (horizon − start) / (validity_days × 24 h)).
    """
    end = start + timedelta(hours=24 * validity_days)
    if horizon is None or end <= horizon:
        return price_minor, end
    if start >= horizon:
        return None
    price = unused_value_minor(
        price_minor=price_minor, validity_days=validity_days, period_end=horizon, at=start
    )
    return price, horizon


def ensure_sales_open(session: Session) -> None:
    """Refuse a new sale once a market exit is announced.

    :raises SalesClosed: an exit is announced.
    """
    horizon = announced_exit(session)
    if horizon is not None:
        raise SalesClosed(
            N_(
                "We are leaving the market on %(date)s and no longer sell new lines."
                " Existing lines keep working until then."
            ),
            date=horizon.exit_date.isoformat(),
        )
