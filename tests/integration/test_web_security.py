"""CSRF, login throttling, sessions, cookies, headers and error pages."""

import re

import pytest
from sqlmodel import select

from app.auth.models import LoginAttempt, StaffUser
from tests.conftest import csrf_token
from tests.factories import PASSWORD, login_staff, make_staff


def test_post_without_csrf_token_is_refused_and_changes_nothing(client, session):
    make_staff(session, email="admin@example.com")
    login_staff(client, "admin@example.com")
    response = client.post(
        "/console/staff",
        data={"email": "new@example.com", "role": "care", "password": "long-enough-pw"},
    )
    assert response.status_code == 400
    assert "Reload the page and try again" in response.get_data(as_text=True)
    assert session.exec(select(StaffUser).where(StaffUser.email == "new@example.com")).all() == []


def test_post_with_a_forged_csrf_token_is_refused(client, session):
    make_staff(session, email="admin@example.com")
    response = client.post(
        "/console/login",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": "forged"},
    )
    assert response.status_code == 400
    assert session.exec(select(LoginAttempt)).all() == []


def test_staff_created_through_the_console_with_csrf(client, session):
    make_staff(session, email="admin@example.com")
    login_staff(client, "admin@example.com")
    response = client.post(
        "/console/staff",
        data={
            "email": "new@example.com",
            "role": "care",
            "password": "long-enough-pw",
            "name": "N",
            "csrf_token": csrf_token(client, "/console/staff"),
        },
    )
    assert response.status_code == 302
    user = session.exec(select(StaffUser).where(StaffUser.email == "new@example.com")).one()
    assert user.role == "care"


def test_duplicate_staff_in_the_console_shows_the_reason_beside_the_field(client, session):
    make_staff(session, email="admin@example.com")
    login_staff(client, "admin@example.com")
    response = client.post(
        "/console/staff",
        data={
            "email": "admin@example.com",
            "role": "care",
            "password": "long-enough-pw",
            "csrf_token": csrf_token(client, "/console/staff"),
        },
    )
    assert response.status_code == 422
    assert "admin@example.com" in response.get_data(as_text=True)
    assert len(session.exec(select(StaffUser)).all()) == 1


def test_lockout_through_the_login_page(client, session, app):
    make_staff(session, email="lock@example.com")
    limit = app.extensions["mvno.settings"].login_max_failures
    for _ in range(limit):
        response = login_staff(client, "lock@example.com", "wrong-password")
        assert response.status_code == 401
    response = login_staff(client, "lock@example.com", PASSWORD)
    assert response.status_code == 429
    assert client.get("/console/").status_code == 302  # still signed out


def test_login_sets_a_hardened_session_cookie(client, session):
    make_staff(session, email="cookie@example.com")
    response = login_staff(client, "cookie@example.com")
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if "mvno_session=" in h)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie


def test_login_ignores_offsite_next(client, session):
    make_staff(session, email="next@example.com")
    token = csrf_token(client, "/console/login")
    for target in ["//evil.example/x", "https://evil.example/", "/\\evil.example"]:
        response = client.post(
            f"/console/login?next={target}",
            data={"email": "next@example.com", "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == "/console/", target
        client.post("/console/logout", data={"csrf_token": csrf_token(client, "/console/")})
        token = csrf_token(client, "/console/login")


def test_password_change_signs_out_other_sessions(app, client, session):
    make_staff(session, email="pw@example.com")
    other = app.test_client()
    login_staff(client, "pw@example.com")
    login_staff(other, "pw@example.com")
    assert other.get("/console/").status_code == 200
    response = client.post(
        "/console/password",
        data={
            "current_password": PASSWORD,
            "new_password": "brand-new-password",
            "confirm": "brand-new-password",
            "csrf_token": csrf_token(client, "/console/password"),
        },
    )
    assert response.status_code == 302
    assert client.get("/console/").status_code == 200
    assert other.get("/console/").status_code == 302


def test_disabled_staff_is_signed_out_at_once(client, session):
    from app.auth.services import set_staff_active
    from app.core.audit import Actor
    from tests.factories import NOW

    user = make_staff(session, email="gone@example.com")
    login_staff(client, "gone@example.com")
    assert client.get("/console/").status_code == 200
    set_staff_active(session, staff_id=user.id, active=False, actor=Actor.cli(), now=NOW)
    session.flush()
    assert client.get("/console/").status_code == 302


@pytest.mark.parametrize("path", ["/", "/console/login", "/api/v1/openapi.json", "/nowhere"])
def test_security_headers_on_every_response(client, path):
    headers = client.get(path).headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


def test_unknown_page_is_a_page_and_unknown_api_path_is_json(client):
    page = client.get("/nowhere")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    api = client.get("/api/v1/nowhere")
    assert api.status_code == 404
    assert api.get_json()["error"]["code"] == "not_found"


def test_unexpected_error_shows_no_stack_trace(client, session, monkeypatch):
    from app.analytics import dashboard
    from tests.factories import make_api_key

    def broken(_session):
        raise RuntimeError("secret internals")

    make_staff(session, email="boom@example.com")
    _key, token = make_api_key(session)
    login_staff(client, "boom@example.com")
    monkeypatch.setattr(dashboard, "count_subscribers", broken)

    page = client.get("/console/")
    body = page.get_data(as_text=True)
    assert page.status_code == 500
    assert "secret internals" not in body and "Traceback" not in body
    assert re.search(r"<html", body)

    api = client.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 500
    assert api.get_json()["error"]["code"] == "internal_error"
    assert "secret internals" not in api.get_data(as_text=True)


def test_nul_characters_are_refused_everywhere(client, session):
    from tests.factories import make_api_key

    _key, token = make_api_key(session)
    api = client.get("/api/v1/audit?action=a%00b", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 422
    assert api.get_json()["error"]["code"] == "invalid_input"
    body = client.post(
        "/api/v1/api-keys",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "a\u0000b", "role": "care"},
    )
    assert body.status_code == 422
    form = client.post(
        "/login",
        data={
            "email": "a\x00@example.com",
            "password": "x",
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert form.status_code == 422
    assert "NUL" in form.get_data(as_text=True)
