"""The JSON API of usage and settlement: imports, rejects, a line's usage, daily series,
settlement runs and files, reconciliation and disputes; role scoping and error shapes."""

from __future__ import annotations

import io
import json

import pytest
from sqlmodel import func, select

from app.core.audit import AuditEntry
from app.usage.models import UsageFile, UsageReject
from tests.factories import make_api_key
from tests.integration.usage_world import (
    FOREIGN_MSISDN,
    LINE_MSISDN,
    MONTH,
    SPARE_MSISDN,
    cdr_text,
    good_rows,
    invoice_text,
    line_on,
    usage_world,
)
from wholesale.models import SettlementDispute, SettlementRun


@pytest.fixture
def world(session):
    return usage_world(session)


def key(session, role="admin"):
    _key, token = make_api_key(session, role=role, name=f"usage-{role}")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(session):
    return key(session)


def count(session, model):
    return session.exec(select(func.count()).select_from(model)).one()


def post_file(client, headers, text, *, host="HOSTA", name="usage.csv"):
    body = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        "/api/v1/usage/imports",
        headers=headers,
        data={"host": host, "file": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
    )


def assert_error(response, status, code, field=None):
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert error["field"] == field
    return error


def test_importing_a_file_answers_the_cli_shape_with_its_id(client, session, world, admin):
    rows = [*good_rows(), ("R4", FOREIGN_MSISDN, "sms", "2026-10-04T10:00:00+08:00", 1, "")]
    response = post_file(client, admin, cdr_text(rows), name="october.csv")
    assert response.status_code == 201
    body = response.get_json()
    usage_file = session.exec(select(UsageFile)).one()
    assert body == {
        "file": "october.csv",
        "file_id": usage_file.id,
        "rows": 4,
        "charged": 3,
        "duplicates": 0,
        "rejected": 1,
        "already_imported": False,
    }
    again = post_file(client, admin, cdr_text(rows), name="october-again.csv")
    assert again.status_code == 200
    assert again.get_json() == {**body, "file": "october-again.csv", "already_imported": True}

    one = client.get(f"/api/v1/usage/imports/{usage_file.id}", headers=admin).get_json()
    assert one["host"] == "HOSTA" and one["rows"] == 4 and one["open_rejects"] == 1
    page = client.get("/api/v1/usage/imports?host=HOSTA", headers=admin).get_json()
    assert page["total"] == 1 and page["items"][0]["id"] == usage_file.id
    rejects = client.get("/api/v1/usage/rejects?host=HOSTA", headers=admin).get_json()
    assert rejects["total"] == 1
    reject = rejects["items"][0]
    assert reject["reason"] == "unknown_msisdn" and reject["line"] == 5
    assert reject["raw"].startswith(f"R4,{FOREIGN_MSISDN},sms")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("msisdn,when\n+8617012340150,2026-10-02\n", "import_file_rejected"),
        (b"record_id,msisdn,service,start_time,quantity\n\xff\n", "import_file_rejected"),
    ],
)
def test_a_refused_file_is_a_422_and_changes_nothing(client, session, world, admin, body, code):
    assert_error(post_file(client, admin, body), 422, code)
    assert count(session, UsageFile) == 0


def test_import_errors_have_the_error_shape(client, session, world, admin):
    assert_error(
        post_file(client, admin, cdr_text(good_rows()), host="NOPE"), 404, "host_not_found"
    )
    missing = client.post(
        "/api/v1/usage/imports",
        headers=admin,
        data={"host": "HOSTA"},
        content_type="multipart/form-data",
    )
    assert_error(missing, 422, "invalid_input", "file")
    as_json = client.post("/api/v1/usage/imports", headers=admin, json={"host": "HOSTA"})
    assert as_json.status_code == 422
    assert count(session, UsageFile) == 0


def test_a_file_over_the_limit_is_a_413(app, client, session, world, admin, monkeypatch):
    monkeypatch.setattr(app.view_functions["api.usage_import_create"], "max_upload_bytes", 100)
    assert_error(post_file(client, admin, cdr_text(good_rows())), 413, "file_too_large", "file")
    too_big = post_file(client, admin, "x" * (2 * 1024 * 1024))
    assert too_big.status_code == 413
    assert too_big.get_json()["error"]["code"] == "request_entity_too_large"
    assert count(session, UsageFile) == 0


