"""The usage and settlement pages of the console: imports, rejects, a line's usage,
settlement runs and their files, reconciliation and disputes, the chart, host settings."""

from __future__ import annotations

import io
import json
import re

import pytest
from sqlmodel import func, select

from app.core.audit import AuditEntry
from app.usage.models import UsageFile, UsageRecord, UsageReject
from tests.conftest import csrf_token
from tests.factories import login_staff, make_staff
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
from wholesale.models import HostCarrier, SettlementDispute, SettlementRun

CHART_RE = re.compile(
    r'<script type="application/json" id="usage-chart-series">(.*?)</script>', re.S
)


def sign_in(client, session, role):
    email = f"{role}@example.com"
    make_staff(session, role=role, email=email)
    login_staff(client, email)
    return client


@pytest.fixture
def world(session):
    return usage_world(session)


@pytest.fixture
def admin(client, session):
    return sign_in(client, session, "admin")


def count(session, model):
    return session.exec(select(func.count()).select_from(model)).one()


def upload(client, text: str | bytes, *, host="HOSTA", name="usage.csv"):
    body = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        "/console/usage",
        data={
            "host": host,
            "file": (io.BytesIO(body), name),
            "csrf_token": csrf_token(client, "/console/usage"),
        },
        content_type="multipart/form-data",
    )


def test_a_good_file_is_imported_and_its_counts_shown(admin, session, world):
    rows = [*good_rows(), ("R4", FOREIGN_MSISDN, "sms", "2026-10-04T10:00:00+08:00", 1, "")]
    response = upload(admin, cdr_text(rows), name="october.csv")
    assert response.status_code == 302
    usage_file = session.exec(select(UsageFile)).one()
    assert response.headers["Location"].endswith(f"/console/usage/{usage_file.id}")
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "october.csv: 4 rows, 3 charged, 0 duplicates, 1 rejected." in page
    assert 'data-count="charged">3<' in page
    assert 'data-count="rejected">1<' in page
    assert "number not held from this host" in page
    assert f"<code>R4,{FOREIGN_MSISDN},sms" in page
    listing = admin.get("/console/usage").get_data(as_text=True)
    assert f'data-import="{usage_file.id}"' in listing and "october.csv" in listing


def test_the_same_file_again_changes_nothing(admin, session, world):
    text = cdr_text(good_rows())
    upload(admin, text)
    response = upload(admin, text)
    assert response.status_code == 302
    assert "was imported before" in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert count(session, UsageFile) == 1
    assert count(session, UsageRecord) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("msisdn,when\n+8617012340150,2026-10-02\n", "the header does not fit"),
        (b"record_id,msisdn,service,start_time,quantity\n\xff\xfe\n", "not UTF-8 text"),
        ("", "the file is empty"),
    ],
)
def test_a_refused_file_shows_why_and_changes_nothing(admin, session, world, body, message):
    audited = count(session, AuditEntry)
    response = upload(admin, body)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "The file was refused" in page and message in page
    assert count(session, UsageFile) == 0
    assert count(session, AuditEntry) == audited


def test_an_unknown_host_is_refused_beside_the_host(admin, session, world):
    response = upload(admin, cdr_text(good_rows()), host="NOPE")
    assert response.status_code == 422
    assert count(session, UsageFile) == 0


