"""The notification sender: rendering per kind and locale, the log mailer, retries
with backoff, dead letters, leases."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from app.core.db import Database
from app.core.errors import ConfigError
from app.notifications.mailer import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    LogMailer,
    MailRenderer,
    Message,
    SmtpConfig,
    backoff,
    record_result,
    send_pending,
)
from app.notifications.models import NOTIFICATION_KINDS
from app.notifications.services import notify
from tests.conftest import make_settings
from tests.factories import NOW
from tests.unit.notifications.helpers import RENDERER, RESET_URL, queue, reread


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: Message) -> None:
        self.calls += 1
        raise ConnectionRefusedError("mail server down")


# -- rendering --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NOTIFICATION_KINDS)
@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_every_kind_renders_a_subject_and_body_even_with_no_data(kind, locale) -> None:
    subject, body = RENDERER.render(kind=kind, locale=locale, data={})
    assert subject and "\n" not in subject
    assert body.strip()


def test_password_reset_mail_carries_the_link() -> None:
    subject, body = RENDERER.render(
        kind="password_reset",
        locale="en",
        data={"reset_url": "https://shop.example/password/reset/tok123", "expires_minutes": 60},
    )
    assert subject == "Reset your password"
    assert "https://shop.example/password/reset/tok123" in body
    assert "60 minutes" in body


def test_money_and_times_are_shown_in_the_locale_and_time_zone() -> None:
    data = {
        "msisdn": "+8617012340000",
        "amount_minor": 3900,
        "currency": "CNY",
        "period_end": "2026-12-01T00:00:00+00:00",
    }
    _subject, en = RENDERER.render(kind="renewal", locale="en", data=data)
    assert "CN¥39.00" in en and "Dec 1, 2026, 8:00:00" in en  # UTC midnight is 08:00 in Shanghai
    _subject, zh = RENDERER.render(kind="renewal", locale="zh_Hans", data=data)
    assert "¥39.00" in zh and "2026年12月1日" in zh


def test_templates_are_translated_with_the_catalog_of_the_locale(tmp_path: Path) -> None:
    (tmp_path / "probe.txt").write_text(
        "{% block subject %}{{ _('Top up') }}{% endblock %}"
        "{% block body %}{{ _('Balance') }}{% endblock %}"
    )
    renderer = MailRenderer(timezone="UTC", currency="CNY", template_dir=tmp_path)
    assert renderer.render(kind="probe", locale="zh_Hans", data={}) == ("充值", "余额\n")
    assert renderer.render(kind="probe", locale="en", data={}) == ("Top up", "Balance\n")
    # An unknown locale falls back to the default, Chinese.
    assert renderer.render(kind="probe", locale="xx", data={})[0] == "充值"


def test_a_subject_is_one_line(tmp_path: Path) -> None:
    # Data shown in a subject cannot add header lines.
    (tmp_path / "probe.txt").write_text(
        "{% block subject %}Order {{ ref }}{% endblock %}{% block body %}x{% endblock %}"
    )
    renderer = MailRenderer(timezone="UTC", currency="CNY", template_dir=tmp_path)
    subject, _body = renderer.render(
        kind="probe", locale="en", data={"ref": "O-1\r\nBcc: evil@example.com"}
    )
    assert subject == "Order O-1 Bcc: evil@example.com"


# -- configuration ---------------------------------------------------------------------


def test_no_smtp_host_means_the_log_mailer(tmp_path: Path) -> None:
    settings = make_settings("sqlite://", tmp_path)
    assert SmtpConfig.from_settings(settings) is None


def test_smtp_settings_are_read(tmp_path: Path) -> None:
    settings = make_settings(
        "sqlite://",
        tmp_path,
        SMTP_HOST="mail.example",
        SMTP_PORT="2525",
        SMTP_USER="u",
        SMTP_PASSWORD="p",
        SMTP_FROM="shop@example.com",
    )
    config = SmtpConfig.from_settings(settings)
    assert config == SmtpConfig(
        host="mail.example", port=2525, user="u", password="p", sender="shop@example.com"
    )


@pytest.mark.parametrize("port", ["abc", "0", "70000", "-1"])
def test_a_bad_smtp_port_is_a_config_error(tmp_path: Path, port: str) -> None:
    settings = make_settings("sqlite://", tmp_path, SMTP_HOST="mail.example", SMTP_PORT=port)
    with pytest.raises(ConfigError):
        SmtpConfig.from_settings(settings)


# -- sending ----------------------------------------------------------------------------


def test_the_log_mailer_writes_one_json_line_per_message(db: Database, session, tmp_path) -> None:
    first = queue(session)
    second = queue(session, kind="low_balance", locale="zh_Hans", balance_minor=120)
    outbox = tmp_path / "mail" / "outbox.jsonl"

    report = send_pending(db, now=NOW, renderer=RENDERER, mailer=LogMailer(outbox))

    assert report.as_dict() == {"sent": 2, "failed": 0, "dead": 0}
    lines = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [first, second]
    assert lines[0]["to"] == "sub@example.com" and lines[0]["subject"] == "Reset your password"
    assert RESET_URL in lines[0]["body"]
    assert "¥1.20" in lines[1]["body"]
    row = reread(session, first)
    assert row.status == "sent" and row.sent_at == NOW and row.attempts == 1
    assert row.subject == "Reset your password" and RESET_URL in row.body
    # Nothing is sent twice.
    again = send_pending(
        db, now=NOW + timedelta(hours=1), renderer=RENDERER, mailer=LogMailer(outbox)
    )
    assert again.as_dict() == {"sent": 0, "failed": 0, "dead": 0}
    assert len(outbox.read_text(encoding="utf-8").splitlines()) == 2


def test_a_notice_not_yet_due_waits(db: Database, session) -> None:
    notification_id = queue(session)
    recorder = Recorder()
    report = send_pending(db, now=NOW - timedelta(seconds=1), renderer=RENDERER, mailer=recorder)
    assert report.sent == 0 and recorder.sent == []
    assert reread(session, notification_id).status == "pending"


def test_failures_back_off_and_the_eighth_makes_the_notice_dead(db: Database, session) -> None:
    notification_id = queue(session)
    broken = Broken()
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # Just before the retry is due, nothing is tried.
        if attempt > 1:
            early = send_pending(
                db, now=now - timedelta(seconds=1), renderer=RENDERER, mailer=broken
            )
            assert early.as_dict() == {"sent": 0, "failed": 0, "dead": 0}
        report = send_pending(db, now=now, renderer=RENDERER, mailer=broken)
        row = reread(session, notification_id)
        assert row.attempts == attempt
        assert "ConnectionRefusedError: mail server down" in row.last_error
        if attempt < MAX_ATTEMPTS:
            assert report.as_dict() == {"sent": 0, "failed": 1, "dead": 0}
            assert row.status == "pending"
            assert row.next_attempt_at == now + backoff(attempt)
            now = row.next_attempt_at
        else:
            assert report.as_dict() == {"sent": 0, "failed": 0, "dead": 1}
            assert row.status == "dead"
    assert broken.calls == MAX_ATTEMPTS
    assert backoff(1) == timedelta(seconds=30) and backoff(2) == timedelta(seconds=60)
    assert backoff(MAX_ATTEMPTS) == timedelta(hours=1)
    # A dead notice is not tried again.
    later = send_pending(db, now=now + timedelta(days=1), renderer=RENDERER, mailer=broken)
    assert later.as_dict() == {"sent": 0, "failed": 0, "dead": 0} and broken.calls == MAX_ATTEMPTS


def test_a_notice_that_cannot_be_rendered_is_retried_not_lost(
    db: Database, session, tmp_path
) -> None:
    notification_id = queue(session, kind="renewal")
    renderer = MailRenderer(timezone="UTC", currency="CNY", template_dir=tmp_path)  # no templates
    recorder = Recorder()
    report = send_pending(db, now=NOW, renderer=renderer, mailer=recorder)
    assert report.failed == 1 and recorder.sent == []
    row = reread(session, notification_id)
    assert row.status == "pending" and "TemplateNotFound" in row.last_error


def test_sms_notices_go_to_the_sms_mailer(db: Database, session) -> None:
    notify(
        session, kind="low_balance", recipient="+8617012340000", now=NOW, channel="sms", locale="en"
    )
    session.commit()
    email, sms = Recorder(), Recorder()
    send_pending(db, now=NOW, renderer=RENDERER, mailer=email, sms_mailer=sms)
    assert email.sent == [] and [m.recipient for m in sms.sent] == ["+8617012340000"]


def test_a_claimed_notice_is_leased_and_a_stale_result_is_ignored(db: Database, session) -> None:
    notification_id = queue(session)
    seen: list[int] = []

    class Reentrant:
        """While one sender is sending, a second run finds nothing due (the lease)."""

        def send(self, message: Message) -> None:
            inner = Recorder()
            report = send_pending(
                db, now=NOW + timedelta(seconds=LEASE_SECONDS - 1), renderer=RENDERER, mailer=inner
            )
            seen.append(report.sent + report.failed)

    send_pending(db, now=NOW, renderer=RENDERER, mailer=Reentrant())
    assert seen == [0]
    assert reread(session, notification_id).status == "sent"
    # A result for an attempt that is no longer the row's changes nothing.
    with db.transaction() as tx:
        assert (
            record_result(tx, notification_id=notification_id, attempt=1, error="late", now=NOW)
            is None
        )
    assert reread(session, notification_id).last_error == ""


def test_limit_bounds_one_run(db: Database, session) -> None:
    for _ in range(3):
        queue(session)
    recorder = Recorder()
    assert send_pending(db, now=NOW, renderer=RENDERER, mailer=recorder, limit=2).sent == 2
    assert send_pending(db, now=NOW, renderer=RENDERER, mailer=recorder, limit=2).sent == 1


def test_renewal_notices_say_why_and_how_much() -> None:
    data = {
        "msisdn": "+8617012340000",
        "amount_minor": 3900,
        "currency": "CNY",
        "balance_minor": 100,
        "reason": "insufficient_balance",
    }
    _subject, unpaid = RENDERER.render(kind="suspension", locale="en", data=data)
    assert "+8617012340000" in unpaid and "CN¥39.00" in unpaid and "CN¥1.00" in unpaid
    _subject, off = RENDERER.render(
        kind="renewal_failed", locale="en", data={**data, "reason": "auto_renew_off"}
    )
    assert "Auto-renew is off" in off and "CN¥39.00" not in off
    _subject, low = RENDERER.render(
        kind="low_balance",
        locale="en",
        data={
            "msisdn": "+8617012340000",
            "balance_minor": 100,
            "currency": "CNY",
            "next_renewal_minor": 3900,
            "period_end": "2026-12-01T00:00:00+00:00",
        },
    )
    assert "The next renewal of line +8617012340000 on Dec 1, 2026" in low and "CN¥39.00" in low
