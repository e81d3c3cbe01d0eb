"""`POST /api/v1/tickets/<ref>/messages/upload`: a staff reply or note with attachments as
multipart/form-data, kept by the console's rules and downloaded byte for byte; refusals
are JSON errors with the reason, and nothing is kept."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlmodel import Session, select

from app.care.models import ATTACHMENT_MAX_BYTES, Ticket, TicketAttachment, TicketMessage
from tests.integration.test_tickets_api import auth, open_by_api
from tests.unit.care.test_attachments import HTML, PDF, PNG
from tests.unit.subscribers.helpers import World, make_world


@pytest.fixture
def world(app: Any, session: Session) -> World:
    world = make_world(session, code="TUPL")
    world.customer.email = "upload-customer@example.com"
    session.add(world.customer)
    session.commit()
    return world


def upload(
    client: Any, headers: dict[str, str], ref: str, files: list[tuple[bytes, str]], **fields: str
) -> Any:
    data: dict[str, Any] = {"body": "见附件。", "visibility": "customer", **fields}
    data["attachments"] = [(io.BytesIO(content), name) for content, name in files]
    return client.post(
        f"/api/v1/tickets/{ref}/messages/upload",
        headers=headers,
        data=data,
        content_type="multipart/form-data",
    )


def stored(app: Any, session: Session) -> tuple[int, int, int]:
    """Messages and attachments in the database, and files kept on disk."""
    session.expire_all()
    kept = app.extensions["mvno.settings"].instance_path / "attachments"
    files = sum(1 for path in kept.rglob("*") if path.is_file()) if kept.exists() else 0
    return (
        len(session.exec(select(TicketMessage)).all()),
        len(session.exec(select(TicketAttachment)).all()),
        files,
    )


@pytest.fixture
def ticket_ref(client: Any, session: Session, world: World) -> str:
    opened = open_by_api(client, auth(session, "admin"), world.customer.ref)
    assert opened.status_code == 201, opened.json
    return str(opened.json["ref"])


@pytest.mark.parametrize("role", ["care", "admin"])
def test_files_uploaded_come_back_byte_for_byte(app, client, session, ticket_ref, role):
    headers = auth(session, role)
    response = upload(
        client,
        headers,
        ticket_ref,
        [(PNG, "signal.png"), (PDF, "bill.pdf")],
        visibility="internal",
        body="截图和账单。",
    )
    assert response.status_code == 201, response.json
    message = response.json
    assert (message["visibility"], message["body"], message["author_kind"]) == (
        "internal",
        "截图和账单。",
        "staff",
    )
    got = {a["filename"]: a for a in message["attachments"]}
    assert set(got) == {"signal.png", "bill.pdf"}
    assert (got["signal.png"]["content_type"], got["signal.png"]["size_bytes"]) == (
        "image/png",
        len(PNG),
    )
    for name, content in (("signal.png", PNG), ("bill.pdf", PDF)):
        download = client.get(
            f"/api/v1/tickets/{ticket_ref}/attachments/{got[name]['id']}", headers=headers
        )
        assert download.status_code == 200 and download.data == content
        assert download.mimetype == got[name]["content_type"]
    detail = client.get(f"/api/v1/tickets/{ticket_ref}", headers=headers).json
    assert [len(m["attachments"]) for m in detail["messages"]] == [0, 2]


def test_a_customer_visible_reply_with_a_file_is_the_first_response(
    app, client, session, ticket_ref
):
    response = upload(client, auth(session, "care"), ticket_ref, [(PNG, "a.png")])
    assert response.status_code == 201
    session.expire_all()
    ticket = session.exec(select(Ticket).where(Ticket.ref == ticket_ref)).one()
    assert ticket.first_responded_at is not None


@pytest.mark.parametrize(
    ("files", "fields", "status", "field", "says"),
    [
        ([(b"x" * (ATTACHMENT_MAX_BYTES + 1), "big.txt")], {}, 422, "attachments", "larger"),
        ([(HTML, "photo.png")], {}, 422, "attachments", "not a PDF, PNG"),
        ([(PNG, "photo.pdf")], {}, 422, "attachments", "does not match its name"),
        ([(b"", "empty.txt")], {}, 422, "attachments", ""),
        ([(PNG, f"{n}.png") for n in range(6)], {}, 422, "attachments", "At most 5 files"),
        ([(PNG, "a.png")], {"body": ""}, 422, "body", ""),
        ([(PNG, "a.png")], {"body": "bad\x07bell"}, 422, "body", ""),
        ([(PNG, "a.png")], {"visibility": "everyone"}, 422, "visibility", ""),
        ([], {}, 422, "attachments", ""),
    ],
)
def test_refusals_are_json_and_keep_nothing(
    app, client, session, ticket_ref, files, fields, status, field, says
):
    before = stored(app, session)
    response = upload(client, auth(session, "care"), ticket_ref, files, **fields)
    assert response.status_code == status, response.json
    assert response.json["error"]["field"] == field
    assert says in response.json["error"]["message"]
    assert stored(app, session) == before


def test_a_missing_body_is_refused(app, client, session, ticket_ref):
    before = stored(app, session)
    response = client.post(
        f"/api/v1/tickets/{ticket_ref}/messages/upload",
        headers=auth(session, "care"),
        data={"visibility": "customer", "attachments": [(io.BytesIO(PNG), "a.png")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and response.json["error"]["field"] == "body"
    assert stored(app, session) == before


def test_a_closed_ticket_takes_no_files(app, client, session, ticket_ref):
    headers = auth(session, "care")
    for status in ("resolved", "closed"):
        moved = client.post(
            f"/api/v1/tickets/{ticket_ref}/status", headers=headers, json={"status": status}
        )
        assert moved.status_code == 200, moved.json
    before = stored(app, session)
    response = upload(client, headers, ticket_ref, [(PNG, "a.png")])
    assert response.status_code == 409 and response.json["error"]["code"] == "ticket_state"
    assert stored(app, session) == before


@pytest.mark.parametrize("role", ["auditor", "finance", "wholesale"])
def test_keys_that_may_not_work_tickets_upload_nothing(app, client, session, ticket_ref, role):
    before = stored(app, session)
    response = upload(client, auth(session, role), ticket_ref, [(PNG, "a.png")])
    assert response.status_code == 403 and response.json["error"]["code"] == "permission_denied"
    assert stored(app, session) == before


def test_an_unknown_ticket_is_a_404(app, client, session, world):
    response = upload(client, auth(session, "care"), "T-999999", [(PNG, "a.png")])
    assert response.status_code == 404 and response.json["error"]["code"] == "ticket_not_found"


def test_the_api_document_describes_the_upload(client):
    operation = client.get("/api/v1/openapi.json").json["paths"][
        "/api/v1/tickets/{ref}/messages/upload"
    ]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"201", "403", "404", "409", "413", "422"} <= set(operation["responses"])
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    name = body["$ref"].rsplit("/", 1)[-1]
    properties = schema[name]["properties"]
    assert properties["attachments"]["items"] == {"type": "string", "format": "binary"}
    assert set(schema[name]["required"]) == {"attachments", "body", "visibility"}
