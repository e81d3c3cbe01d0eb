"""JSON API of the fraud rules and alerts (app/analytics/fraud.py).

`fraud.view` lists alerts and the rules' settings; `fraud.manage`
acknowledges or dismisses an alert, suspends its line or opens its ticket;
`fraud.rules` sets a rule's switches and thresholds.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.analytics import fraud_alerts as alerts
from app.analytics import fraud_rules as rules
from app.analytics.errors import RuleNotFound
from app.analytics.models import RULES, FraudAlert
from app.care.models import Ticket
from app.core.clock import utcnow
from app.core.errors import N_
from app.subscribers.models import Customer, Line
from app.web.api import bp
from app.web.api.common import page_args, page_out
from app.web.api.fraud_schemas import AlertOut, AlertPage, AlertQuery, RuleIn, RuleList, RuleOut
from app.web.api.security import requires
from app.web.context import current_actor, db_session, settings
from app.web.fraud_tickets import open_alert_ticket

ALERT_DOC = {404: "No such alert", 409: "The alert's status does not allow it"}


def alert_out(alert: FraudAlert) -> dict[str, Any]:
    """An alert as `AlertOut` answers it."""
    session = db_session()
    line = session.get(Line, alert.line_id) if alert.line_id else None
    customer = session.get(Customer, alert.customer_id)
    ticket = session.get(Ticket, alert.ticket_id) if alert.ticket_id else None
    return {
        **{name: getattr(alert, name) for name in ("id", "rule", "subject", "line_id", "day")},
        **{name: getattr(alert, name) for name in ("figures", "status", "suspended_at")},
        "msisdn": line.msisdn if line else None,
        "customer_ref": customer.ref if customer else "",
        "ticket_ref": ticket.ref if ticket else None,
        "created_at": alert.created_at,
        "status_changed_at": alert.status_changed_at,
        "status_changed_by": alert.status_changed_by,
    }


@bp.get("/fraud-alerts")
@requires("fraud.view")
@bp.input(AlertQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(AlertPage)
def fraud_alert_list(query: dict[str, Any]) -> Any:
    """Fraud alerts, newest first, by status and rule."""
    found, total = alerts.list_alerts(
        db_session(), status=query.get("status"), rule=query.get("rule"), **page_args(query)
    )
    return page_out([alert_out(a) for a in found], total, query)


@bp.get("/fraud-alerts/<int:alert_id>")
@requires("fraud.view")
@bp.output(AlertOut)
@bp.doc(responses={404: "No such alert"})
def fraud_alert_get(alert_id: int) -> Any:
    """One alert with its figures."""
    return alert_out(alerts.get_alert(db_session(), alert_id))


def _set_status(alert_id: int, status: str) -> Any:
    alert = alerts.set_alert_status(
        db_session(), alert_id=alert_id, status=status, actor=current_actor(), now=utcnow()
    )
    return alert_out(alert)


@bp.post("/fraud-alerts/<int:alert_id>/acknowledge")
@requires("fraud.manage")
@bp.output(AlertOut)
@bp.doc(responses=ALERT_DOC)
def fraud_alert_acknowledge(alert_id: int) -> Any:
    """Acknowledge an open alert (it is real and being handled)."""
    return _set_status(alert_id, "acknowledged")


@bp.post("/fraud-alerts/<int:alert_id>/dismiss")
@requires("fraud.manage")
@bp.output(AlertOut)
@bp.doc(responses=ALERT_DOC)
def fraud_alert_dismiss(alert_id: int) -> Any:
    """Dismiss an open alert (a false alarm)."""
    return _set_status(alert_id, "dismissed")


@bp.post("/fraud-alerts/<int:alert_id>/suspend")
@requires("fraud.manage")
@bp.output(AlertOut)
@bp.doc(responses=ALERT_DOC)
def fraud_alert_suspend(alert_id: int) -> Any:
    """Suspend the alert's line (audited on the line and the alert)."""
    alert = alerts.suspend_alert_line(
        db_session(), alert_id=alert_id, actor=current_actor(), now=utcnow()
    )
    return alert_out(alert)


@bp.post("/fraud-alerts/<int:alert_id>/ticket")
@requires("fraud.manage")
@bp.output(AlertOut, status_code=201)
@bp.doc(responses={404: "No such alert", 409: "The alert has a ticket already"})
def fraud_alert_ticket(alert_id: int) -> Any:
    """Open a high-priority ticket for the alert's customer and line."""
    alert, _ticket = open_alert_ticket(
        db_session(),
        alert_id=alert_id,
        actor=current_actor(),
        now=utcnow(),
        timezone=settings().timezone,
    )
    return alert_out(alert)


@bp.get("/fraud-rules")
@requires("fraud.view")
@bp.output(RuleList)
def fraud_rule_list() -> Any:
    """Every rule: whether it runs, whether it suspends, and its thresholds."""
    return {"items": [r.as_dict() for r in rules.list_rule_settings(db_session())]}


@bp.put("/fraud-rules/<rule>")
@requires("fraud.rules")
@bp.input(RuleIn, arg_name="data")
@bp.output(RuleOut)
@bp.doc(responses={404: "No such rule"})
def fraud_rule_put(rule: str, data: dict[str, Any]) -> Any:
    """Set a rule's switches and every one of its thresholds; audited."""
    if rule not in RULES:
        raise RuleNotFound(N_("There is nothing at this address."))
    settings_ = rules.update_rule_settings(
        db_session(), rule=rule, actor=current_actor(), now=utcnow(), **data
    )
    return settings_.as_dict()
