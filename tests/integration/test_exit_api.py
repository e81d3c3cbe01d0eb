"""The market exit in the JSON API: the console wizard's every step, its refusals,
its files, and keys scoped by role."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.core.audit import AuditEntry
from app.exit.models import ExitChoice, MarketExit
from tests.factories import make_api_key
from tests.integration.exit_world import (
    BALANCE_MINOR,
    CURRENT_MSISDN,
    EARLIEST,
    EXIT_AT,
    EXIT_DATE,
    UNUSED_MINOR,
    empty_folder,
    exit_files,
    exit_world,
    install_clock,
)

REPORT = f"regulator_report_{EXIT_DATE}.csv"
HANDOVER = f"handover_HOSTA_{EXIT_DATE}.csv"


@pytest.fixture(autouse=True)
def clock(monkeypatch, app):
    empty_folder(app)
    yield install_clock(monkeypatch)
    empty_folder(app)


@pytest.fixture
def world(session):
    return exit_world(session)


def bearer(session, role="admin"):
    _key, token = make_api_key(session, role=role, name=f"exit-{role}")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(session):
    return bearer(session)


def error(response):
    return response.get_json()["error"]


def plan(client, headers, **body):
    return client.post(
        "/api/v1/exit/plan", json={"exit_date": EXIT_DATE.isoformat(), **body}, headers=headers
    )


def announce(client, headers):
    return client.post("/api/v1/exit/announce", json={"confirm": True}, headers=headers)


def test_nothing_planned_answers_the_earliest_date(client, admin, world):
    body = client.get("/api/v1/exit", headers=admin).get_json()
    assert body["exit"] is None and body["preview"] is None
    assert body["earliest_exit_date"] == EARLIEST and body["default_notice_days"] == 90


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"exit_date": "2027-01-30"}, 409, "exit_refused", "exit_date"),
        ({"exit_date": "2027-03-01", "notice_days": 200}, 409, "exit_refused", "exit_date"),
        ({"notice_days": 20}, 422, "invalid_input", "notice_days"),
        ({"exit_date": "0001-01-01"}, 422, "invalid_input", "exit_date"),
        ({"exit_date": "spring"}, 422, "invalid_input", "exit_date"),
    ],
)
def test_a_plan_too_close_or_unreadable_is_refused(
    client, session, admin, world, body, status, code, field
):
    response = plan(client, admin, **body)
    assert response.status_code == status
    assert (error(response)["code"], error(response)["field"]) == (code, field)
    assert session.exec(select(MarketExit)).first() is None


def test_the_whole_workflow_through_the_api(app, client, session, admin, world, clock):
    planned = plan(client, admin)
    assert planned.status_code == 200
    body = planned.get_json()
    assert body["exit"]["state"] == "draft" and body["exit"]["notice_days"] == 90
    owed = BALANCE_MINOR + UNUSED_MINOR
    preview = body["preview"]
    assert (preview["lines"], preview["terminated"], preview["refunds"]) == (2, 2, owed)
    assert preview["by_currency"] == [
        {
            "currency": "CNY",
            "liability_before": owed,
            "refunds": owed,
            "transferred_balances": 0,
            "written_off": 0,
        }
    ]
    unconfirmed = client.post("/api/v1/exit/announce", json={"confirm": False}, headers=admin)
    assert unconfirmed.status_code == 422
    announced = announce(client, admin).get_json()
    assert announced["exit"]["state"] == "announced" and announced["files"] == [REPORT]
    chosen = client.post(
        "/api/v1/exit/choices",
        json={"msisdn": CURRENT_MSISDN, "choice": "transfer", "note": "By phone."},
        headers=admin,
    )
    assert chosen.status_code == 200
    assert chosen.get_json()["choice"] == "transfer"
    assert session.exec(select(ExitChoice)).one().note == "By phone."
    status = client.get("/api/v1/exit", headers=admin).get_json()
    assert status["preview"]["choices"] == {"transfer": 1, "terminate": 0, "none": 1}
    assert status["executable"] is False

    early = client.post("/api/v1/exit/execute", json={"confirm": True}, headers=admin)
    assert early.status_code == 409 and error(early)["code"] == "exit_refused"
    clock.now = EXIT_AT
    done = client.post("/api/v1/exit/execute", json={"confirm": True}, headers=admin)
    assert done.status_code == 200
    result = done.get_json()
    assert result["exit"]["state"] == "completed" and result["preview"] is None
    assert (result["result"]["lines"], result["result"]["transferred"]) == (2, 1)
    assert result["result"]["refunds"] == owed
    assert result["files"] == sorted(
        [f"exit_report_{EXIT_DATE}.csv", HANDOVER, REPORT, f"refunds_{EXIT_DATE}.csv"]
    )
    listed = client.get("/api/v1/exit/files", headers=admin).get_json()
    assert listed["items"] == result["files"]
    handover = client.get(f"/api/v1/exit/files/{HANDOVER}", headers=admin)
    assert handover.status_code == 200 and handover.mimetype == "text/csv"
    assert CURRENT_MSISDN.encode() in handover.data
    assert handover.data == (exit_files(app) / HANDOVER).read_bytes()

    cancelled = client.post("/api/v1/exit/cancel", json={"reason": "Too late"}, headers=admin)
    assert cancelled.status_code == 409 and error(cancelled)["code"] == "exit_refused"
    actions = {a.action for a in session.exec(select(AuditEntry)).all()}
    assert {"exit.plan", "exit.announce", "exit.choose", "exit.execute"} <= actions


def test_a_choice_is_refused_before_the_announcement_and_for_an_unknown_line(client, admin, world):
    plan(client, admin)
    body = {"msisdn": CURRENT_MSISDN, "choice": "terminate"}
    early = client.post("/api/v1/exit/choices", json=body, headers=admin)
    assert early.status_code == 409
    announce(client, admin)
    unknown = client.post(
        "/api/v1/exit/choices", json={**body, "msisdn": "+8613900000000"}, headers=admin
    )
    assert unknown.status_code == 404
    bad = client.post("/api/v1/exit/choices", json={**body, "choice": "stay"}, headers=admin)
    assert bad.status_code == 422 and error(bad)["field"] == "choice"


def test_cancel_during_the_notice_needs_a_reason(client, session, admin, world):
    plan(client, admin)
    announce(client, admin)
    assert client.post("/api/v1/exit/cancel", json={}, headers=admin).status_code == 422
    done = client.post("/api/v1/exit/cancel", json={"reason": "Sold"}, headers=admin)
    assert done.status_code == 200 and done.get_json()["exit"] is None
    assert session.exec(select(MarketExit)).one().state == "cancelled"


@pytest.mark.parametrize(
    "name",
    ["secret_key", "..%2Fsecret_key", f"refunds_{EXIT_DATE}.csv", f"{REPORT}.bak", "a" * 300],
)
def test_a_file_download_refuses_any_other_name(app, client, admin, world, name):
    exit_files(app).mkdir(parents=True, exist_ok=True)
    (exit_files(app) / "secret_key").write_text("not for you", encoding="utf-8")
    response = client.get(f"/api/v1/exit/files/{name}", headers=admin)
    assert response.status_code == 404
    assert error(response)["code"] in ("exit_file_not_found", "not_found")


@pytest.mark.parametrize("role", ["care", "finance", "wholesale", "auditor"])
def test_keys_of_other_roles_cannot_change_the_exit(client, session, world, role):
    headers = bearer(session, role)
    for path, body in [
        ("/api/v1/exit/plan", {"exit_date": EXIT_DATE.isoformat()}),
        ("/api/v1/exit/announce", {"confirm": True}),
        ("/api/v1/exit/choices", {"msisdn": CURRENT_MSISDN, "choice": "transfer"}),
        ("/api/v1/exit/execute", {"confirm": True}),
        ("/api/v1/exit/cancel", {"reason": "no"}),
    ]:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 403, (role, path)
    assert session.exec(select(MarketExit)).first() is None
    expected = 200 if role == "auditor" else 403
    assert client.get("/api/v1/exit", headers=headers).status_code == expected
    assert client.get("/api/v1/exit/files", headers=headers).status_code == expected


def test_an_auditor_key_may_not_download_a_handover_file(app, client, session, admin, world):
    exit_files(app).mkdir(parents=True, exist_ok=True)
    (exit_files(app) / HANDOVER).write_text("msisdn\n", encoding="utf-8")
    (exit_files(app) / REPORT).write_text("item\n", encoding="utf-8")
    auditor = bearer(session, "auditor")
    assert client.get(f"/api/v1/exit/files/{HANDOVER}", headers=auditor).status_code == 403
    assert client.get(f"/api/v1/exit/files/{REPORT}", headers=auditor).status_code == 200
    assert client.get(f"/api/v1/exit/files/{HANDOVER}", headers=admin).status_code == 200


def test_the_exit_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    for path, method in [
        ("/api/v1/exit", "get"),
        ("/api/v1/exit/plan", "post"),
        ("/api/v1/exit/announce", "post"),
        ("/api/v1/exit/choices", "post"),
        ("/api/v1/exit/execute", "post"),
        ("/api/v1/exit/cancel", "post"),
        ("/api/v1/exit/files", "get"),
        ("/api/v1/exit/files/{name}", "get"),
    ]:
        assert "403" in paths[path][method]["responses"], path
    schemas = document["components"]["schemas"]
    names = {
        "StatusOut",
        "PreviewOut",
        "ResultOut",
        "MoneyOut",
        "PlanIn",
        "ConfirmIn",
        "ChoiceIn",
        "FileList",
    }
    assert {f"Exit{name}" for name in names} <= schemas.keys()
