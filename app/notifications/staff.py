"""Staff view of the notification outbox (DESIGN §11): listing and retrying dead letters.

Staff see who a notice went to, its kind, status, attempts and last error —
never its data or body, which may hold a password-reset link.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from app.core import outbox
from app.core.audit import Actor, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_, Conflict, NotFound
from app.notifications.models import NOTIFICATION_STATUSES, Notification


class NotificationNotFound(NotFound):
    code = "notification_not_found"


class NotificationState(Conflict):
    code = "notification_state"


def list_notifications(
    session: Session,
    *,
    status: str | None = None,
    customer_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Notification], int]:
    """Notices, dead letters first, then waiting ones, then sent; newest first within each.

    Returns (notices, total).
    """
    assert status is None or status in NOTIFICATION_STATUSES, status
    query = select(Notification)
    if status is not None:
        query = query.where(col(Notification.status) == status)
    if customer_id is not None:
        query = query.where(col(Notification.customer_id) == customer_id)
    return outbox.list_dead_first(session, Notification, query, limit=limit, offset=offset)


def count_by_status(session: Session) -> dict[str, int]:
    """How many notices are pending, sent and dead (every status present)."""
    return outbox.count_by_status(session, Notification, NOTIFICATION_STATUSES)


def retry_dead_notification(
    session: Session, *, notification_id: int, actor: Actor, now: datetime
) -> Notification:
    """Queue a dead notice again with a fresh count of attempts, due at once.

    Locks the notice; audited. Each retry is a new round of attempts.
    :raises NotificationNotFound: no such notice.
    :raises NotificationState: the notice is not dead.
    """
    row = lock_by_id(session, Notification, notification_id)
    if row is None:
        raise NotificationNotFound(N_("No notification %(id)s."), id=notification_id)
    if row.status != "dead":
        raise NotificationState(
            N_("Notification %(id)s is not a dead letter; only those can be retried."),
            id=notification_id,
        )
    details = {"kind": row.kind, "attempts": row.attempts, "last_error": row.last_error}
    outbox.requeue(row, now=now)
    session.add(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="notification.retry",
        now=now,
        target_type="notification",
        target_id=notification_id,
        details=details,
    )
    return row
