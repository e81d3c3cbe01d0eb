"""Password reset by e-mail: neutral answers (no account enumeration), rate limits,
hashed single-use tokens that expire in an hour, the same password rules as
registration, and the link in the queued notification."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from app.auth import resets
from app.auth.errors import ResetRequestsThrottled, ResetTokenInvalid, WeakPassword
from app.auth.models import PasswordResetToken
from app.auth.passwords import verify_password
from app.core.audit import AuditEntry
from app.notifications.models import Notification
from tests.conftest import csrf_token
from tests.factories import NOW, PASSWORD, make_subscriber

NEW_PASSWORD = "a-brand-new-password"
URL_RE = re.compile(r"/password/reset/([A-Za-z0-9_-]+)")


def _url(token: str) -> str:
    return f"https://shop.example/password/reset/{token}"


def _request(session: Session, email: str, *, ip: str = "10.0.0.1", now: datetime = NOW) -> bool:
    return resets.request_password_reset(session, email=email, ip=ip, reset_url=_url, now=now)


def _token_from_outbox(session: Session) -> str:
    row = session.exec(
        select(Notification)
        .where(Notification.kind == "password_reset")
        .order_by(
            Notification.id.desc()  # type: ignore[union-attr]
        )
    ).first()
    assert row is not None
    match = URL_RE.search(row.data["reset_url"])
    assert match
    return match.group(1)


def _count(session: Session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


# -- services -----------------------------------------------------------------------------


def test_a_request_stores_only_the_hash_and_queues_the_link(session) -> None:
    account = make_subscriber(session, email="forgot@example.com")
    assert _request(session, "Forgot@Example.com ") is True
    token = _token_from_outbox(session)
    assert len(token) >= 43  # token_urlsafe(32)
    row = session.exec(select(PasswordResetToken)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_hash
    assert row.expires_at == NOW + timedelta(hours=1) and row.account_id == account.id
    notice = session.exec(select(Notification)).one()
    assert notice.recipient == "forgot@example.com" and notice.locale == "zh_Hans"
    assert notice.account_id == account.id and notice.status == "pending"
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.action == "subscriber.password_reset_request")
    ).one()
    assert audit.ip == "10.0.0.1" and token not in str(audit.details)


def test_an_unknown_email_queues_nothing_but_is_audited(session) -> None:
    assert _request(session, "nobody@example.com") is False
    assert _count(session, PasswordResetToken) == 0 and _count(session, Notification) == 0
    audit = session.exec(select(AuditEntry)).all()[-1]
    assert audit.action == "subscriber.password_reset_request"
    assert "nobody" not in str(audit.details) and audit.target_id == ""


def test_a_disabled_account_gets_no_link(session) -> None:
    account = make_subscriber(session, email="gone@example.com")
    account.is_active = False
    session.add(account)
    assert _request(session, "gone@example.com") is False


def test_an_account_gets_at_most_three_links_an_hour(session) -> None:
    make_subscriber(session, email="often@example.com")
    sent = [_request(session, "often@example.com", ip=f"10.0.0.{i}") for i in range(5)]
    assert sent == [True, True, True, False, False]
    assert _request(session, "often@example.com", now=NOW + timedelta(hours=1, seconds=1))


def test_an_address_asking_too_often_is_throttled(session) -> None:
    for i in range(10):
        _request(session, f"x{i}@example.com", ip="10.9.9.9")
    with pytest.raises(ResetRequestsThrottled):
        _request(session, "y@example.com", ip="10.9.9.9")
    # Another address, or the same an hour later, may ask.
    _request(session, "y@example.com", ip="10.9.9.8")
    _request(session, "y@example.com", ip="10.9.9.9", now=NOW + timedelta(hours=1, seconds=1))


def test_reset_sets_the_password_and_every_link_of_the_account_stops_working(session) -> None:
    account = make_subscriber(session, email="reset@example.com")
    _request(session, "reset@example.com")
    older = _token_from_outbox(session)
    _request(session, "reset@example.com", now=NOW + timedelta(minutes=1))
    newer = _token_from_outbox(session)
    assert older != newer

    resets.reset_password(
        session, token=newer, password=NEW_PASSWORD, now=NOW + timedelta(minutes=2)
    )

    session.refresh(account)
    assert verify_password(account.password_hash, NEW_PASSWORD)
    assert not verify_password(account.password_hash, PASSWORD)
    for token in (newer, older):
        with pytest.raises(ResetTokenInvalid):
            resets.reset_password(session, token=token, password="another-password-1", now=NOW)
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.action == "subscriber.password_reset")
    ).one()
    assert NEW_PASSWORD not in str(audit.details) and newer not in str(audit.details)


def test_a_link_expires_after_one_hour(session) -> None:
    make_subscriber(session, email="late@example.com")
    _request(session, "late@example.com")
    token = _token_from_outbox(session)
    expiry = NOW + timedelta(hours=1)
    assert resets.find_reset_token(session, token=token, now=expiry - timedelta(seconds=1))
    assert resets.find_reset_token(session, token=token, now=expiry) is None
    with pytest.raises(ResetTokenInvalid):
        resets.reset_password(session, token=token, password=NEW_PASSWORD, now=expiry)


@pytest.mark.parametrize("password", ["short", " " * 12, "x" * 257])
def test_the_registration_password_rules_apply(session, password) -> None:
    account = make_subscriber(session, email="weak@example.com")
    before = account.password_hash
    _request(session, "weak@example.com")
    token = _token_from_outbox(session)
    with pytest.raises(WeakPassword):
        resets.reset_password(session, token=token, password=password, now=NOW)
    session.refresh(account)
    assert account.password_hash == before
    # The link still works after a refused password.
    resets.reset_password(session, token=token, password=NEW_PASSWORD, now=NOW)


@pytest.mark.parametrize("token", ["", "nope", "x" * 500])
def test_unknown_tokens_are_invalid(session, token) -> None:
    with pytest.raises(ResetTokenInvalid):
        resets.reset_password(session, token=token, password=NEW_PASSWORD, now=NOW)


# -- pages --------------------------------------------------------------------------------


def _forgot(client, email: str):
    return client.post(
        "/password/forgot",
        data={"email": email, "csrf_token": csrf_token(client, "/password/forgot")},
    )


def test_the_login_page_links_to_the_reset(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "data-forgot-password" in page and "/password/forgot" in page


def test_known_and_unknown_emails_get_the_same_answer(client, session) -> None:
    make_subscriber(session, email="known@example.com")
    session.commit()
    known = _forgot(client, "known@example.com")
    unknown = _forgot(client, "unknown@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", known.get_data(as_text=True)) == strip.sub(
        "", unknown.get_data(as_text=True)
    )
    assert "data-reset-sent" in known.get_data(as_text=True)
    assert _count(session, Notification) == 1


def test_the_link_in_the_mail_resets_the_password_once(client, session) -> None:
    make_subscriber(session, email="flow@example.com")
    session.commit()
    _forgot(client, "flow@example.com")
    session.expire_all()
    notice = session.exec(select(Notification)).one()
    link = notice.data["reset_url"]
    assert link.startswith("http://localhost/password/reset/")
    path = link.removeprefix("http://localhost")

    page = client.get(path)
    assert page.status_code == 200 and "Choose a new password" in page.get_data(as_text=True)
    token = csrf_token(client, path)
    mismatch = client.post(
        path, data={"password": NEW_PASSWORD, "confirm": "different-one-123", "csrf_token": token}
    )
    assert mismatch.status_code == 422
    short = client.post(path, data={"password": "short", "confirm": "short", "csrf_token": token})
    assert short.status_code == 422
    done = client.post(
        path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token}
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")

    login = client.post(
        "/login",
        data={
            "email": "flow@example.com",
            "password": NEW_PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert login.status_code == 302 and login.headers["Location"].endswith("/account")
    used = client.get(path)
    assert used.status_code == 404 and "data-reset-invalid" in used.get_data(as_text=True)


def test_a_bad_link_shows_a_way_to_ask_again(client) -> None:
    page = client.get("/password/reset/not-a-real-token")
    assert page.status_code == 404
    assert "/password/forgot" in page.get_data(as_text=True)


def test_bad_input_on_the_request_form(client, session) -> None:
    assert _forgot(client, "").status_code == 422
    no_csrf = client.post("/password/forgot", data={"email": "a@example.com"})
    assert no_csrf.status_code in (400, 422)
    assert _count(session, Notification) == 0


def test_the_request_form_is_rate_limited_per_address(client, session) -> None:
    for i in range(10):
        assert _forgot(client, f"n{i}@example.com").status_code == 200
    throttled = _forgot(client, "n10@example.com")
    assert throttled.status_code == 429
    assert "Too many requests" in throttled.get_data(as_text=True)


def test_pages_work_in_chinese(zh_client) -> None:
    assert zh_client.get("/password/forgot").status_code == 200
    assert zh_client.get("/password/reset/zzz").status_code == 404