def test_reprocessing_charges_a_reject_once_its_line_exists(client, session, world, admin):
    rows = [
        ("S1", SPARE_MSISDN, "data", "2026-10-05T10:00:00+08:00", 2048, ""),
        ("S2", SPARE_MSISDN, "sms", "2026-10-05T11:00:00+08:00", 1, ""),
    ]
    post_file(client, admin, cdr_text(rows))
    line_on(session, world.world, SPARE_MSISDN)
    first = session.exec(select(UsageReject).where(UsageReject.record_id == "S1")).one()
    response = client.post(
        "/api/v1/usage/rejects/reprocess", headers=admin, json={"host": "HOSTA", "ids": [first.id]}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["tried"] == 1 and body["charged"] == 1 and body["still_rejected"] == 0
    rest = client.post("/api/v1/usage/rejects/reprocess", headers=admin, json={"host": "HOSTA"})
    assert rest.get_json()["charged"] == 1
    left = client.get("/api/v1/usage/rejects?host=HOSTA", headers=admin).get_json()
    assert left["total"] == 0
    resolved = client.get("/api/v1/usage/rejects?status=resolved", headers=admin).get_json()
    assert resolved["total"] == 2
    assert_error(
        client.post("/api/v1/usage/rejects/reprocess", headers=admin, json={"host": "NOPE"}),
        404,
        "host_not_found",
    )


def test_a_lines_usage(client, session, world, admin):
    post_file(client, admin, cdr_text(good_rows()))
    body = client.get(f"/api/v1/lines/{LINE_MSISDN}/usage?per_page=2", headers=admin).get_json()
    assert body["msisdn"] == LINE_MSISDN
    assert body["total"] == 3 and len(body["items"]) == 2
    assert body["items"][0]["record_id"] == "R3"  # latest first
    assert body["totals"]["data"]["quantity"] == 52_428_800
    assert body["totals"]["voice"]["billable"] == 120  # 61 s in 60-second increments
    assert body["period"]["remaining"]["data_kb"] == 10240 * 1024 - 51_200
    care = client.get(f"/api/v1/lines/{LINE_MSISDN}/usage", headers=key(session, "care"))
    assert care.status_code == 200
    assert_error(
        client.get("/api/v1/lines/+8610000000000/usage", headers=admin), 404, "line_not_found"
    )


def test_the_daily_series(client, session, world, admin):
    post_file(client, admin, cdr_text(good_rows()))
    body = client.get(f"/api/v1/usage/daily?host=HOSTA&month={MONTH}", headers=admin).get_json()
    assert body["days"] == ["2026-10-02", "2026-10-03"]
    assert body["quantity"]["data"] == [52_428_800, 0]
    assert body["quantity"]["sms"] == [0, 1]
    assert body["cost_minor"]["data"] == [13, 0]
    assert body["units"] == {"data": "bytes", "voice": "seconds", "sms": "messages"}
    assert_error(
        client.get("/api/v1/usage/daily?host=HOSTA&month=2026-13", headers=admin),
        422,
        "invalid_input",
        "month",
    )
    assert_error(
        client.get(f"/api/v1/usage/daily?host=NOPE&month={MONTH}", headers=admin),
        404,
        "host_not_found",
    )


def test_export_then_download_the_runs_files(client, session, world, admin):
    post_file(client, admin, cdr_text(good_rows()))
    response = client.post(
        "/api/v1/settlement/exports", headers=admin, json={"host": "HOSTA", "month": MONTH}
    )
    assert response.status_code == 201
    body = response.get_json()
    run = session.get(SettlementRun, body["run_id"])
    assert body["files"] == ["settlement_HOSTA_2026-10.csv", "settlement_HOSTA_2026-10.json"]
    assert body["total"] == run.total_minor and body["kind"] == "export"
    listed = client.get("/api/v1/settlement/runs?host=HOSTA", headers=admin).get_json()
    assert [r["id"] for r in listed["items"]] == [run.id]
    csv_file = client.get(f"/api/v1/settlement/runs/{run.id}/csv", headers=admin)
    assert csv_file.data == run.csv_text.encode("utf-8")
    assert csv_file.mimetype == "text/csv"
    assert csv_file.headers["Content-Disposition"].startswith("attachment;")
    json_file = client.get(f"/api/v1/settlement/runs/{run.id}/json", headers=admin)
    assert json_file.data == run.json_text.encode("utf-8")
    assert json.loads(json_file.data)["total_minor"] == run.total_minor
    assert_error(
        client.get("/api/v1/settlement/runs/999999/csv", headers=admin),
        404,
        "settlement_run_not_found",
    )


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"host": "HOSTA", "month": "2026-13"}, 422, "invalid_input", "month"),
        ({"host": "HOSTA", "month": "October"}, 422, "invalid_input", "month"),
        ({"host": "HOSTA"}, 422, "invalid_input", "month"),
        ({"host": "NOPE", "month": MONTH}, 404, "host_not_found", None),
        ({"host": "HOSTA", "month": "2025-06"}, 409, "no_rate_card", None),
    ],
)
def test_export_refusals(client, session, world, admin, payload, status, code, field):
    response = client.post("/api/v1/settlement/exports", headers=admin, json=payload)
    assert_error(response, status, code, field)
    assert count(session, SettlementRun) == 0


