"""Console page of the provisioning outbox (DESIGN §10): events by status, and a dead
one queued again.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.provisioning import services as outbox
from app.provisioning.models import EVENT_STATUSES
from app.subscribers.models import Line
from app.web import flash_refusal
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import PER_PAGE, page_number
from app.web.context import current_actor, db_session
from app.web.forms import ActionForm


@bp.route("/provisioning")
@staff_required("provisioning.view")
def provisioning() -> Any:
    status = request.args.get("status") or None
    status = status if status in EVENT_STATUSES else None
    page = page_number()
    session = db_session()
    events, total = outbox.list_events(
        session, status=status, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    line_ids = {event.line_id for event in events}
    msisdns = {
        line.id: line.msisdn
        for line in (session.get(Line, line_id) for line_id in sorted(line_ids))
        if line is not None
    }
    return render_template(
        "console/provisioning.html",
        events=events,
        total=total,
        page=page,
        per_page=PER_PAGE,
        status=status,
        statuses=EVENT_STATUSES,
        counts=outbox.count_by_status(session),
        msisdns=msisdns,
        action_form=ActionForm(),
    )


@bp.route("/provisioning/<int:event_id>/retry", methods=["POST"])
@staff_required("provisioning.manage")
def provisioning_retry(event_id: int) -> Any:
    try:
        outbox.retry_dead_event(
            db_session(), event_id=event_id, actor=current_actor(), now=utcnow()
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(_("Provisioning event %(id)s queued again.", id=event_id), "success")
    return redirect(url_for("console.provisioning", status=request.form.get("status") or None))
