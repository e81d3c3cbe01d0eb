"""The `mvno fraud` group: the fraud and anomaly rules (app/analytics/fraud.py)."""

from __future__ import annotations

from datetime import datetime

from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals, settings

fraud_cli = AppGroup("fraud", help="Fraud and anomaly rules and their alerts.")


@fraud_cli.command("scan")
@json_option
@now_option
@refusals
def fraud_scan(as_json: bool, now: datetime) -> None:
    """Run the enabled rules over recent days and raise their new alerts, once each."""
    from app.analytics.fraud import scan_fraud

    with database().transaction() as session:
        report = scan_fraud(session, now=now, timezone=settings().timezone).as_dict()
    raised = ", ".join(f"{rule} {n}" for rule, n in report["raised"].items())
    emit(
        report,
        as_json=as_json,
        text=f"{report['alerts']} alerts raised ({raised}), {report['suspended']} lines suspended",
    )
