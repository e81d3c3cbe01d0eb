"""Working fraud alerts: the list, acknowledging or dismissing, suspending the line,
and recording the ticket opened for one.

An alert is `open` until staff acknowledge it (it is real and being handled)
or dismiss it (a false alarm); either is final, and asking for the status it
has already changes nothing. Suspending goes through the line's lifecycle
(`suspend_line`, which audits the line's change) and is recorded on the
alert; a line that is no longer active or suspended cannot be. The ticket
is opened by customer service (app/care, same floor: the web entry point
opens it and hands its id here); an alert has at most one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from app.analytics.errors import AlertNotFound, AlertStateError
from app.analytics.models import FraudAlert
from app.core.audit import Actor, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_
from app.subscribers.errors import LineStateError
from app.subscribers.lifecycle import suspend_line
from app.subscribers.models import Line

FINAL_STATUSES = ("acknowledged", "dismissed")


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    rule: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[FraudAlert], int]:
    """Alerts newest first, filtered by status and rule; and how many match. Reads only."""
    conditions: list[Any] = []
    if status:
        conditions.append(FraudAlert.status == status)
    if rule:
        conditions.append(FraudAlert.rule == rule)
    total = session.exec(select(func.count()).select_from(FraudAlert).where(*conditions)).one()
    alerts = session.exec(
        select(FraudAlert)
        .where(*conditions)
        .order_by(col(FraudAlert.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(alerts), int(total)


def count_open_alerts(session: Session) -> dict[str, int]:
    """Open alerts per rule; reads only."""
    rows = session.exec(
        select(FraudAlert.rule, func.count())
        .where(FraudAlert.status == "open")
        .group_by(col(FraudAlert.rule))
    ).all()
    return {rule: int(n) for rule, n in rows}


def get_alert(session: Session, alert_id: int) -> FraudAlert:
    """The alert. :raises AlertNotFound: no such alert."""
    alert = session.get(FraudAlert, alert_id)
    if alert is None:
        raise AlertNotFound(N_("No fraud alert %(id)s."), id=alert_id)
    return alert


def _locked(session: Session, alert_id: int) -> FraudAlert:
    alert = lock_by_id(session, FraudAlert, alert_id)
    if alert is None:
        raise AlertNotFound(N_("No fraud alert %(id)s."), id=alert_id)
    return alert


def set_alert_status(
    session: Session, *, alert_id: int, status: str, actor: Actor, now: datetime
) -> FraudAlert:
    """Acknowledge or dismiss an open alert; audited. Locks it.

    Idempotent: the status it has already is no change.
    :raises AlertNotFound: no such alert.
    :raises AlertStateError: it was acknowledged or dismissed the other way.
    """
    assert status in FINAL_STATUSES
    alert = _locked(session, alert_id)
    if alert.status == status:
        return alert
    if alert.status != "open":
        raise AlertStateError(N_("This alert is no longer open."))
    before = alert.status
    alert.status = status
    alert.status_changed_at = now
    alert.status_changed_by = actor.label[:200]
    session.add(alert)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action=f"fraud_alert.{'acknowledge' if status == 'acknowledged' else 'dismiss'}",
        now=now,
        target_type="fraud_alert",
        target_id=alert_id,
        details={"from": before, "to": status},
    )
    return alert


def suspend_for_alert(session: Session, *, alert: FraudAlert, actor: Actor, now: datetime) -> bool:
    """Suspend the alert's line if it is active (the scan's automatic suspension).

    True when this suspended it; a line not active is left as it is.
    """
    if alert.line_id is None:
        return False
    line = session.get(Line, alert.line_id)
    if line is None or line.status != "active":
        return False
    _suspend(session, alert, actor=actor, now=now)
    return True


def _suspend(session: Session, alert: FraudAlert, *, actor: Actor, now: datetime) -> None:
    assert alert.line_id is not None and alert.id is not None
    suspend_line(
        session,
        line_id=alert.line_id,
        reason=f"fraud alert {alert.id} ({alert.rule})",
        actor=actor,
        now=now,
    )
    alert.suspended_at = now
    session.add(alert)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="fraud_alert.suspend_line",
        now=now,
        target_type="fraud_alert",
        target_id=alert.id,
        details={"line_id": alert.line_id},
    )


def suspend_alert_line(
    session: Session, *, alert_id: int, actor: Actor, now: datetime
) -> FraudAlert:
    """Suspend the line an alert names; audited on the alert and the line. Locks both.

    Idempotent: a line already suspended stays so (and is recorded).
    :raises AlertNotFound: no such alert.
    :raises AlertStateError: the alert names no line, or its line is not
        active or suspended.
    """
    alert = _locked(session, alert_id)
    if alert.line_id is None:
        raise AlertStateError(N_("This alert names a customer, not a line."))
    if alert.suspended_at is not None:
        return alert
    try:
        _suspend(session, alert, actor=actor, now=now)
    except LineStateError:
        raise AlertStateError(N_("The line is not active: it cannot be suspended.")) from None
    return alert


def attach_ticket(
    session: Session, *, alert_id: int, ticket_id: int, actor: Actor, now: datetime
) -> FraudAlert:
    """Record the ticket opened for an alert; audited. Locks it.

    :raises AlertNotFound: no such alert.
    :raises AlertStateError: it has a ticket already.
    """
    alert = _locked(session, alert_id)
    if alert.ticket_id is not None:
        raise AlertStateError(N_("This alert has a ticket already."))
    alert.ticket_id = ticket_id
    session.add(alert)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="fraud_alert.ticket",
        now=now,
        target_type="fraud_alert",
        target_id=alert_id,
        details={"ticket_id": ticket_id},
    )
    return alert
