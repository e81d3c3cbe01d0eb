"""Console pages of the fraud rules: alerts by status and rule with their actions, and
the rules' settings (admins edit them).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.analytics import fraud_alerts as alerts
from app.analytics import fraud_rules as rules
from app.analytics.errors import RuleInvalid
from app.analytics.models import ALERT_STATUSES, LINE_RULES, RULE_PARAMS, RULES
from app.care.models import Ticket
from app.core.clock import utcnow
from app.core.errors import N_, DomainError
from app.subscribers.models import Customer, Line
from app.web import flash_refusal
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import PER_PAGE, page_number
from app.web.context import current_actor, db_session, settings
from app.web.forms import ActionForm
from app.web.fraud_tickets import open_alert_ticket


def _filters() -> tuple[str | None, str | None]:
    status = request.args.get("status") or None
    rule = request.args.get("rule") or None
    return (status if status in ALERT_STATUSES else None, rule if rule in RULES else None)


@bp.route("/fraud")
@staff_required("fraud.view")
def fraud_alerts() -> Any:
    status, rule = _filters()
    page = page_number()
    session = db_session()
    found, total = alerts.list_alerts(
        session, status=status, rule=rule, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    lines = {a.line_id: session.get(Line, a.line_id) for a in found if a.line_id}
    customers = {a.customer_id: session.get(Customer, a.customer_id) for a in found}
    tickets = {a.ticket_id: session.get(Ticket, a.ticket_id) for a in found if a.ticket_id}
    return render_template(
        "console/fraud_alerts.html",
        alerts=found,
        total=total,
        page=page,
        per_page=PER_PAGE,
        status=status,
        rule=rule,
        statuses=ALERT_STATUSES,
        rules=RULES,
        open_counts=alerts.count_open_alerts(session),
        lines=lines,
        customers=customers,
        tickets=tickets,
        action_form=ActionForm(),
    )


def _back() -> Any:
    return redirect(
        url_for(
            "console.fraud_alerts",
            status=request.form.get("status") or None,
            rule=request.form.get("rule") or None,
        )
    )


def _act(alert_id: int, action: Any, done: str) -> Any:
    try:
        action()
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(_(done, id=alert_id), "success")
    return _back()


@bp.route("/fraud/<int:alert_id>/acknowledge", methods=["POST"])
@staff_required("fraud.manage")
def fraud_alert_acknowledge(alert_id: int) -> Any:
    return _act(
        alert_id,
        lambda: alerts.set_alert_status(
            db_session(),
            alert_id=alert_id,
            status="acknowledged",
            actor=current_actor(),
            now=utcnow(),
        ),
        N_("Alert %(id)s acknowledged."),
    )


@bp.route("/fraud/<int:alert_id>/dismiss", methods=["POST"])
@staff_required("fraud.manage")
def fraud_alert_dismiss(alert_id: int) -> Any:
    return _act(
        alert_id,
        lambda: alerts.set_alert_status(
            db_session(), alert_id=alert_id, status="dismissed", actor=current_actor(), now=utcnow()
        ),
        N_("Alert %(id)s dismissed."),
    )


@bp.route("/fraud/<int:alert_id>/suspend", methods=["POST"])
@staff_required("fraud.manage")
def fraud_alert_suspend(alert_id: int) -> Any:
    return _act(
        alert_id,
        lambda: alerts.suspend_alert_line(
            db_session(), alert_id=alert_id, actor=current_actor(), now=utcnow()
        ),
        N_("The line of alert %(id)s is suspended."),
    )


@bp.route("/fraud/<int:alert_id>/ticket", methods=["POST"])
@staff_required("fraud.manage")
def fraud_alert_ticket(alert_id: int) -> Any:
    return _act(
        alert_id,
        lambda: open_alert_ticket(
            db_session(),
            alert_id=alert_id,
            actor=current_actor(),
            now=utcnow(),
            timezone=settings().timezone,
        ),
        N_("A ticket is open for alert %(id)s."),
    )


@bp.route("/fraud/rules")
@staff_required("fraud.view")
def fraud_rules() -> Any:
    return render_template(
        "console/fraud_rules.html",
        rules=rules.list_rule_settings(db_session()),
        specs=RULE_PARAMS,
        line_rules=LINE_RULES,
        action_form=ActionForm(),
    )


def _posted_params(rule: str) -> dict[str, int]:
    params: dict[str, int] = {}
    for name in RULE_PARAMS[rule]:
        text = (request.form.get(name) or "").strip()
        if not text.isdigit() or len(text) > 12:
            raise RuleInvalid(N_("Enter a whole number."), field=name)
        params[name] = int(text)
    return params


@bp.route("/fraud/rules/<rule>", methods=["POST"])
@staff_required("fraud.rules")
def fraud_rule_update(rule: str) -> Any:
    if rule not in RULES:
        flash(_("There is nothing at this address."), "error")
        return redirect(url_for("console.fraud_rules"))
    try:
        rules.update_rule_settings(
            db_session(),
            rule=rule,
            enabled=request.form.get("enabled") == "1",
            auto_suspend=request.form.get("auto_suspend") == "1",
            params=_posted_params(rule),
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(_("Settings of the rule saved."), "success")
    return redirect(url_for("console.fraud_rules", _anchor=rule))
