"""Console and API: line actions with reasons, the provisioning page and its retry, roles."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from app.provisioning.models import ProvisioningEvent
from app.subscribers.models import Line
from tests.conftest import csrf_token
from tests.factories import NOW, login_staff, make_api_key, make_staff
from tests.unit.subscribers.helpers import World, make_line, make_world


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="WEBH")


def _dead_event(session: Session, line: Line) -> ProvisioningEvent:
    assert line.id is not None
    event = ProvisioningEvent(
        line_id=line.id,
        host_id=_host_id(session),
        action="suspend",
        payload={"msisdn": line.msisdn},
        status="dead",
        attempts=8,
        next_attempt_at=NOW,
        last_error="HTTP 503",
        created_at=NOW,
    )
    session.add(event)
    session.commit()
    return event


def _host_id(session: Session) -> int:
    from wholesale.models import HostCarrier

    host = session.exec(select(HostCarrier).where(HostCarrier.code == "WEBH")).one()
    assert host.id is not None
    return host.id


def _status(session: Session, line: Line) -> str:
    session.expire_all()
    found = session.get(Line, line.id)
    assert found is not None
    return found.status


# -- console ----------------------------------------------------------------------------


def test_care_suspends_resumes_and_terminates_from_the_customer_page(
    client, session, world
) -> None:
    line = make_line(session, world)
    make_staff(session, role="care", email="care@example.com")
    session.commit()
    login_staff(client, "care@example.com")
    page = f"/console/customers/{world.customer.ref}"
    html = client.get(page).get_data(as_text=True)
    assert f'data-line-actions="{line.msisdn}"' in html and "Suspend" in html
    token = csrf_token(client, page)
    for action, status in (("suspend", "suspended"), ("resume", "active")):
        response = client.post(
            f"/console/lines/{line.msisdn}/{action}", data={"csrf_token": token, "reason": "asked"}
        )
        assert response.status_code == 302
        assert _status(session, line) == status
    # Termination pays a refund: the first post asks to confirm, showing it.
    path = f"/console/lines/{line.msisdn}/terminate"
    asked = client.post(path, data={"csrf_token": token, "reason": "asked"})
    assert asked.status_code == 200 and 'data-confirm="terminate"' in asked.get_data(as_text=True)
    assert _status(session, line) == "active"
    done = client.post(path, data={"csrf_token": token, "reason": "asked", "confirm": "yes"})
    assert done.status_code == 302
    assert _status(session, line) == "terminated"
    events = session.exec(select(ProvisioningEvent).where(ProvisioningEvent.line_id == line.id))
    assert [e.action for e in events] == ["suspend", "resume", "terminate"]


def test_a_line_action_needs_a_reason_and_a_legal_status(client, session, world) -> None:
    line = make_line(session, world)
    make_staff(session, role="care", email="care2@example.com")
    session.commit()
    login_staff(client, "care2@example.com")
    token = csrf_token(client, f"/console/customers/{world.customer.ref}")
    response = client.post(
        f"/console/lines/{line.msisdn}/suspend", data={"csrf_token": token, "reason": ""}
    )
    assert response.status_code == 302 and _status(session, line) == "active"
    response = client.post(
        f"/console/lines/{line.msisdn}/resume",
        data={"csrf_token": token, "reason": "x"},
        follow_redirects=True,
    )
    assert "is active" in response.get_data(as_text=True)
    assert _status(session, line) == "active"


@pytest.mark.parametrize("role", ["finance", "wholesale", "auditor"])
def test_other_roles_may_not_act_on_lines(client, session, world, role) -> None:
    line = make_line(session, world)
    make_staff(session, role=role, email=f"{role}@example.com")
    session.commit()
    login_staff(client, f"{role}@example.com")
    token = csrf_token(client, "/console/password")
    response = client.post(
        f"/console/lines/{line.msisdn}/suspend", data={"csrf_token": token, "reason": "x"}
    )
    assert response.status_code == 403
    assert _status(session, line) == "active"


def test_the_provisioning_page_lists_dead_letters_first_and_retries(client, session, world) -> None:
    line = make_line(session, world)
    event = _dead_event(session, line)
    make_staff(session, role="care", email="care3@example.com")
    session.commit()
    login_staff(client, "care3@example.com")
    html = client.get("/console/provisioning?status=dead").get_data(as_text=True)
    assert f'data-event="{event.id}"' in html and "HTTP 503" in html and "Retry" in html
    token = csrf_token(client, "/console/provisioning")
    response = client.post(f"/console/provisioning/{event.id}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(ProvisioningEvent, event.id).status == "pending"  # type: ignore[union-attr]


def test_an_auditor_sees_the_outbox_without_a_retry_button(client, session, world) -> None:
    _dead_event(session, make_line(session, world))
    make_staff(session, role="auditor", email="auditor@example.com")
    session.commit()
    login_staff(client, "auditor@example.com")
    response = client.get("/console/provisioning")
    assert response.status_code == 200
    assert "Retry" not in response.get_data(as_text=True)


# -- API --------------------------------------------------------------------------------


def _auth(session: Session, role: str) -> dict[str, str]:
    _key, token = make_api_key(session, role=role)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_api_line_actions(client, session, world) -> None:
    line = make_line(session, world)
    headers = _auth(session, "care")
    response = client.post(
        f"/api/v1/lines/{line.msisdn}/suspend", json={"reason": "unpaid"}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "suspended"
    again = client.post(
        f"/api/v1/lines/{line.msisdn}/suspend", json={"reason": "unpaid"}, headers=headers
    )
    assert again.status_code == 200
    refused = client.post(f"/api/v1/lines/{line.msisdn}/resume", json={}, headers=headers)
    assert refused.status_code == 422
    resumed = client.post(
        f"/api/v1/lines/{line.msisdn}/resume", json={"reason": "paid"}, headers=headers
    )
    assert resumed.get_json()["status"] == "active"
    ended = client.post(
        f"/api/v1/lines/{line.msisdn}/terminate", json={"reason": "asked"}, headers=headers
    )
    assert ended.get_json()["status"] == "terminated"
    conflict = client.post(
        f"/api/v1/lines/{line.msisdn}/resume", json={"reason": "x"}, headers=headers
    )
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "line_state"
    missing = client.post(
        "/api/v1/lines/+8600000000/suspend", json={"reason": "x"}, headers=headers
    )
    assert missing.status_code == 404


def test_api_line_actions_need_lines_manage(client, session, world) -> None:
    line = make_line(session, world)
    response = client.post(
        f"/api/v1/lines/{line.msisdn}/suspend",
        json={"reason": "x"},
        headers=_auth(session, "finance"),
    )
    assert response.status_code == 403
    assert _status(session, line) == "active"


def test_api_provisioning_events_and_retry(client, session, world) -> None:
    line = make_line(session, world)
    event = _dead_event(session, line)
    viewer = _auth(session, "auditor")
    listing = client.get("/api/v1/provisioning-events?status=dead", headers=viewer)
    assert listing.status_code == 200
    items = listing.get_json()["items"]
    assert [i["id"] for i in items] == [event.id] and items[0]["msisdn"] == line.msisdn
    assert (
        client.post(f"/api/v1/provisioning-events/{event.id}/retry", headers=viewer).status_code
        == 403
    )
    manager = _auth(session, "care")
    retried = client.post(f"/api/v1/provisioning-events/{event.id}/retry", headers=manager)
    assert retried.status_code == 200 and retried.get_json()["status"] == "pending"
    again = client.post(f"/api/v1/provisioning-events/{event.id}/retry", headers=manager)
    assert again.status_code == 409
    assert client.get("/api/v1/provisioning-events?status=nope", headers=viewer).status_code == 422
