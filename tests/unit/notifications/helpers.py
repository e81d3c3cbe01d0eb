"""Queuing and reading notices for the mailer's tests."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from app.notifications.mailer import MailRenderer
from app.notifications.models import Notification
from app.notifications.services import notify
from tests.factories import NOW

RENDERER = MailRenderer(timezone="Asia/Shanghai", currency="CNY")
RESET_URL = "https://shop.example/password/reset/tok"


def queue(
    session: Session, *, kind: str = "password_reset", locale: str = "en", **data: Any
) -> int:
    """Queue a notice to sub@example.com (a password reset unless told), committed; its id."""
    notify(
        session,
        kind=kind,
        recipient="sub@example.com",
        now=NOW,
        locale=locale,
        data=data or {"reset_url": RESET_URL, "expires_minutes": 60},
    )
    session.commit()
    row = session.exec(select(Notification).order_by(col(Notification.id).desc())).first()
    assert row is not None and row.id is not None
    return row.id


def reread(session: Session, notification_id: int) -> Notification:
    """The notice as committed now."""
    session.expire_all()
    row = session.get(Notification, notification_id)
    assert row is not None
    return row
