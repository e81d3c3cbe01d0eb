"""What app/charging does when a floor below it announces an event (app/core/events.py)."""

from __future__ import annotations

from sqlmodel import Session

from app.charging.periods import open_period
from app.core.events import on
from app.subscribers.events import LineActivated
from app.subscribers.models import Line
from plans.models import Plan


@on(LineActivated)
def open_first_period(session: Session, event: LineActivated) -> None:
    """Open an activated line's first period from the activation, at its plan's price.

    The line is locked by the activation that announced the event; the
    period is already paid by `event.entry_id` when the line was bought.
    """
    line = session.get(Line, event.line_id)
    assert line is not None, f"activated line {event.line_id} is missing"
    plan = session.get(Plan, line.plan_id)
    assert plan is not None, f"line refers to missing plan {line.plan_id}"
    open_period(
        session,
        line=line,
        plan=plan,
        start=event.now,
        now=event.now,
        price_minor=plan.price_minor,
        entry_id=event.entry_id,
    )
