"""Staff view of the notification outbox: dead letters first, retry only the dead."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.core.audit import Actor, AuditEntry
from app.notifications.models import Notification
from app.notifications.services import notify
from app.notifications.staff import (
    NotificationNotFound,
    NotificationState,
    count_by_status,
    list_notifications,
    retry_dead_notification,
)
from tests.factories import NOW

CARE = Actor("staff", 3, "care@example.com")


def _notice(session: Session, status: str, n: int) -> Notification:
    notify(session, kind="low_balance", recipient=f"r{n}@example.com", now=NOW)
    row = session.exec(
        select(Notification).where(Notification.recipient == f"r{n}@example.com")
    ).one()
    row.status = status
    row.attempts = 8 if status == "dead" else 1
    row.last_error = "boom" if status == "dead" else ""
    session.add(row)
    session.flush()
    return row


def test_list_puts_dead_letters_first_then_waiting_then_sent(session) -> None:
    sent = _notice(session, "sent", 1)
    dead = _notice(session, "dead", 2)
    waiting = _notice(session, "pending", 3)
    dead2 = _notice(session, "dead", 4)
    rows, total = list_notifications(session)
    assert [r.id for r in rows] == [dead2.id, dead.id, waiting.id, sent.id] and total == 4
    only_dead, total_dead = list_notifications(session, status="dead", limit=1)
    assert [r.id for r in only_dead] == [dead2.id] and total_dead == 2
    assert count_by_status(session) == {"pending": 1, "sent": 1, "dead": 2}


def test_retry_queues_a_dead_letter_again_and_is_audited(session) -> None:
    dead = _notice(session, "dead", 1)
    assert dead.id is not None
    later = NOW + timedelta(days=1)
    row = retry_dead_notification(session, notification_id=dead.id, actor=CARE, now=later)
    assert row.status == "pending" and row.attempts == 0 and row.next_attempt_at == later
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "notification.retry")).one()
    assert audit.actor_id == 3 and audit.details == {
        "kind": "low_balance",
        "attempts": 8,
        "last_error": "boom",
    }
    with pytest.raises(NotificationState):
        retry_dead_notification(session, notification_id=dead.id, actor=CARE, now=later)


@pytest.mark.parametrize("status", ["pending", "sent"])
def test_only_a_dead_letter_is_retried(session, status) -> None:
    row = _notice(session, status, 1)
    assert row.id is not None
    with pytest.raises(NotificationState):
        retry_dead_notification(session, notification_id=row.id, actor=CARE, now=NOW)


def test_retrying_an_unknown_notice(session) -> None:
    with pytest.raises(NotificationNotFound):
        retry_dead_notification(session, notification_id=123456, actor=CARE, now=NOW)


def test_a_notice_queued_twice_under_one_key_is_written_once_and_says_so(session) -> None:
    first = notify(session, kind="renewal", recipient="r@example.com", now=NOW, dedupe_key="k:1")
    second = notify(session, kind="renewal", recipient="r@example.com", now=NOW, dedupe_key="k:1")
    assert (first, second) == (True, False)
    rows = session.exec(select(Notification).where(Notification.dedupe_key == "k:1")).all()
    assert len(rows) == 1
