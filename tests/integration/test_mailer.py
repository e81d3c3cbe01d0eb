"""The notification sender against a real local SMTP server (aiosmtpd): delivery,
STARTTLS and login, failure → retry with backoff → dead; the CLI and the job."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import Session

from app.core.db import Database
from app.jobs import JOBS, run_job
from app.notifications.mailer import (
    MAX_ATTEMPTS,
    SmtpConfig,
    SmtpMailer,
    backoff,
    send_notifications,
    send_pending,
)
from app.notifications.models import Notification
from app.notifications.services import notify
from tests.conftest import csrf_token
from tests.factories import NOW, login_staff, make_api_key, make_staff
from tests.unit.notifications.helpers import RENDERER, RESET_URL, queue, reread


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[Any]:
        return [message_from_bytes(e.content) for e in self.envelopes]  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_a_notice_arrives_at_the_smtp_server(db: Database, session, smtp_server) -> None:
    controller, inbox = smtp_server
    notification_id = queue(session)
    mailer = SmtpMailer(
        SmtpConfig(host="127.0.0.1", port=controller.port, sender="shop@example.com")
    )

    report = send_pending(db, now=NOW, renderer=RENDERER, mailer=mailer)

    assert report.as_dict() == {"sent": 1, "failed": 0, "dead": 0}
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "shop@example.com" and envelope.rcpt_tos == ["sub@example.com"]
    [message] = inbox.messages()
    assert message["Subject"] == "Reset your password"
    assert message["To"] == "sub@example.com" and message["From"] == "shop@example.com"
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert RESET_URL in body
    assert reread(session, notification_id).status == "sent"


def test_a_chinese_notice_arrives_encoded(db: Database, session, smtp_server) -> None:
    controller, inbox = smtp_server
    notify(
        session,
        kind="low_balance",
        recipient="sub@example.com",
        now=NOW,
        data={"balance_minor": 88},
    )
    session.commit()
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=controller.port))
    assert send_pending(db, now=NOW, renderer=RENDERER, mailer=mailer).sent == 1
    [message] = inbox.messages()
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert "¥0.88" in body
    assert str(make_header(decode_header(message["Subject"])))


def test_starttls_is_used_when_offered_and_login_follows(db: Database, session, tmp_path) -> None:
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        server_hostname="localhost",
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        notification_id = queue(session)
        client_tls = ssl.create_default_context(cafile=str(cert))
        client_tls.check_hostname = False  # the server is reached as 127.0.0.1
        config = SmtpConfig(host="127.0.0.1", port=controller.port, user="shop", password="s3cret")
        report = send_pending(
            db, now=NOW, renderer=RENDERER, mailer=SmtpMailer(config, tls_context=client_tls)
        )
    finally:
        controller.stop()
    assert report.sent == 1, reread(session, notification_id).last_error
    assert logins == [(b"shop", b"s3cret")]
    assert len(inbox.envelopes) == 1


def test_server_down_retries_with_backoff_then_dead(db: Database, session) -> None:
    notification_id = queue(session)
    closed_port = free_port()  # nothing listens here
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=closed_port, timeout_seconds=2))
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = send_pending(db, now=now, renderer=RENDERER, mailer=mailer)
        row = reread(session, notification_id)
        assert row.attempts == attempt and "ConnectionRefusedError" in row.last_error
        if attempt < MAX_ATTEMPTS:
            assert report.failed == 1 and row.status == "pending"
            assert row.next_attempt_at == now + backoff(attempt)
            now = row.next_attempt_at
    assert report.dead == 1 and reread(session, notification_id).status == "dead"


def test_a_notice_sent_after_the_server_comes_back(db: Database, session) -> None:
    notification_id = queue(session)
    port = free_port()
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=port, timeout_seconds=2))
    assert send_pending(db, now=NOW, renderer=RENDERER, mailer=mailer).failed == 1
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        retry_at = NOW + backoff(1)
        assert send_pending(db, now=retry_at, renderer=RENDERER, mailer=mailer).sent == 1
    finally:
        controller.stop()
    assert len(inbox.envelopes) == 1
    row = reread(session, notification_id)
    assert row.status == "sent" and row.attempts == 2 and row.last_error == ""


def test_settings_choose_smtp_or_the_log(app, db: Database, session, smtp_server) -> None:
    controller, inbox = smtp_server
    settings = app.extensions["mvno.settings"]
    queue(session)
    outbox = settings.instance_path / "mail" / "outbox.jsonl"
    before = outbox.read_text(encoding="utf-8").count("\n") if outbox.exists() else 0
    smtp = replace(settings, smtp={"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port)})
    assert send_notifications(db, now=NOW, settings=smtp).sent == 1
    assert len(inbox.envelopes) == 1
    queue(session)
    assert send_notifications(db, now=NOW, settings=settings).sent == 1
    assert len(inbox.envelopes) == 1
    assert outbox.read_text(encoding="utf-8").count("\n") == before + 1


def test_the_cli_sends_due_notices(app, db: Database, session) -> None:
    queue(session)
    result = app.test_cli_runner().invoke(
        args=["notifications", "send", "--json", "--now", "2026-11-01T08:00:00Z", "--limit", "5"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"sent": 1, "failed": 0, "dead": 0}
    text = app.test_cli_runner().invoke(
        args=["notifications", "send", "--now", "2026-11-01T08:00:00Z"]
    )
    assert text.exit_code == 0 and text.output.strip() == "sent 0, failed 0, dead 0"
    bad = app.test_cli_runner().invoke(args=["notifications", "send", "--now", "yesterday"])
    assert bad.exit_code == 1


def test_the_scheduler_job_sends(app, db: Database, session) -> None:
    notification_id = queue(session)
    job = next(job for job in JOBS if job.id == "send_notifications")
    result = run_job(db, job, now=NOW, settings=app.extensions["mvno.settings"])
    assert result == {"sent": 1, "failed": 0, "dead": 0}
    assert reread(session, notification_id).status == "sent"


# -- console and API ------------------------------------------------------------------------


def _dead(session: Session) -> int:
    notification_id = queue(session)
    row = session.get(Notification, notification_id)
    assert row is not None
    row.status, row.attempts, row.last_error = "dead", MAX_ATTEMPTS, "ConnectionRefusedError"
    session.add(row)
    session.commit()
    return notification_id


def test_console_lists_notices_without_their_links_and_retries(client, session) -> None:
    notification_id = _dead(session)
    make_staff(session, role="care", email="care-mail@example.com")
    session.commit()
    login_staff(client, "care-mail@example.com")
    page = client.get("/console/notifications?status=dead")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-notification="{notification_id}"' in text and "sub@example.com" in text
    assert "password/reset/tok" not in text  # the link is never shown to staff
    token = csrf_token(client, "/console/notifications")
    retried = client.post(
        f"/console/notifications/{notification_id}/retry",
        data={"csrf_token": token, "status": "dead"},
    )
    assert retried.status_code == 302
    assert reread(session, notification_id).status == "pending"
    again = client.post(
        f"/console/notifications/{notification_id}/retry", data={"csrf_token": token}
    )
    assert again.status_code == 302
    assert "only those can be retried" in client.get("/console/notifications").get_data(
        as_text=True
    )


def test_an_auditor_sees_notices_but_cannot_retry(client, session) -> None:
    notification_id = _dead(session)
    make_staff(session, role="auditor", email="audit-mail@example.com")
    session.commit()
    login_staff(client, "audit-mail@example.com")
    page = client.get("/console/notifications").get_data(as_text=True)
    assert f'data-notification="{notification_id}"' in page
    assert f"/console/notifications/{notification_id}/retry" not in page
    token = csrf_token(client, "/console/notifications")
    denied = client.post(
        f"/console/notifications/{notification_id}/retry", data={"csrf_token": token}
    )
    assert denied.status_code == 403
    assert reread(session, notification_id).status == "dead"


def test_api_lists_and_retries_notices(client, session) -> None:
    notification_id = _dead(session)
    _key, viewer = make_api_key(session, role="auditor")
    _key, manager = make_api_key(session, role="care")
    session.commit()
    listing = client.get(
        "/api/v1/notifications?status=dead", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert listing.status_code == 200
    body = listing.get_json()
    assert body["total"] == 1 and body["items"][0]["id"] == notification_id
    assert "data" not in body["items"][0] and "body" not in body["items"][0]
    denied = client.post(
        f"/api/v1/notifications/{notification_id}/retry",
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert denied.status_code == 403
    retried = client.post(
        f"/api/v1/notifications/{notification_id}/retry",
        headers={"Authorization": f"Bearer {manager}"},
    )
    assert retried.status_code == 200 and retried.get_json()["status"] == "pending"
    conflict = client.post(
        f"/api/v1/notifications/{notification_id}/retry",
        headers={"Authorization": f"Bearer {manager}"},
    )
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "notification_state"
    bad = client.get(
        "/api/v1/notifications?status=lost", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert bad.status_code == 422
    missing = client.post(
        "/api/v1/notifications/999999/retry", headers={"Authorization": f"Bearer {manager}"}
    )
    assert missing.status_code == 404