def test_a_file_over_the_limit_is_refused_with_a_form_message(
    app, admin, session, world, monkeypatch
):
    view = app.view_functions["console.usage_upload"]
    monkeypatch.setattr(view, "max_upload_bytes", 100)
    response = upload(admin, cdr_text(good_rows()))
    assert response.status_code == 422
    assert "The file is larger than 1 MiB" in response.get_data(as_text=True)
    # A body beyond the limit and its slack is refused before it is read, on the same form.
    response = upload(admin, "x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "The file is larger than 1 MiB" in page and "data-usage-upload" in page
    assert count(session, UsageFile) == 0


def test_a_file_larger_than_the_app_limit_is_taken_by_the_usage_upload(app, admin, world):
    assert app.view_functions["console.usage_upload"].max_upload_bytes == 64 * 1024 * 1024
    assert app.config["MAX_CONTENT_LENGTH"] < 64 * 1024 * 1024


def test_reprocessing_after_the_missing_line_is_opened_charges_the_reject(admin, session, world):
    rows = [("S1", SPARE_MSISDN, "data", "2026-10-05T10:00:00+08:00", 2048, "")]
    response = upload(admin, cdr_text(rows))
    file_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = admin.get(f"/console/usage/{file_id}").get_data(as_text=True)
    assert "no line active at that time" in page
    assert "Reprocess open rejects (1)" in page

    line_on(session, world.world, SPARE_MSISDN)
    response = admin.post(
        f"/console/usage/{file_id}/reprocess",
        data={"csrf_token": csrf_token(admin, f"/console/usage/{file_id}")},
    )
    assert response.status_code == 302
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 rejects tried again: 1 charged, 0 duplicates, 0 still rejected." in page
    reject = session.exec(select(UsageReject)).one()
    assert reject.status == "resolved"
    assert session.exec(select(UsageRecord).where(UsageRecord.record_id == "S1")).one()


def test_rejects_of_a_host_are_listed_and_reprocessed(admin, session, world):
    rows = [
        ("S1", SPARE_MSISDN, "data", "2026-10-05T10:00:00+08:00", 2048, ""),
        ("B1", LINE_MSISDN, "fax", "2026-10-05T10:00:00+08:00", 1, ""),
    ]
    upload(admin, cdr_text(rows))
    page = admin.get("/console/usage/rejects?host=HOSTA").get_data(as_text=True)
    assert "unknown service (data, voice or sms)" in page
    assert "Reprocess all open rejects of HOSTA" in page
    only = admin.get("/console/usage/rejects?host=HOSTA&reason=unknown_service").get_data(
        as_text=True
    )
    assert "B1," in only and "S1," not in only

    line_on(session, world.world, SPARE_MSISDN)
    response = admin.post(
        "/console/usage/rejects/reprocess",
        data={
            "host": "HOSTA",
            "csrf_token": csrf_token(admin, "/console/usage/rejects?host=HOSTA"),
        },
    )
    assert response.status_code == 302
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 rejects tried again: 1 charged, 0 duplicates, 1 still rejected." in page


def test_reject_text_is_escaped(admin, session, world):
    rows = [("<b>x</b>", LINE_MSISDN, "<script>", "2026-10-05T10:00:00+08:00", 1, "")]
    response = upload(admin, cdr_text(rows))
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>" not in page.split("</head>")[1].replace("<script src=", "")
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_a_lines_usage_page_shows_totals_and_records(admin, session, world):
    upload(admin, cdr_text(good_rows()))
    customer_page = admin.get("/console/customers/C-HOSTA").get_data(as_text=True)
    assert f"/console/lines/{LINE_MSISDN}/usage" in customer_page
    page = admin.get(f"/console/lines/{LINE_MSISDN}/usage").get_data(as_text=True)
    assert 'data-records="1"' in page
    assert 'data-record="R1"' in page and 'data-record="R3"' in page
    assert 'data-quantity="52428800"' in page
    assert "Data: " in page  # the current period's remaining allowance


def _export(client, month=MONTH, host="HOSTA"):
    return client.post(
        "/console/settlement/exports",
        data={
            "export-host": host,
            "export-month": month,
            "csrf_token": csrf_token(client, "/console/settlement"),
        },
    )


def test_settlement_export_and_its_files_download(app, admin, session, world):
    upload(admin, cdr_text(good_rows()))
    response = _export(admin)
    assert response.status_code == 302
    run = session.exec(select(SettlementRun)).one()
    assert response.headers["Location"].endswith(f"/console/settlement/runs/{run.id}")
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Settlement of HOSTA for 2026-10" in page
    assert 'data-service="data"' in page
    instance = app.extensions["mvno.settings"].instance_path
    written = instance / "settlement" / "HOSTA" / "settlement_HOSTA_2026-10.csv"
    assert written.read_text(encoding="utf-8") == run.csv_text

    csv_file = admin.get(f"/console/settlement/runs/{run.id}/csv")
    assert csv_file.status_code == 200
    assert csv_file.data == run.csv_text.encode("utf-8")
    assert csv_file.mimetype == "text/csv"
    disposition = csv_file.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename=settlement_HOSTA_2026-10.csv" in disposition.replace('"', "")
    json_file = admin.get(f"/console/settlement/runs/{run.id}/json")
    assert json_file.data == run.json_text.encode("utf-8")
    assert json_file.mimetype == "application/json"
    assert json_file.headers["Content-Disposition"].startswith("attachment;")
    assert json.loads(json_file.data)["host"] == "HOSTA"


@pytest.mark.parametrize(
    ("month", "host", "message"),
    [
        ("2026-13", "HOSTA", "The month must be written YYYY-MM"),
        ("2025-06", "HOSTA", "has no rate card in force"),
        (MONTH, "NOPE", "Not a valid choice"),
    ],
)
def test_a_refused_export_shows_why(admin, session, world, month, host, message):
    response = _export(admin, month=month, host=host)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(session, SettlementRun) == 0


def _reconcile(client, invoice: str, month=MONTH):
    return client.post(
        "/console/settlement/reconciliations",
        data={
            "reconcile-host": "HOSTA",
            "reconcile-month": month,
            "reconcile-invoice": (io.BytesIO(invoice.encode("utf-8")), "invoice.csv"),
            "csrf_token": csrf_token(client, "/console/settlement"),
        },
        content_type="multipart/form-data",
    )


def test_a_differing_invoice_opens_disputes_that_are_resolved_with_a_note(admin, session, world):
    upload(admin, cdr_text(good_rows()))
    invoice = invoice_text([("data", "bytes", 99_999_999, "0.0025", "0.24")])
    response = _reconcile(admin, invoice)
    assert response.status_code == 302
    run = session.exec(select(SettlementRun).where(SettlementRun.kind == "reconcile")).one()
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "The invoice differs from our settlement" in page
    assert 'data-service="data" data-status="discrepancy"' in page
    dispute = session.exec(
        select(SettlementDispute).where(SettlementDispute.service == "data")
    ).one()
    assert f'data-dispute="{dispute.id}"' in page
    assert dispute.run_id == run.id

    response = admin.post(
        f"/console/settlement/disputes/{dispute.id}/resolve",
        data={
            "note": "The host's mediation double-counted; credit note agreed.",
            "next": f"/console/settlement/runs/{run.id}",
            "csrf_token": csrf_token(admin, f"/console/settlement/runs/{run.id}"),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/settlement/runs/{run.id}#disputes"
    session.refresh(dispute)
    assert dispute.status == "resolved"
    assert dispute.note.startswith("The host's mediation")
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.action == "settlement.dispute_resolve")
    ).one()
    assert audit.target_id == str(dispute.id)
    again = admin.post(
        f"/console/settlement/disputes/{dispute.id}/resolve",
        data={"note": "again", "csrf_token": csrf_token(admin, "/console/settlement")},
    )
    follow = admin.get(again.headers["Location"].split("#")[0]).get_data(as_text=True)
    assert "was resolved already" in follow


def test_an_unreadable_invoice_is_refused_with_its_lines(admin, session, world):
    invoice = invoice_text([("data", "bytes", -5, "0.0025", "0.24")])
    response = _reconcile(admin, invoice)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "The invoice was refused: line 2" in page
    assert "data-invoice-rejects" in page
    assert count(session, SettlementRun) == 0


def test_the_chart_carries_the_daily_series(admin, session, world):
    upload(admin, cdr_text(good_rows()))
    response = admin.get(f"/console/settlement?host=HOSTA&month={MONTH}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "vendor/chart.js/chart.umd.min.js" in page and "usage-chart.js" in page
    data = json.loads(CHART_RE.search(page).group(1))
    assert len(data["days"]) == 31 and data["days"][0] == "2026-10-01"
    by_service = {chart["service"]: chart for chart in data["charts"]}
    assert by_service["data"]["quantity"][1] == 50.0  # 50 MB on 2 October
    assert by_service["voice"]["quantity"][1] == round(61 / 60, 3)
    assert by_service["sms"]["quantity"][2] == 1
    assert by_service["data"]["cost"][1] == 0.13  # 50 MB at 0.0025 = 0.125, half up
    assert data["labels"]["cost"] == "Wholesale cost (CNY)"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    bad = admin.get("/console/settlement?host=HOSTA&month=October").get_data(as_text=True)
    assert "The month must be written YYYY-MM" in bad


def test_the_chart_labels_are_translated(zh_client, session, world):
    sign_in(zh_client, session, "finance")
    page = zh_client.get(f"/console/settlement?host=HOSTA&month={MONTH}").get_data(as_text=True)
    data = json.loads(CHART_RE.search(page).group(1))
    assert data["labels"]["cost"] != "Wholesale cost (CNY)"
    assert data["charts"][0]["title"] != "Data (MB)"


def test_host_usage_settings_are_saved_from_the_host_page(admin, session, world):
    page = f"/console/hosts/{world.host_code}"
    response = admin.post(
        f"{page}/usage-settings",
        data={
            "usage-msisdn": "calling_party",
            "usage-quantity": "volume",
            "usage-ignore": "cell_id, imei",
            "usage-reconcile_amount_tolerance": "0.05",
            "usage-reconcile_quantity_tolerance_bp": "25",
            "csrf_token": csrf_token(admin, page),
        },
    )
    assert response.status_code == 302
    host = session.get(HostCarrier, world.world.host.id)
    session.refresh(host)
    assert host.cdr_columns == {
        "msisdn": "calling_party",
        "quantity": "volume",
        "ignore": ["cell_id", "imei"],
    }
    assert host.reconcile_amount_tolerance_minor == 5
    assert host.reconcile_quantity_tolerance_bp == 25
    shown = admin.get(page).get_data(as_text=True)
    assert "<code>calling_party</code>" in shown and 'value="0.05"' in shown

    refused = admin.post(
        f"{page}/usage-settings",
        data={
            "usage-msisdn": "record_id",
            "usage-reconcile_amount_tolerance": "0.05",
            "usage-reconcile_quantity_tolerance_bp": "25",
            "csrf_token": csrf_token(admin, page),
        },
    )
    assert refused.status_code == 422
    assert "Two usage fields share one column." in refused.get_data(as_text=True)
    bad_bp = admin.post(
        f"{page}/usage-settings",
        data={
            "usage-reconcile_amount_tolerance": "0.05",
            "usage-reconcile_quantity_tolerance_bp": "-1",
            "csrf_token": csrf_token(admin, page),
        },
    )
    assert bad_bp.status_code == 422
    assert "A tolerance is a whole number from 0 to 10000." in bad_bp.get_data(as_text=True)
    session.refresh(host)
    assert host.reconcile_quantity_tolerance_bp == 25


@pytest.mark.parametrize(
    "path",
    ["/console/usage", "/console/usage/rejects", "/console/settlement"],
)
def test_care_may_not_open_the_usage_and_settlement_pages(client, session, world, path):
    sign_in(client, session, "care")
    assert client.get(path).status_code == 403


def test_the_auditor_reads_but_changes_nothing(client, admin, session, world):
    response = upload(admin, cdr_text(good_rows()))
    file_id = int(response.headers["Location"].rsplit("/", 1)[1])
    _export(admin)
    admin.post("/console/logout", data={"csrf_token": csrf_token(admin, "/console/")})
    sign_in(client, session, "auditor")
    assert client.get("/console/usage").status_code == 200
    assert client.get(f"/console/usage/{file_id}").status_code == 200
    page = client.get("/console/settlement").get_data(as_text=True)
    assert "data-export" not in page and "data-runs" in page
    token = csrf_token(client, "/console/usage")
    refused = [
        client.post("/console/usage", data={"csrf_token": token, "host": "HOSTA"}),
        client.post(f"/console/usage/{file_id}/reprocess", data={"csrf_token": token}),
        client.post(
            "/console/settlement/exports",
            data={"csrf_token": token, "export-host": "HOSTA", "export-month": MONTH},
        ),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert count(session, SettlementRun) == 1
    dispute = client.post(
        "/console/settlement/disputes/1/resolve", data={"csrf_token": token, "note": "x"}
    )
    assert dispute.status_code == 403


def test_finance_exports_but_does_not_import(client, session, world):
    sign_in(client, session, "finance")
    assert _export(client).status_code == 302
    assert count(session, SettlementRun) == 1
    assert upload(client, cdr_text(good_rows())).status_code == 403


@pytest.mark.parametrize("role", ["admin", "care", "finance", "wholesale", "auditor"])
def test_the_navigation_shows_usage_and_settlement_to_whom_may_open_them(client, session, role):
    from app.auth.permissions import PERMISSIONS

    sign_in(client, session, role)
    page = client.get("/console/").get_data(as_text=True)
    assert ('href="/console/usage"' in page) == (role in PERMISSIONS["usage.view"])
    assert ('href="/console/settlement"' in page) == (role in PERMISSIONS["settlement.view"])
