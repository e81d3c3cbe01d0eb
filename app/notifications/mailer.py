"""Sending the notification outbox (DESIGN §11): render, send, retry, dead-letter.

Rules:

* **Rendering.** A notice is rendered from `app/templates/mail/<kind>.txt`
  in its own locale: the template's `subject` and `body` blocks, with
  `_()` / `gettext` from the project's catalogs (app/translations, loaded
  here with Babel, no Flask) and the filters `money` (minor units) and
  `datetime` (ISO text or datetime, shown in `TIMEZONE`). The data of the
  notice are the template's variables.
* **Mailers.** With `SMTP_HOST` set, e-mail goes through SMTP (`smtplib`;
  STARTTLS whenever the server offers it, implicit TLS on port 465, login
  when `SMTP_USER` is set). Without it — the embedded default — the `log`
  mailer appends one JSON line per message to
  `instance/mail/outbox.jsonl`. SMS notices (no SMS gateway yet) always go
  to the log.
* **Delivery** mirrors the provisioning outbox (app/provisioning/services;
  the shared rules are in app/core/outbox):
  one short transaction claims due notices (`FOR UPDATE SKIP LOCKED`),
  counts the attempt and leases the row for `LEASE_SECONDS`; the message is
  sent with no transaction open; one transaction per notice records the
  result, only if the row is still on that attempt. Delivery is at least
  once.
* **Retries.** A failure waits `30 s × 2^(attempts − 1)` (at most an
  hour); the 8th failed attempt makes the notice `dead`.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_datetime
from babel.support import Translations
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.db import Database, lock_by_id
from app.core.money import format_money
from app.core.outbox import (
    BACKOFF_CAP_SECONDS,
    MAX_ATTEMPTS,
    backoff,
    claimed,
    on_attempt,
    record_failure,
    take_lease,
)
from app.notifications.models import Notification

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates" / "mail"
TRANSLATIONS_DIR = Path(__file__).resolve().parents[1] / "translations"
LOCALES = ("zh_Hans", "en")
DEFAULT_LOCALE = "zh_Hans"
LEASE_SECONDS = 120
SMTP_TIMEOUT_SECONDS = 30.0
DEFAULT_BATCH = 100

__all__ = [
    "BACKOFF_CAP_SECONDS",
    "MAX_ATTEMPTS",
    "LogMailer",
    "MailRenderer",
    "Mailer",
    "Message",
    "SendReport",
    "SmtpConfig",
    "SmtpMailer",
    "backoff",
    "mailer_from_settings",
    "send_pending",
]


# -- rendering ------------------------------------------------------------------------


@lru_cache(maxsize=len(LOCALES))
def _translations(locale: str) -> Translations:
    loaded = Translations.load(str(TRANSLATIONS_DIR), [locale], domain="messages")
    # `load` returns NullTranslations when there is no catalog; Jinja wants the same API.
    return loaded  # type: ignore[return-value]


class MailRenderer:
    """Subject and body of a notice in its locale, from app/templates/mail/<kind>.txt."""

    def __init__(self, *, timezone: str, currency: str, template_dir: Path = TEMPLATE_DIR):
        self.zone = ZoneInfo(timezone)
        self.currency = currency
        self.template_dir = template_dir
        self._environments: dict[str, jinja2.Environment] = {}

    def _environment(self, locale: str) -> jinja2.Environment:
        env = self._environments.get(locale)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(self.template_dir)),
                extensions=["jinja2.ext.i18n"],
                autoescape=False,  # plain text  # noqa: S701
                undefined=jinja2.ChainableUndefined,
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(_translations(locale), newstyle=True)  # type: ignore[attr-defined]
            env.filters["money"] = lambda amount, currency=None: (
                format_money(int(amount), currency or self.currency, locale)
                if isinstance(amount, int)
                else ""
            )
            env.filters["datetime"] = lambda value: self._datetime(value, locale)
            self._environments[locale] = env
        return env

    def _datetime(self, value: Any, locale: str) -> str:
        if isinstance(value, str) and value:
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if not isinstance(value, datetime) or value.tzinfo is None:
            return ""
        return format_datetime(value, "medium", tzinfo=self.zone, locale=locale)

    def render(self, *, kind: str, locale: str, data: dict[str, Any]) -> tuple[str, str]:
        """(subject, body). :raises jinja2.TemplateError: no template for the kind, or broken."""
        locale = locale if locale in LOCALES else DEFAULT_LOCALE
        template = self._environment(locale).get_template(f"{kind}.txt")
        context = template.new_context({**data, "locale": locale})
        subject = "".join(template.blocks["subject"](context)).strip()
        body = "".join(template.blocks["body"](context)).strip() + "\n"
        # A header must be one line.
        return " ".join(subject.split())[:200], body


# -- mailers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    notification_id: int
    channel: str
    kind: str
    recipient: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, message: Message) -> None:
        """Send one message; raises on failure."""


class LogMailer:
    """The embedded default: one JSON line per message in `instance/mail/outbox.jsonl`."""

    def __init__(self, path: Path):
        self.path = path

    def send(self, message: Message) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "id": message.notification_id,
                "channel": message.channel,
                "kind": message.kind,
                "to": message.recipient,
                "subject": message.subject,
                "body": message.body,
            },
            ensure_ascii=False,
        )
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None
    sender: str = "noreply@localhost"
    timeout_seconds: float = SMTP_TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        env = settings.smtp
        host = (env.get("SMTP_HOST") or "").strip()
        if not host:
            return None
        port_text = (env.get("SMTP_PORT") or "587").strip()
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            from app.core.errors import ConfigError

            raise ConfigError(f"SMTP_PORT must be a port number, not {port_text!r}")
        return cls(
            host=host,
            port=int(port_text),
            user=env.get("SMTP_USER") or None,
            password=env.get("SMTP_PASSWORD") or None,
            sender=env.get("SMTP_FROM") or "noreply@localhost",
        )


class SmtpMailer:
    """E-mail through an SMTP server; STARTTLS whenever the server offers it."""

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None):
        self.config = config
        self.tls_context = tls_context or ssl.create_default_context()

    def _email(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.config.sender
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        domain = self.config.sender.rpartition("@")[2] or "localhost"
        email["Message-ID"] = make_msgid(f"n{message.notification_id}", domain=domain)
        email.set_content(message.body)
        return email

    def send(self, message: Message) -> None:
        if message.channel != "email":
            raise ValueError(f"the SMTP mailer sends e-mail, not {message.channel}")
        config = self.config
        client: smtplib.SMTP
        if config.port == 465:
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_seconds, context=self.tls_context
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        with client:
            client.ehlo()
            if config.port != 465 and client.has_extn("starttls"):
                client.starttls(context=self.tls_context)
                client.ehlo()
            if config.user:
                client.login(config.user, config.password or "")
            client.send_message(self._email(message))


def mailer_from_settings(settings: Settings) -> tuple[Mailer, Mailer]:
    """(e-mail mailer, SMS mailer): SMTP when configured, else the log; SMS always the log."""
    log_mailer = LogMailer(settings.instance_path / "mail" / "outbox.jsonl")
    config = SmtpConfig.from_settings(settings)
    return (SmtpMailer(config) if config else log_mailer), log_mailer


# -- delivery -------------------------------------------------------------------------


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dead": self.dead}


@dataclass(frozen=True)
class _Claim:
    notification_id: int
    attempt: int
    channel: str
    kind: str
    recipient: str
    locale: str
    data: dict[str, Any]


def _due(now: datetime, limit: int) -> Any:
    return (
        select(Notification)
        .where(col(Notification.status) == "pending", col(Notification.next_attempt_at) <= now)
        .order_by(col(Notification.next_attempt_at), col(Notification.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


def _claim(db: Database, *, now: datetime, limit: int) -> list[_Claim]:
    claims = []
    with db.transaction() as session:
        for row in session.exec(_due(now, limit)):
            assert row.id is not None
            take_lease(row, now=now, lease_seconds=LEASE_SECONDS)
            session.add(row)
            claims.append(
                _Claim(
                    row.id,
                    row.attempts,
                    row.channel,
                    row.kind,
                    row.recipient,
                    row.locale,
                    dict(row.data),
                )
            )
        session.flush()
    return claims


def record_result(
    session: Session,
    *,
    notification_id: int,
    attempt: int,
    error: str | None,
    now: datetime,
    rendered: tuple[str, str] | None = None,
) -> str | None:
    """Record what attempt `attempt` came to: `sent`, `failed` (retried later) or `dead`.

    Locks the notice. Returns None and changes nothing when the notice has
    moved on since that attempt was claimed (another sender took it after
    the lease ran out).
    """
    row = lock_by_id(session, Notification, notification_id)
    if row is None or not on_attempt(row, attempt):
        return None
    if rendered is not None:
        row.subject, row.body = rendered
    if error is None:
        row.status = "sent"
        row.sent_at = now
        row.last_error = ""
        result = "sent"
    else:
        result = record_failure(row, error=error, now=now)
    session.add(row)
    session.flush()
    return result


def _describe(exc: BaseException) -> str:
    # Only the kind of failure and the server's words: never the message itself.
    return f"{type(exc).__name__}: {exc}"[:500]


def send_pending(
    db: Database,
    *,
    now: datetime,
    renderer: MailRenderer,
    mailer: Mailer,
    sms_mailer: Mailer | None = None,
    limit: int = DEFAULT_BATCH,
    on_error: Callable[[int, str], None] | None = None,
) -> SendReport:
    """Render and send due notices, at most `limit`, each outside any transaction."""
    counts = {"sent": 0, "failed": 0, "dead": 0}
    for claim in claimed(lambda n: _claim(db, now=now, limit=n), limit):
        error: str | None = None
        rendered: tuple[str, str] | None = None
        try:
            rendered = renderer.render(kind=claim.kind, locale=claim.locale, data=claim.data)
            target = mailer if claim.channel == "email" else (sms_mailer or mailer)
            target.send(
                Message(
                    notification_id=claim.notification_id,
                    channel=claim.channel,
                    kind=claim.kind,
                    recipient=claim.recipient,
                    subject=rendered[0],
                    body=rendered[1],
                )
            )
        except Exception as exc:
            error = _describe(exc)
            log.warning("notification %s: %s", claim.notification_id, error)
            if on_error is not None:
                on_error(claim.notification_id, error)
        with db.transaction() as session:
            result = record_result(
                session,
                notification_id=claim.notification_id,
                attempt=claim.attempt,
                error=error,
                now=now,
                rendered=rendered,
            )
        if result is not None:
            counts[result] += 1
    return SendReport(**counts)


def send_notifications(
    db: Database, *, now: datetime, settings: Settings, limit: int = DEFAULT_BATCH
) -> SendReport:
    """`send_pending` with the renderer and mailers the settings configure."""
    mailer, sms_mailer = mailer_from_settings(settings)
    renderer = MailRenderer(timezone=settings.timezone, currency=settings.currency)
    return send_pending(
        db, now=now, renderer=renderer, mailer=mailer, sms_mailer=sms_mailer, limit=limit
    )
