"""The policies app/exit hands to the floors below once an exit is announced (DESIGN §2, §12):
the ledger's prepayment cap (`cap.exit_caps`) and charging's horizon, past
which nothing is sold or renewed."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.charging.horizon import Horizon, set_horizon_policy
from app.exit.cap import exit_caps
from app.exit.models import MarketExit
from app.ledger.cap import set_cap_policy

# An exit in these states has closed sales: announced, then carried out.
_CLOSED = ("announced", "executed", "completed")


def exit_horizon_policy(session: Session) -> Horizon | None:
    """The announced (or executed) exit's instant and date; None when no exit is announced."""
    found = session.exec(
        select(col(MarketExit.exit_at), col(MarketExit.exit_date)).where(
            col(MarketExit.state).in_(_CLOSED)
        )
    ).first()
    return Horizon(instant=found[0], exit_date=found[1]) if found else None


set_horizon_policy(exit_horizon_policy)
set_cap_policy(exit_caps)
