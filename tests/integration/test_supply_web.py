"""Console pages, store and JSON API of the supply side, end to end through the web layer."""

from pathlib import Path

import pytest
from sqlmodel import select

from app.catalog import load_catalog
from app.core.audit import Actor, AuditEntry
from numbering.models import PhoneNumber, Sim
from plans.models import Plan
from tests.conftest import csrf_token
from tests.factories import NOW, login_staff, make_api_key, make_staff
from wholesale.models import HostCarrier

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def catalog(session):
    load_catalog(
        session,
        text=(FIXTURES / "catalog.toml").read_text(encoding="utf-8"),
        filename="catalog.toml",
        actor=Actor.system("test"),
        now=NOW,
    )
    session.flush()


@pytest.fixture
def admin(client, session):
    make_staff(session, email="admin@example.com", role="admin")
    login_staff(client, "admin@example.com")
    return client


def host_id(session) -> str:
    return str(session.exec(select(HostCarrier.id).where(HostCarrier.code == "HOSTA")).one())


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_numbers_page_shows_block_counts(admin, catalog):
    page = admin.get("/console/numbers").get_data(as_text=True)
    assert "+8617012340000" in page
    assert 'data-status="available">10000<' in page


def test_block_loaded_from_the_console(admin, catalog, session):
    response = admin.post(
        "/console/numbers/blocks",
        data={
            "host_id": host_id(session),
            "first": "+8617012350000",
            "last": "+8617012350099",
            "csrf_token": csrf_token(admin, "/console/numbers"),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    count = session.exec(
        select(PhoneNumber).where(PhoneNumber.msisdn.startswith("+86170123500"))
    ).all()  # type: ignore[union-attr]
    assert len(count) == 100


def test_overlapping_block_is_refused_on_the_form(admin, catalog, session):
    response = admin.post(
        "/console/numbers/blocks",
        data={
            "host_id": host_id(session),
            "first": "+8617012345000",
            "last": "+8617012355000",
            "csrf_token": csrf_token(admin, "/console/numbers"),
        },
    )
    assert response.status_code == 422
    assert len(session.exec(select(PhoneNumber)).all()) == 10_000


def test_number_search_page(admin, catalog):
    page = admin.get("/console/numbers/search?pattern=8888&mode=ends_with").get_data(as_text=True)
    assert "+8617012348888" in page
    bad = admin.get("/console/numbers/search?pattern=12a&mode=ends_with")
    assert bad.status_code == 422


def test_sim_upload_with_a_bad_row_imports_nothing_and_lists_it(admin, catalog, session):
    from io import BytesIO

    data = (
        b"iccid,imsi,kind,lpa\n8986012600000000039,460019000000003,physical,\n"
        b"8986012600000000012,460019000000004,physical,\n"
    )
    response = admin.post(
        "/console/sims",
        data={
            "host_id": host_id(session),
            "file": (BytesIO(data), "sims.csv"),
            "csrf_token": csrf_token(admin, "/console/sims"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "8986012600000000012" in response.get_data(as_text=True)
    assert session.exec(select(Sim)).all() == []


def test_hosts_page_flags_non_compliant_prices(admin, catalog):
    response = admin.post(
        "/console/hosts/HOSTA/rate-cards",
        data={
            "effective_from": "2026-06-01",
            "data_per_mb": "0.0100",
            "voice_per_min": "0.04",
            "sms_per_msg": "0.015",
            "line_per_month": "1.20",
            "number_per_month": "0.10",
            "retail_data_per_mb": "0.0100",
            "retail_voice_per_min": "0.10",
            "retail_sms_per_msg": "0.10",
            "retail_line_per_month": "8.00",
            "retail_number_per_month": "1.00",
            "csrf_token": csrf_token(admin, "/console/hosts/HOSTA"),
        },
    )
    assert response.status_code == 302
    page = admin.get("/console/hosts/HOSTA").get_data(as_text=True)
    assert 'data-compliance="non-compliant"' in page


def test_rate_card_with_excess_precision_is_refused_beside_the_field(admin, catalog):
    response = admin.post(
        "/console/hosts/HOSTA/rate-cards",
        data={
            "effective_from": "2026-06-01",
            "data_per_mb": "0.0000001",
            "voice_per_min": "0.04",
            "sms_per_msg": "0.015",
            "line_per_month": "1.20",
            "number_per_month": "0.10",
            "retail_data_per_mb": "0.01",
            "retail_voice_per_min": "0.10",
            "retail_sms_per_msg": "0.10",
            "retail_line_per_month": "8.00",
            "retail_number_per_month": "1.00",
            "csrf_token": csrf_token(admin, "/console/hosts/HOSTA"),
        },
    )
    assert response.status_code == 422
    assert "more than 6 decimal places" in response.get_data(as_text=True)


PLAN_FORM = {
    "code": "BIG",
    "name_zh": "大流量",
    "name_en": "Big",
    "description_zh": "",
    "description_en": "",
    "price": "10.00",
    "validity_days": "30",
    "data_mb": "102400",
    "voice_min": "0",
    "sms": "0",
    "overage_data_per_mb": "0.05",
    "overage_voice_per_min": "0.15",
    "overage_sms": "0.10",
    "voice_increment_s": "60",
    "auto_renew_default": "y",
}


def test_negative_margin_needs_an_audited_override(admin, catalog, session):
    created = admin.post(
        "/console/plans/new",
        data={
            **PLAN_FORM,
            "host_id": host_id(session),
            "csrf_token": csrf_token(admin, "/console/plans/new"),
        },
    )
    assert created.status_code == 302
    plan = session.exec(select(Plan).where(Plan.code == "BIG")).one()
    preview = admin.post(
        "/console/plans/margin-preview",
        data={
            **PLAN_FORM,
            "host_id": host_id(session),
            "csrf_token": csrf_token(admin, "/console/plans/BIG"),
        },
    )
    assert preview.get_json()["negative"] is True
    token = csrf_token(admin, "/console/plans/BIG")
    refused = admin.post(
        f"/console/plans/versions/{plan.id}/publish",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "margin" in refused.get_data(as_text=True).lower()
    session.refresh(plan)
    assert plan.status == "draft"
    admin.post(
        f"/console/plans/versions/{plan.id}/publish",
        data={"csrf_token": token, "override_negative_margin": "y", "reason": "launch promotion"},
    )
    session.refresh(plan)
    assert plan.status == "published" and plan.margin_override
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.action == "plan.publish_override")
    ).one()
    assert "launch promotion" in str(audit.details)


def test_editing_a_published_plan_makes_a_new_version(admin, catalog, session):
    response = admin.post(
        "/console/plans/LITE30",
        data={
            **PLAN_FORM,
            "host_id": host_id(session),
            "code": "LITE30",
            "price": "45.00",
            "data_mb": "10240",
            "voice_min": "200",
            "sms": "100",
            "csrf_token": csrf_token(admin, "/console/plans/LITE30"),
        },
    )
    assert response.status_code == 302
    versions = session.exec(select(Plan).where(Plan.code == "LITE30").order_by(Plan.version)).all()
    assert [(v.version, v.status, v.price_minor) for v in versions] == [
        (1, "published", 3900),
        (2, "draft", 4500),
    ]


@pytest.mark.parametrize(("lang", "name"), [("zh_Hans", "轻享套餐"), ("en", "Lite")])
def test_store_lists_published_plans_in_both_languages(app, db, catalog, lang, name):
    client = app.test_client()
    page = client.get(f"/?lang={lang}").get_data(as_text=True)
    assert name in page
    assert "39.00" in page


def test_supply_api_round_trip(client, session, catalog):
    _key, token = make_api_key(session, role="wholesale")
    plan = client.get("/api/v1/plans/LITE30", headers=bearer(token)).get_json()
    assert plan["margin"]["margin_minor"] == 270
    assert plan["versions"][0]["status"] == "published"
    numbers = client.get(
        "/api/v1/numbers?pattern=8888&mode=ends_with", headers=bearer(token)
    ).get_json()
    assert [n["msisdn"] for n in numbers["items"]] == ["+8617012348888"]
    hosts = client.get("/api/v1/hosts", headers=bearer(token)).get_json()["items"]
    assert hosts[0]["current_rate_card"]["non_compliant_services"] == []
    rejected = client.post(
        "/api/v1/sims/import",
        headers=bearer(token),
        json={
            "host": "HOSTA",
            "csv": "iccid,imsi,kind,lpa\n8986012600000000012,460019000000004,esim,\n",
        },
    )
    assert rejected.status_code == 422
    rejects = rejected.get_json()["error"]["details"]["rejects"]
    assert rejects[0]["line"] == 2
    _care_key, care_token = make_api_key(session, role="care", name="care")
    assert client.put("/api/v1/plans/X", headers=bearer(care_token), json={}).status_code == 403


def test_addons_through_console_and_api(admin, client, session, catalog):
    response = admin.post(
        "/console/addons",
        data={
            "code": "DATA5G",
            "name_zh": "5GB 流量包",
            "name_en": "5 GB pack",
            "price": "10.00",
            "data_mb": "5120",
            "csrf_token": csrf_token(admin, "/console/addons"),
        },
    )
    assert response.status_code == 302
    admin.post(
        "/console/addons/DATA5G/status",
        data={"status": "published", "csrf_token": csrf_token(admin, "/console/addons")},
    )
    _key, token = make_api_key(session, role="wholesale", name="addons")
    items = client.get("/api/v1/addons", headers=bearer(token)).get_json()["items"]
    assert [(a["code"], a["status"], a["price_minor"]) for a in items] == [
        ("DATA5G", "published", 1000)
    ]
    changed = client.put(
        "/api/v1/addons/DATA5G",
        headers=bearer(token),
        json={"names": {"en": "5 GB pack"}, "price_minor": 1200, "data_mb": 5120},
    ).get_json()
    assert (changed["status"], changed["price_minor"]) == ("published", 1200)
