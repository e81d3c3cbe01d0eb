"""JSON API of customer service: tickets opened, listed, read with their conversation,
answered, moved, assigned and escalated; attachments downloaded; SLA targets; figures;
the roles of the keys; and JSON errors for bad input."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from app.care.attachments import Upload
from app.care.models import Ticket, TicketAttachment
from app.care.tickets import open_ticket
from app.core.audit import Actor
from tests.factories import make_api_key, make_staff
from tests.unit.subscribers.helpers import World, make_line, make_world

TZ = "Asia/Shanghai"


@pytest.fixture
def world(app: Any, session: Session) -> World:
    world = make_world(session, code="TAPI")
    world.customer.email = "api-customer@example.com"
    session.add(world.customer)
    session.commit()
    return world


def auth(session: Session, role: str) -> dict[str, str]:
    _key, token = make_api_key(session, role=role)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def call(client: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    return client.open(
        f"/api/v1{path}",
        method=method,
        headers={**headers, "Content-Type": "application/json"},
        data=json.dumps(body) if body is not None else None,
    )


def open_by_api(client: Any, headers: dict[str, str], target: str, **extra: Any) -> Any:
    body = {
        "customer": target,
        "channel": "phone",
        "category": "complaint",
        "subject": "Slow data",
        "body": "Customer says data is slow\nsince Monday.",
        **extra,
    }
    return call(client, "POST", "/tickets", headers, body)


def test_a_ticket_through_its_life_by_api(client, session, world):
    line = make_line(session, world)
    care = make_staff(session, role="care", email="care-api@example.com")
    session.commit()
    headers = auth(session, "care")
    opened = open_by_api(client, headers, line.msisdn, priority="urgent")
    assert opened.status_code == 201, opened.json
    ticket = opened.json
    ref = ticket["ref"]
    assert (ticket["customer_ref"], ticket["msisdn"], ticket["status"]) == (
        world.customer.ref,
        line.msisdn,
        "open",
    )
    assert ticket["sla_around_the_clock"] is True

    note = call(
        client,
        "POST",
        f"/tickets/{ref}/messages",
        headers,
        {"body": "Checked the cell.", "visibility": "internal"},
    )
    answer = call(
        client,
        "POST",
        f"/tickets/{ref}/messages",
        headers,
        {"body": "Fixed, please retry.", "visibility": "customer"},
    )
    assert note.status_code == answer.status_code == 201
    detail = call(client, "GET", f"/tickets/{ref}", headers).json
    assert [m["visibility"] for m in detail["messages"]] == ["customer", "internal", "customer"]
    assert detail["first_responded_at"] is not None

    assigned = call(
        client, "POST", "/ticket-assignments", headers, {"tickets": [ref], "assignee": care.email}
    )
    assert assigned.json == {"changed": 1}
    listed = call(client, "GET", f"/tickets?assignee={care.email}", headers).json
    assert [t["ref"] for t in listed["items"]] == [ref] and listed["items"][0][
        "assignee"
    ] == care.email

    moved = call(client, "POST", f"/tickets/{ref}/status", headers, {"status": "resolved"})
    assert moved.status_code == 200 and moved.json["status"] == "resolved"
    refused = call(client, "POST", f"/tickets/{ref}/status", headers, {"status": "escalated"})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "ticket_state"
    escalated = call(
        client,
        "POST",
        f"/tickets/{ref}/escalation",
        headers,
        {"reference": "MIIT-9", "date": date(2026, 1, 5).isoformat()},
    )
    assert escalated.json["regulator_ref"] == "MIIT-9"
    assert escalated.json["status"] == "resolved"  # a resolved ticket keeps its status
    assert call(client, "GET", "/tickets", headers).json["total"] == 0  # nothing live
    assert call(client, "GET", "/tickets?status=all", headers).json["total"] == 1


def test_an_attachment_is_downloaded_as_an_attachment(app, client, session, world):
    ticket = open_ticket(
        session,
        category="fault",
        channel="phone",
        subject="x",
        body="y",
        actor=Actor.system("test"),
        now=datetime.now(UTC),
        timezone=TZ,
        customer_id=world.customer.id,
        uploads=[Upload("bill.pdf", b"%PDF-1.4 test")],
        storage=app.extensions["mvno.settings"].instance_path / "attachments",
    )
    session.commit()
    attachment = session.exec(select(TicketAttachment)).one()
    headers = auth(session, "auditor")
    response = client.get(
        f"/api/v1/tickets/{ticket.ref}/attachments/{attachment.id}", headers=headers
    )
    assert response.status_code == 200 and response.data == b"%PDF-1.4 test"
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == "attachment; filename=bill.pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    missing = client.get(f"/api/v1/tickets/{ticket.ref}/attachments/999999", headers=headers)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "attachment_not_found"


@pytest.mark.parametrize("role", ["auditor", "finance", "wholesale"])
def test_keys_that_may_not_work_tickets_are_refused(client, session, world, role):
    headers = auth(session, role)
    opened = open_by_api(client, headers, world.customer.ref)
    assert opened.status_code == 403 and opened.json["error"]["code"] == "permission_denied"
    listed = call(client, "GET", "/tickets", headers)
    assert listed.status_code == (200 if role == "auditor" else 403)
    put = call(
        client,
        "PUT",
        "/sla-targets/complaint/normal",
        headers,
        {"first_response_minutes": 60, "resolution_minutes": 120, "around_the_clock": False},
    )
    assert put.status_code == 403
    assert session.exec(select(Ticket)).all() == []


def test_sla_targets_and_figures(client, session, world):
    admin = auth(session, "admin")
    targets = call(client, "GET", "/sla-targets", admin).json["items"]
    assert len(targets) == 20
    put = call(
        client,
        "PUT",
        "/sla-targets/porting/low",
        admin,
        {"first_response_minutes": 30, "resolution_minutes": 90, "around_the_clock": True},
    )
    assert put.status_code == 200 and put.json["around_the_clock"] is True
    shorter = call(
        client,
        "PUT",
        "/sla-targets/porting/low",
        admin,
        {"first_response_minutes": 90, "resolution_minutes": 30, "around_the_clock": True},
    )
    assert shorter.status_code == 422 and shorter.json["error"]["field"] == "resolution_minutes"
    unknown = call(
        client,
        "PUT",
        "/sla-targets/gossip/low",
        admin,
        {"first_response_minutes": 1, "resolution_minutes": 1, "around_the_clock": True},
    )
    assert unknown.status_code == 404
    open_by_api(client, admin, world.customer.ref)
    today = datetime.now(UTC).date()
    figures = call(
        client,
        "GET",
        f"/ticket-figures?first={today - timedelta(days=1)}&last={today + timedelta(days=1)}",
        admin,
    ).json
    assert sum(day["opened"] for day in figures["opened_per_day"]) == 1
    assert figures["open_by_status"] == {"open": 1, "pending_customer": 0, "escalated": 0}
    assert figures["sla_attainment"]["both_total"] == 0
    odd = call(client, "GET", "/ticket-figures?first=9999-12-31&last=0001-01-01", admin)
    assert odd.status_code == 200 and odd.json["opened_per_day"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "x" * 201}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"body": "x" * 10_001}, "body"),
        ({"body": "bad\x07bell"}, "body"),
        ({"category": "gossip"}, "category"),
        ({"channel": "system"}, "channel"),
        ({"customer": ""}, "customer"),
    ],
)
def test_bad_input_is_a_json_error_naming_the_field(client, session, world, body, field):
    headers = auth(session, "care")
    response = open_by_api(client, headers, world.customer.ref, **body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_input"
    assert response.json["error"]["field"] == field


def test_unknown_things_are_404s(client, session, world):
    headers = auth(session, "care")
    assert open_by_api(client, headers, "C-NOBODY").status_code == 404
    assert call(client, "GET", "/tickets/T-999999", headers).status_code == 404
    assert call(client, "GET", "/tickets/" + "T" * 300, headers).status_code == 404
    assert call(client, "GET", "/tickets?customer=C-NOBODY", headers).status_code == 404
    assert call(client, "GET", "/tickets?assignee=nobody@example.com", headers).status_code == 404
    unknown = {"tickets": ["T-999999"], "assignee": None}
    assert call(client, "POST", "/ticket-assignments", headers, unknown).status_code == 404


def test_the_api_document_lists_the_ticket_operations(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/api/v1/tickets",
        "/api/v1/tickets/{ref}",
        "/api/v1/tickets/{ref}/messages",
        "/api/v1/tickets/{ref}/status",
        "/api/v1/ticket-assignments",
        "/api/v1/tickets/{ref}/escalation",
        "/api/v1/tickets/{ref}/attachments/{attachment_id}",
        "/api/v1/sla-targets",
        "/api/v1/sla-targets/{category}/{priority}",
        "/api/v1/ticket-figures",
    ):
        assert path in paths, path
