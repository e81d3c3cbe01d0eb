"""JSON API of the notification outbox (DESIGN §11, §14).

`notifications.view` lists the outbox (never a notice's data or body);
`notifications.manage` queues a dead letter again.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.core.clock import utcnow
from app.notifications import staff as notices
from app.notifications.models import Notification
from app.web.api import bp
from app.web.api.common import page_args, page_out
from app.web.api.notifications_schemas import NotificationOut, NotificationPage, NotificationQuery
from app.web.api.security import requires
from app.web.context import current_actor, db_session


def _notification(row: Notification) -> dict[str, Any]:
    return {name: getattr(row, name) for name in NotificationOut().fields}


@bp.get("/notifications")
@requires("notifications.view")
@bp.input(NotificationQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(NotificationPage)
def notification_list(query: dict[str, Any]) -> Any:
    """Notices: dead letters first, then waiting, then sent; newest first in each."""
    rows, total = notices.list_notifications(
        db_session(), status=query.get("status"), **page_args(query)
    )
    return page_out([_notification(row) for row in rows], total, query)


@bp.post("/notifications/<int:notification_id>/retry")
@requires("notifications.manage")
@bp.output(NotificationOut)
@bp.doc(responses={404: "No such notification", 409: "Only a dead letter can be retried"})
def notification_retry(notification_id: int) -> Any:
    """Queue a dead notice again, with a fresh count of attempts."""
    row = notices.retry_dead_notification(
        db_session(), notification_id=notification_id, actor=current_actor(), now=utcnow()
    )
    return _notification(row)
