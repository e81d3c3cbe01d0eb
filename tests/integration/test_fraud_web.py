"""Fraud alerts in the console and the API: the list, acknowledge, dismiss, suspend the
line, open a ticket, the rules' settings, and who may do what."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlmodel import Session, select

from app.analytics.models import FraudAlert, default_params
from app.care.models import Ticket
from app.core.audit import AuditEntry
from app.core.clock import utcnow
from app.subscribers.models import Line
from tests.conftest import csrf_token
from tests.factories import login_staff, make_api_key, make_staff
from tests.unit.subscribers.helpers import World, make_line, make_world


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HFRD")


def _alert(session: Session, world: World, rule: str = "sim_box") -> FraudAlert:
    line = make_line(session, world)
    alert = FraudAlert(
        rule=rule,
        subject=f"line:{line.id}",
        line_id=line.id,
        customer_id=world.customer.id,
        day=date(2026, 10, 20),
        figures={"voice_calls": 300, "incoming_calls": 0},
        created_at=utcnow(),
    )
    session.add(alert)
    session.commit()
    return alert


def _auth(session: Session, role: str) -> dict[str, str]:
    _key, token = make_api_key(session, role=role)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def _fresh(session: Session, alert: FraudAlert) -> FraudAlert:
    session.expire_all()
    found = session.get(FraudAlert, alert.id)
    assert found is not None
    return found


def _sign_in(client: Any, session: Session, role: str) -> str:
    make_staff(session, role=role, email=f"fraud-{role}@example.com")
    session.commit()
    login_staff(client, f"fraud-{role}@example.com")
    return csrf_token(client, "/console/fraud")


def test_care_works_an_alert_in_the_console(client, session, world):
    alert = _alert(session, world)
    token = _sign_in(client, session, "care")
    page = client.get("/console/fraud?status=open&rule=sim_box").get_data(as_text=True)
    assert f'data-alert="{alert.id}"' in page and "Suspend line" in page
    assert 'href="/console/fraud"' in client.get("/console/").get_data(as_text=True)
    for action in ("acknowledge", "suspend", "ticket"):
        response = client.post(f"/console/fraud/{alert.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 302, action
    alert = _fresh(session, alert)
    line = session.get(Line, alert.line_id)
    assert alert.status == "acknowledged" and alert.suspended_at is not None
    assert line is not None and line.status == "suspended"
    ticket = session.get(Ticket, alert.ticket_id)
    assert ticket is not None and ticket.source == f"fraud:{alert.id}"
    assert ticket.customer_id == world.customer.id and ticket.priority == "high"
    actions = set(session.exec(select(AuditEntry.action)).all())
    assert {"fraud_alert.acknowledge", "fraud_alert.suspend_line", "fraud_alert.ticket"} <= actions
    assert "line.suspend" in actions
    # A second ticket is refused with a message, and nothing changes.
    client.post(f"/console/fraud/{alert.id}/ticket", data={"csrf_token": token})
    assert len(session.exec(select(Ticket).where(Ticket.source == f"fraud:{alert.id}")).all()) == 1


def test_the_auditor_reads_and_changes_nothing(client, session, world):
    alert = _alert(session, world)
    token = _sign_in(client, session, "auditor")
    page = client.get("/console/fraud").get_data(as_text=True)
    assert f'data-alert="{alert.id}"' in page and "Acknowledge" not in page
    assert client.get("/console/fraud/rules").status_code == 200
    for action in ("acknowledge", "dismiss", "suspend", "ticket"):
        response = client.post(f"/console/fraud/{alert.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 403, action
    assert _fresh(session, alert).status == "open"


def test_only_admins_edit_the_rules_in_the_console(client, session):
    token = _sign_in(client, session, "care")
    form = {"csrf_token": token, "enabled": "1", "auto_suspend": "1", "min_calls": "50"}
    form["max_incoming_pct"] = "5"
    assert client.post("/console/fraud/rules/sim_box", data=form).status_code == 403


def test_an_admin_edits_a_rule_in_the_console(client, session):
    token = _sign_in(client, session, "admin")
    form = {"csrf_token": token, "enabled": "1", "auto_suspend": "1"}
    response = client.post(
        "/console/fraud/rules/sim_box", data={**form, "min_calls": "50", "max_incoming_pct": "5"}
    )
    assert response.status_code == 302
    page = client.get("/console/fraud/rules").get_data(as_text=True)
    assert 'name="min_calls" type="number" min="1" max="100000" value="50"' in page
    # A bad number is refused beside the rule and nothing is saved.
    client.post(
        "/console/fraud/rules/sim_box", data={**form, "min_calls": "x", "max_incoming_pct": "5"}
    )
    page = client.get("/console/fraud/rules").get_data(as_text=True)
    assert 'value="50"' in page


def test_the_api_lists_and_acts_on_alerts(client, session, world):
    alert = _alert(session, world)
    care = _auth(session, "care")
    listed = client.get("/api/v1/fraud-alerts?status=open", headers=care).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == alert.id
    assert listed["items"][0]["customer_ref"] == world.customer.ref
    got = client.get(f"/api/v1/fraud-alerts/{alert.id}", headers=care).get_json()
    assert got["figures"]["voice_calls"] == 300 and got["ticket_ref"] is None
    response = client.post(f"/api/v1/fraud-alerts/{alert.id}/dismiss", headers=care)
    assert response.status_code == 200 and response.get_json()["status"] == "dismissed"
    response = client.post(f"/api/v1/fraud-alerts/{alert.id}/acknowledge", headers=care)
    assert response.status_code == 409
    response = client.post(f"/api/v1/fraud-alerts/{alert.id}/suspend", headers=care)
    assert response.status_code == 200 and response.get_json()["suspended_at"]
    response = client.post(f"/api/v1/fraud-alerts/{alert.id}/ticket", headers=care)
    assert response.status_code == 201 and response.get_json()["ticket_ref"]
    assert client.post(f"/api/v1/fraud-alerts/{alert.id}/ticket", headers=care).status_code == 409
    assert client.get("/api/v1/fraud-alerts/999999", headers=care).status_code == 404


@pytest.mark.parametrize("role", ["auditor", "finance", "wholesale"])
def test_the_api_refuses_actions_to_roles_without_fraud_manage(client, session, world, role):
    alert = _alert(session, world)
    headers = _auth(session, role)
    response = client.post(f"/api/v1/fraud-alerts/{alert.id}/acknowledge", headers=headers)
    assert response.status_code == 403
    expected = 200 if role == "auditor" else 403
    assert client.get("/api/v1/fraud-alerts", headers=headers).status_code == expected


def test_the_api_reads_and_sets_the_rules(client, session):
    admin, care = _auth(session, "admin"), _auth(session, "care")
    items = client.get("/api/v1/fraud-rules", headers=care).get_json()["items"]
    assert [i["rule"] for i in items] == [
        "usage_spike",
        "sim_box",
        "new_line_burst",
        "voucher_failures",
    ]
    body = {"enabled": True, "auto_suspend": True, "params": default_params("usage_spike")}
    assert client.put("/api/v1/fraud-rules/usage_spike", json=body, headers=care).status_code == 403
    response = client.put("/api/v1/fraud-rules/usage_spike", json=body, headers=admin)
    assert response.status_code == 200 and response.get_json()["auto_suspend"] is True
    bad = {**body, "params": {**body["params"], "factor_pct": 100}}
    response = client.put("/api/v1/fraud-rules/usage_spike", json=bad, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "factor_pct"
    assert client.put("/api/v1/fraud-rules/nope", json=body, headers=admin).status_code == 404
