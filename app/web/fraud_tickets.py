"""Opening a ticket for a fraud alert: the one place analytics and care meet.

app/analytics (the alert) and app/care (the ticket) share floor 6 and never
import each other, so this entry-point helper — used by the console and the
API — reads the alert, has care open the ticket with plain values
(`open_fraud_ticket`, source `fraud:<id>`) and records its id on the alert,
all in the request's one transaction: a refusal anywhere rolls back both.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.analytics.errors import AlertStateError
from app.analytics.fraud_alerts import attach_ticket, get_alert
from app.analytics.models import FraudAlert
from app.care.models import Ticket
from app.care.system_tickets import open_fraud_ticket
from app.core.audit import Actor
from app.core.errors import N_


def open_alert_ticket(
    session: Session, *, alert_id: int, actor: Actor, now: datetime, timezone: str
) -> tuple[FraudAlert, Ticket]:
    """Open the alert's ticket and record it on the alert.

    :raises AlertNotFound: no such alert.
    :raises AlertStateError: the alert has a ticket already.
    """
    alert = get_alert(session, alert_id)
    if alert.ticket_id is not None:
        raise AlertStateError(N_("This alert has a ticket already."))
    summary = "; ".join(f"{key}: {value}" for key, value in sorted(alert.figures.items()))
    ticket = open_fraud_ticket(
        session,
        alert_id=alert_id,
        rule=alert.rule,
        summary=f"Day {alert.day.isoformat()}; {summary}",
        customer_id=alert.customer_id,
        line_id=alert.line_id,
        actor=actor,
        now=now,
        timezone=timezone,
    )
    assert ticket.id is not None
    alert = attach_ticket(session, alert_id=alert_id, ticket_id=ticket.id, actor=actor, now=now)
    return alert, ticket
