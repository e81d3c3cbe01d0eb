"""Self-care: a subscriber terminates one of their lines, with its refund (DESIGN §10, §12).

The line page links to a confirmation page that states what ending the
line now refunds (`app.exit.termination.quote_line_end`: the unused value
of its plan, and the balance when it is the last line, arrears first) and
that the number is released; only its post (CSRF, `confirm=yes`) ends the
line (`terminate_with_refund`). Anyone else's line is a 404. A second post
(a double submit, or the back button) pays nothing again and says the line
has already ended.

Only an active or suspended line is ended here: a pending line's first
period has not started yet, so its price is not in the refund arithmetic;
customer service ends those.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import DataRequired

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.exit.owed import LineRefund
from app.exit.termination import quote_line_end, terminate_with_refund
from app.subscribers.models import Line
from app.web import flash_refusal, format_money_for_view
from app.web.auth import subscriber_required
from app.web.context import current_actor, db_session, settings
from app.web.store import bp
from app.web.store.money import own_customer

SELF_CARE_ENDS = ("active", "suspended")
REASON = "self-care: terminated by the subscriber"


class TerminateLineForm(FlaskForm):
    confirm = HiddenField(validators=[DataRequired()])


def _own_line(line_id: int) -> Line:
    """One of the signed-in subscriber's lines; any other is a 404."""
    customer = own_customer()
    line = db_session().get(Line, line_id)
    if customer is None or line is None or line.customer_id != customer.id:
        abort(404)
    return line


def _page(line: Line, form: TerminateLineForm, *, status: int = 200) -> Any:
    assert line.id is not None
    quote: LineRefund | None = None
    if line.status in SELF_CARE_ENDS:
        quote = quote_line_end(
            db_session(), line_id=line.id, now=utcnow(), customer_id=line.customer_id
        )
    return render_template(
        "store/line_terminate.html",
        line=line,
        quote=quote,
        form=form,
        quarantine_days=settings().number_quarantine_days,
    ), (status if quote is not None else 409)


@bp.route("/account/lines/<int:line_id>/terminate", methods=["GET", "POST"])
@subscriber_required
def line_terminate(line_id: int) -> Any:
    line = _own_line(line_id)
    back = redirect(url_for("store.line_detail", line_id=line_id), code=303)
    if line.status == "terminated":
        flash(_("Line %(msisdn)s has already been terminated.", msisdn=line.msisdn))
        return back
    form = TerminateLineForm()
    if not form.is_submitted():
        return _page(line, form)
    if not form.validate() or form.confirm.data != "yes":
        flash(_("The form expired or was sent from elsewhere. Reload the page and try again."))
        return _page(line, form, status=422)
    if line.status not in SELF_CARE_ENDS:
        return _page(line, form)
    customer = own_customer()
    assert line.id is not None and customer is not None
    try:
        ended = terminate_with_refund(
            db_session(),
            line_id=line.id,
            reason=REASON,
            quarantine_days=settings().number_quarantine_days,
            actor=current_actor(),
            now=utcnow(),
            customer_id=customer.id,
        )
    except DomainError as exc:
        flash_refusal(exc)
        return back
    if ended.refund_minor:
        flash(
            _(
                "Line %(msisdn)s is terminated. %(amount)s will be refunded to you.",
                msisdn=line.msisdn,
                amount=format_money_for_view(ended.refund_minor, ended.currency),
            ),
            "success",
        )
    else:
        flash(_("Line %(msisdn)s is terminated.", msisdn=line.msisdn), "success")
    return back
