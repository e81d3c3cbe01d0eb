"""JSON API of the SLA calendar: load a year's public holidays, list, set and remove days;
who may read and who may change it; JSON errors for bad input, with nothing written."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlmodel import Session, select

from app.care.models import SlaDay
from app.core.audit import AuditEntry
from tests.integration.test_tickets_api import auth, call


def test_the_calendar_through_the_api(client, session: Session):
    admin = auth(session, "admin")
    loaded = call(client, "POST", "/sla-holidays/load", admin, {"year": 2025})
    assert loaded.status_code == 200, loaded.json
    assert loaded.json["country"] == "CN" and loaded.json["kept"] == []
    assert "2025-01-26" in loaded.json["workdays"] and "2025-02-04" in loaded.json["holidays"]
    listed = call(client, "GET", "/sla-holidays?year=2025", admin).json["items"]
    assert [d["day"] for d in listed] == sorted(d["day"] for d in listed)
    spring = next(d for d in listed if d["day"] == "2025-01-29")
    assert (spring["kind"], spring["name"], spring["source"]) == ("holiday", "春节", "public")

    put = call(
        client, "PUT", "/sla-holidays/2025-02-08", admin, {"kind": "holiday", "name": "不调休"}
    )
    assert put.status_code == 200
    assert (put.json["kind"], put.json["source"]) == ("holiday", "staff")
    again = call(client, "POST", "/sla-holidays/load", admin, {"year": 2025, "country": "CN"})
    assert again.json["holidays"] == again.json["workdays"] == []
    assert "2025-02-08" in again.json["kept"]
    assert session.get(SlaDay, date(2025, 2, 8)).kind == "holiday"

    deleted = call(client, "DELETE", "/sla-holidays/2025-02-08", admin)
    assert deleted.status_code == 204 and deleted.data == b""
    missing = call(client, "DELETE", "/sla-holidays/2025-02-08", admin)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "sla_day_not_found"
    assert call(client, "GET", "/sla-holidays?year=2024", admin).json == {"items": []}
    every = call(client, "GET", "/sla-holidays", admin).json["items"]
    assert len(every) == len(listed) - 1
    actions = {a.action for a in session.exec(select(AuditEntry)) if a.actor_kind == "api_key"}
    assert {"sla_day.load", "sla_day.set", "sla_day.remove"} <= actions


@pytest.mark.parametrize(
    ("role", "reads"),
    [("care", True), ("auditor", True), ("finance", False), ("wholesale", False)],
)
def test_only_admins_change_the_calendar(client, session, role, reads):
    headers = auth(session, role)
    assert call(client, "GET", "/sla-holidays", headers).status_code == (200 if reads else 403)
    changes = [
        ("PUT", "/sla-holidays/2026-10-10", {"kind": "workday", "name": "补班"}),
        ("DELETE", "/sla-holidays/2026-10-10", None),
        ("POST", "/sla-holidays/load", {"year": 2026}),
    ]
    for method, path, body in changes:
        response = call(client, method, path, headers, body)
        assert response.status_code == 403, (method, path)
        assert response.json["error"]["code"] == "permission_denied"
    assert session.exec(select(SlaDay)).all() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("PUT", "/sla-holidays/2026-02-30", {"kind": "holiday", "name": "x"}, 422, "day"),
        ("PUT", "/sla-holidays/2026-10-10", {"kind": "closed", "name": "x"}, 422, "kind"),
        ("PUT", "/sla-holidays/2026-10-10", {"kind": "workday", "name": "x" * 101}, 422, "name"),
        ("PUT", "/sla-holidays/2026-10-10", {"kind": "workday", "name": " "}, 422, "name"),
        ("PUT", "/sla-holidays/2026-10-10", {"kind": "workday"}, 422, "name"),
        ("PUT", "/sla-holidays/2026-10-12", {"kind": "workday", "name": "x"}, 422, "kind"),
        ("PUT", "/sla-holidays/1999-01-02", {"kind": "workday", "name": "x"}, 422, "year"),
        ("POST", "/sla-holidays/load", {"year": 1999}, 422, "year"),
        ("POST", "/sla-holidays/load", {"year": 2100}, 422, "year"),
        ("POST", "/sla-holidays/load", {"year": "2025"}, 422, "year"),
        ("POST", "/sla-holidays/load", {"year": 2025, "country": "ZZ"}, 422, "country"),
        ("POST", "/sla-holidays/load", {}, 422, "year"),
        ("GET", "/sla-holidays?year=1999", None, 422, "year"),
        ("GET", "/sla-holidays?year=next", None, 422, "year"),
        ("DELETE", "/sla-holidays/2026-13-01", None, 422, "day"),
    ],
)
def test_bad_input_is_a_json_error_naming_the_field(
    client, session, method, path, body, status, field
):
    response = call(client, method, path, auth(session, "admin"), body)
    assert response.status_code == status, response.json
    assert response.json["error"]["field"] == field
    assert session.exec(select(SlaDay)).all() == []


@pytest.mark.parametrize("path", ["/sla-holidays/tomorrow", "/sla-holidays/2026-1-1"])
def test_a_path_that_is_no_date_is_no_address(client, session: Session, path: str) -> None:
    response = call(client, "PUT", path, auth(session, "admin"), {"kind": "holiday", "name": "x"})
    assert response.status_code in (404, 405) and "error" in response.json


def test_the_api_document_lists_the_calendar_operations(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/api/v1/sla-holidays"]) == {"get"}
    assert set(paths["/api/v1/sla-holidays/{day}"]) == {"put", "delete"}
    assert set(paths["/api/v1/sla-holidays/load"]) == {"post"}
    day = paths["/api/v1/sla-holidays/{day}"]["put"]["parameters"][0]
    assert day["schema"] == {"format": "date", "type": "string"}


def test_closing_the_desk_for_more_than_a_month_is_a_409(client, session: Session):
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    start = date(2026, 3, 2)
    for n in range(29):  # Saturday 28 February to Monday 30 March off: 31 days
        day = start + timedelta(days=n)
        if day.weekday() < 5:
            session.add(SlaDay(day=day, kind="holiday", name="关闭", updated_at=now))
    session.commit()
    admin = auth(session, "admin")
    refused = call(
        client, "PUT", "/sla-holidays/2026-03-31", admin, {"kind": "holiday", "name": "关闭"}
    )
    assert refused.status_code == 409, refused.json
    assert refused.json["error"]["code"] == "sla_calendar_closed"
    assert session.get(SlaDay, date(2026, 3, 31)) is None
