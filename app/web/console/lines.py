"""Console actions on lines (suspend, resume, terminate) and the provisioning outbox page.

Each line action posts a mandatory reason to its own route under
`lines.manage` and returns to the customer's page; a refusal (the line's
status forbids it) is flashed and nothing changes. The outbox page lists
events with dead letters first; staff with `provisioning.manage` queue a
dead one again.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.provisioning import services as outbox
from app.provisioning.models import EVENT_STATUSES
from app.subscribers import lifecycle
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.web import flash_refusal, label
from app.web.auth import staff_required
from app.web.console import bp
from app.web.context import current_actor, db_session, settings
from app.web.forms import ActionForm, LineActionForm

PER_PAGE = 50
MAX_PAGE = 100_000
LINE_ACTIONS = ("suspend", "resume", "terminate")


def _change(line: Line, action: str, reason: str) -> Line:
    assert line.id is not None
    common: dict[str, Any] = {
        "line_id": line.id,
        "reason": reason,
        "actor": current_actor(),
        "now": utcnow(),
    }
    if action == "suspend":
        return lifecycle.suspend_line(db_session(), **common)
    if action == "resume":
        return lifecycle.resume_line(db_session(), **common)
    return lifecycle.terminate_line(
        db_session(), quarantine_days=settings().number_quarantine_days, **common
    )


@bp.route("/lines/<msisdn>/<any(suspend, resume, terminate):action>", methods=["POST"])
@staff_required("lines.manage")
def line_action(msisdn: str, action: str) -> Any:
    line = subscribers.get_line_by_msisdn(db_session(), msisdn)
    customer = db_session().get(Customer, line.customer_id)
    assert customer is not None
    back = redirect(url_for("console.customer", ref=customer.ref, _anchor="lines"))
    form = LineActionForm()
    if not form.validate_on_submit():
        flash(_("Give a reason (at most 500 characters)."), "error")
        return back
    try:
        line = _change(line, action, form.reason.data or "")
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(
            _(
                "Line %(msisdn)s is %(status)s.",
                msisdn=line.msisdn,
                status=label("line_status", line.status),
            ),
            "success",
        )
    return back


def _page() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)


@bp.route("/provisioning")
@staff_required("provisioning.view")
def provisioning() -> Any:
    status = request.args.get("status") or None
    status = status if status in EVENT_STATUSES else None
    page = _page()
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
