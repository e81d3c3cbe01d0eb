"""What charging does when something happens below it (app/core/events.py).

Handlers run in the announcing transaction, before its commit: a refusal
here rolls the credit or the activation back with it, and a change rolled
back leaves no follow-up behind.
"""

from __future__ import annotations

from sqlmodel import Session

from app.charging.arrears import resume_cleared_lines
from app.charging.periods import open_period
from app.charging.unpaid_lines import renew_suspended_lines
from app.core.events import on
from app.ledger.events import CustomerCredited
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


@on(CustomerCredited)
def renew_lines_after_credit(session: Session, event: CustomerCredited) -> None:
    """Clear arrears first, then renew and resume lines suspended for an unpaid renewal.

    Lines suspended for arrears resume once the balance is back at zero or
    above (app/charging/arrears.py). Locks the customer's prepaid account, then those lines (see
    `renew_suspended_lines`); a second delivery of the same credit finds
    them active and does nothing.
    """
    resume_cleared_lines(session, customer_id=event.customer_id, actor=event.actor, now=event.now)
    renew_suspended_lines(session, customer_id=event.customer_id, actor=event.actor, now=event.now)
