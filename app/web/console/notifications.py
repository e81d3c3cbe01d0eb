"""Console page of the notification outbox (DESIGN §11): e-mail and SMS notices with
dead letters first; staff with `notifications.manage` queue a dead one again.

The page shows recipient, kind, status, attempts and the last error, never
a notice's data or body (a password-reset notice carries its link).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.notifications import staff as notices
from app.notifications.models import NOTIFICATION_STATUS_LABELS, NOTIFICATION_STATUSES
from app.web import flash_refusal
from app.web.auth import staff_required
from app.web.console import bp
from app.web.context import current_actor, db_session
from app.web.forms import ActionForm

PER_PAGE = 50
MAX_PAGE = 100_000


@bp.route("/notifications")
@staff_required("notifications.view")
def notifications() -> Any:
    status = request.args.get("status") or None
    status = status if status in NOTIFICATION_STATUSES else None
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    session = db_session()
    rows, total = notices.list_notifications(
        session, status=status, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render_template(
        "console/notifications.html",
        rows=rows,
        total=total,
        page=page,
        per_page=PER_PAGE,
        status=status,
        statuses=NOTIFICATION_STATUSES,
        status_labels={k: _(v) for k, v in NOTIFICATION_STATUS_LABELS.items()},
        counts=notices.count_by_status(session),
        action_form=ActionForm(),
    )


@bp.route("/notifications/<int:notification_id>/retry", methods=["POST"])
@staff_required("notifications.manage")
def notification_retry(notification_id: int) -> Any:
    form = ActionForm()
    if not form.validate_on_submit():
        flash(_("The form expired or was sent from elsewhere. Reload the page and try again."))
    else:
        try:
            notices.retry_dead_notification(
                db_session(), notification_id=notification_id, actor=current_actor(), now=utcnow()
            )
        except DomainError as exc:
            flash_refusal(exc)
        else:
            flash(_("Notification %(id)s queued again.", id=notification_id), "success")
    status = request.form.get("status") or None
    return redirect(
        url_for("console.notifications", status=status if status in NOTIFICATION_STATUSES else None)
    )
