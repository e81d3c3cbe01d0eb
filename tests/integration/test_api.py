"""JSON API: keys, roles, error shape, OpenAPI document."""

import re

import pytest
from sqlmodel import select

from app.auth.models import ApiKey, StaffUser
from app.core.audit import AuditEntry
from tests.factories import make_api_key, make_staff


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_token(session):
    _key, token = make_api_key(session, role="admin")
    return token


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"}]
)
def test_api_needs_a_valid_key(client, headers):
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {
        "error": {"code": "unauthorized", "message": "A valid API key is required.", "field": None}
    }


def test_me_describes_the_key(client, session):
    key, token = make_api_key(session, role="auditor", name="reports")
    body = client.get("/api/v1/me", headers=bearer(token)).get_json()
    assert body["prefix"] == key.prefix
    assert body["role"] == "auditor"
    assert "audit.view" in body["permissions"]
    assert "staff.manage" not in body["permissions"]


def test_role_scoping_refuses_with_403(client, session):
    _key, token = make_api_key(session, role="care")
    response = client.post(
        "/api/v1/staff",
        headers=bearer(token),
        json={"email": "x@example.com", "role": "care", "password": "long-enough-pw"},
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "permission_denied"
    assert session.exec(select(StaffUser)).all() == []


def test_create_staff_through_the_api_is_audited_against_the_key(client, session, admin_token):
    response = client.post(
        "/api/v1/staff",
        headers=bearer(admin_token),
        json={"email": "New@Example.com", "role": "finance", "password": "long-enough-pw"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "new@example.com"
    assert "password" not in body and "password_hash" not in body
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "staff.create")).one()
    assert audit.actor_kind == "api_key"


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"role": "care", "password": "long-enough-pw"}, 422, "email"),
        ({"email": "bad", "role": "care", "password": "long-enough-pw"}, 422, "email"),
        ({"email": "a@example.com", "role": "root", "password": "long-enough-pw"}, 422, "role"),
        ({"email": "a@example.com", "role": "care", "password": "short"}, 422, "password"),
        (
            {"email": "taken@example.com", "role": "care", "password": "long-enough-pw"},
            409,
            "email",
        ),
    ],
)
def test_bad_staff_input_gets_the_error_shape(client, session, admin_token, payload, status, field):
    make_staff(session, email="taken@example.com")
    response = client.post("/api/v1/staff", headers=bearer(admin_token), json=payload)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["field"] == field
    assert error["message"]
    assert len(session.exec(select(StaffUser)).all()) == 1


def test_malformed_json_is_a_clear_error(client, admin_token):
    response = client.post(
        "/api/v1/staff",
        headers={**bearer(admin_token), "Content-Type": "application/json"},
        data="{not json",
    )
    assert response.status_code in (400, 422)
    assert "error" in response.get_json()


def test_api_key_lifecycle(client, session, admin_token):
    created = client.post(
        "/api/v1/api-keys", headers=bearer(admin_token), json={"name": "billing", "role": "finance"}
    )
    assert created.status_code == 201
    new = created.get_json()
    assert new["token"].startswith(f"mvno_{new['prefix']}_")
    listed = client.get("/api/v1/api-keys", headers=bearer(admin_token)).get_json()["items"]
    assert {k["prefix"] for k in listed} >= {new["prefix"]}
    assert all("token" not in k and "key_hash" not in k for k in listed)
    assert client.get("/api/v1/me", headers=bearer(new["token"])).status_code == 200
    revoked = client.post(f"/api/v1/api-keys/{new['id']}/revoke", headers=bearer(admin_token))
    assert revoked.status_code == 200
    assert revoked.get_json()["revoked_at"]
    assert client.get("/api/v1/me", headers=bearer(new["token"])).status_code == 401
    assert session.get(ApiKey, new["id"]).revoked_at is not None


def test_unknown_ids_are_404_json(client, admin_token):
    response = client.post("/api/v1/api-keys/987654/revoke", headers=bearer(admin_token))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "api_key_not_found"


def test_audit_is_paged(client, session, admin_token):
    for i in range(3):
        make_staff(session, email=f"p{i}@example.com")
    page = client.get(
        "/api/v1/audit?per_page=2&action=staff.create", headers=bearer(admin_token)
    ).get_json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    bad = client.get("/api/v1/audit?per_page=0", headers=bearer(admin_token))
    assert bad.status_code == 422
    assert bad.get_json()["error"]["field"] == "per_page"


def test_openapi_document_is_generated_from_the_code(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    api_rules = {
        re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", r.rule)
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("api.")
    }
    assert api_rules == set(spec["paths"])
    assert spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    post = spec["paths"]["/api/v1/staff"]["post"]
    assert {"201", "401", "403", "409", "422"} <= set(post["responses"])


@pytest.mark.parametrize("query", ["?actoin=staff.create", "?=1", "?page=1&page=2"])
def test_misspelt_empty_or_repeated_query_parameters_are_refused(client, admin_token, query):
    response = client.get(f"/api/v1/audit{query}", headers=bearer(admin_token))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("active", [0, 1, "true", None])
def test_json_booleans_must_be_booleans(client, session, admin_token, active):
    user = make_staff(session, email="flag@example.com")
    response = client.post(
        f"/api/v1/staff/{user.id}/active", headers=bearer(admin_token), json={"active": active}
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "active"


@pytest.mark.parametrize(("value", "status"), [(50, 200), (50.0, 200), (50.5, 422), ("50", 422)])
def test_json_integers_are_whole_numbers(client, session, admin_token, value, status):
    response = client.get(f"/api/v1/audit?per_page={value}", headers=bearer(admin_token))
    body = client.put(
        "/api/v1/golden-tiers/aaaa",
        headers=bearer(admin_token),
        json={"surcharge_minor": value, "enabled": True},
    )
    assert response.status_code in (200, 422)
    assert body.status_code == status