def reconcile(client, headers, invoice, month=MONTH):
    return client.post(
        "/api/v1/settlement/reconciliations",
        headers=headers,
        data={
            "host": "HOSTA",
            "month": month,
            "invoice": (io.BytesIO(invoice.encode("utf-8")), "invoice.csv"),
        },
        content_type="multipart/form-data",
    )


def test_reconcile_a_differing_invoice_then_resolve_its_dispute(client, session, world, admin):
    post_file(client, admin, cdr_text(good_rows()))
    invoice = invoice_text([("data", "bytes", 99_999_999, "0.0025", "0.24")])
    response = reconcile(client, admin, invoice)
    assert response.status_code == 201
    body = response.get_json()
    assert body["kind"] == "reconcile" and body["discrepancies"] >= 1
    assert body["invoice_total"] == 24
    disputes = client.get("/api/v1/settlement/disputes?host=HOSTA", headers=admin).get_json()
    data = next(d for d in disputes["items"] if d["service"] == "data")
    assert data["invoice_quantity"] == 99_999_999 and data["status"] == "open"

    finance = key(session, "finance")
    resolved = client.post(
        f"/api/v1/settlement/disputes/{data['id']}/resolve",
        headers=finance,
        json={"note": "Credit note agreed with the host."},
    )
    assert resolved.status_code == 200
    assert resolved.get_json()["status"] == "resolved"
    assert session.get(SettlementDispute, data["id"]).note == "Credit note agreed with the host."
    assert session.exec(
        select(AuditEntry).where(AuditEntry.action == "settlement.dispute_resolve")
    ).one()
    assert_error(
        client.post(
            f"/api/v1/settlement/disputes/{data['id']}/resolve", headers=admin, json={"note": "x"}
        ),
        409,
        "dispute_resolved",
    )
    assert_error(
        client.post(
            "/api/v1/settlement/disputes/999999/resolve", headers=admin, json={"note": "x"}
        ),
        404,
        "dispute_not_found",
    )
    assert_error(
        client.post(
            f"/api/v1/settlement/disputes/{data['id']}/resolve", headers=admin, json={"note": " "}
        ),
        422,
        "invalid_input",
        "note",
    )


def test_an_unreadable_invoice_is_a_422_with_its_lines(client, session, world, admin):
    response = reconcile(client, admin, invoice_text([("data", "bytes", -5, "0.0025", "0.24")]))
    error = assert_error(response, 422, "invoice_rejected")
    assert error["details"]["rejects"][0]["line"] == 2
    missing = client.post(
        "/api/v1/settlement/reconciliations",
        headers=admin,
        data={"host": "HOSTA", "month": MONTH},
        content_type="multipart/form-data",
    )
    assert_error(missing, 422, "invalid_input", "invoice")
    assert count(session, SettlementRun) == 0


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("care", "get", "/api/v1/usage/imports", False),
        ("care", "get", "/api/v1/settlement/runs", False),
        ("auditor", "get", "/api/v1/usage/imports", True),
        ("auditor", "get", "/api/v1/settlement/disputes", True),
        ("auditor", "post", "/api/v1/settlement/exports", False),
        ("auditor", "post", "/api/v1/usage/rejects/reprocess", False),
        ("finance", "post", "/api/v1/settlement/exports", True),
        ("finance", "post", "/api/v1/usage/rejects/reprocess", False),
        ("wholesale", "post", "/api/v1/usage/rejects/reprocess", True),
    ],
)
def test_roles_scope_the_usage_api(client, session, world, role, method, path, allowed):
    payload = {"host": "HOSTA", "month": MONTH} if "exports" in path else {"host": "HOSTA"}
    call = getattr(client, method)
    kwargs = {"json": payload} if method == "post" else {}
    response = call(path, headers=key(session, role), **kwargs)
    if allowed:
        assert response.status_code in (200, 201), response.get_data(as_text=True)
    else:
        assert_error(response, 403, "permission_denied")


def test_the_usage_api_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in (
        "/api/v1/usage/imports",
        "/api/v1/usage/imports/{file_id}",
        "/api/v1/usage/rejects",
        "/api/v1/usage/rejects/reprocess",
        "/api/v1/lines/{msisdn}/usage",
        "/api/v1/usage/daily",
        "/api/v1/settlement/exports",
        "/api/v1/settlement/runs",
        "/api/v1/settlement/runs/{run_id}/csv",
        "/api/v1/settlement/runs/{run_id}/json",
        "/api/v1/settlement/reconciliations",
        "/api/v1/settlement/disputes",
        "/api/v1/settlement/disputes/{dispute_id}/resolve",
    ):
        assert path in spec["paths"], path
    upload = spec["paths"]["/api/v1/usage/imports"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
