"""The market exit in the store (DESIGN §10, §12): the notice, the sales freeze and the
subscriber's choice for each line.

* Once an exit is announced every store page carries a notice (the exit
  date, that no new lines are sold, a link to choose); the purchase pages
  show why nothing is sold instead of their forms (`sales_open`), and the
  plan list keeps its plans without buy buttons. Orders completing
  after the announcement are refused by app/onboarding (`SalesClosed`).
* `/exit` lets a subscriber choose, for each of their own lines, transfer
  to the host (which hands the number, SIM, name and ID number to the host
  carrier, so it needs an explicit consent) or termination with a refund,
  and change it until the exit instant; then it shows the outcome, read-only.
  Another customer's line is a 404, as everywhere in self-care.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from app.charging.horizon import announced_exit
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.exit.choices import choose
from app.exit.subscriber import SubscriberExit, subscriber_exit
from app.subscribers.models import Line
from app.web import flash_refusal, label
from app.web.auth import subscriber_required
from app.web.context import current_actor, db_session, settings
from app.web.store import bp
from app.web.store.money import own_customer

F = TypeVar("F", bound=Any)


@dataclass(frozen=True)
class ExitNotice:
    """The banner on every store page once an exit is announced."""

    exit_date: date
    instant: datetime
    passed: bool


def exit_notice() -> ExitNotice | None:
    """The announced exit for the banner, or None while sales are open."""
    horizon = announced_exit(db_session())
    if horizon is None:
        return None
    return ExitNotice(horizon.exit_date, horizon.instant, passed=utcnow() >= horizon.instant)


@bp.context_processor
def _notice_helper() -> dict[str, Any]:
    # A function, so only the pages that show the banner read the exit.
    return {"exit_notice": exit_notice}


def sales_closed_page(notice: ExitNotice, status: int) -> Any:
    """What a purchase page shows instead of its form once sales are closed."""
    return render_template("store/sales_closed.html", notice=notice), status


def sales_open(view: F) -> F:
    """Show the sales-closed page instead of running a purchase view after an announcement.

    A GET answers 200 (the page is what the shop has to say); a POST 409.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        notice = exit_notice()
        if notice is not None:
            return sales_closed_page(notice, 200 if request.method == "GET" else 409)
        return view(*args, **kwargs)

    return cast(F, wrapper)


class ExitChoiceForm(FlaskForm):
    """One line's choice: transfer to the host (with consent) or terminate and refund."""

    choice = RadioField(
        _l("What should happen to this line?"),
        choices=[
            SelectChoice(value="transfer", label=_l("Transfer to the host carrier")),
            SelectChoice(value="terminate", label=_l("Terminate and refund")),
        ],
        validators=[InputRequired(message=_l("Choose transfer or terminate."))],
    )
    consent = BooleanField(
        _l(
            "I agree that my number, SIM, name and ID number are passed to the host carrier"
            " so that it can take over my line."
        )
    )

    def validate_consent(self, field: BooleanField) -> None:
        """A transfer hands personal data to the host: only with the subscriber's consent."""
        if self.choice.data == "transfer" and not field.data:
            field.errors.append(
                _("To transfer the line, tick the box to agree to your details being passed on.")
            )


def _form(line_id: int, formdata: Any = None) -> ExitChoiceForm:
    return ExitChoiceForm(formdata=formdata, prefix=f"line{line_id}")


def _view() -> SubscriberExit:
    customer = own_customer()
    return subscriber_exit(
        db_session(),
        customer_id=customer.id if customer is not None else None,
        policy=settings().exit_balance_policy,
        now=utcnow(),
    )


def _page(status: int = 200, posted: ExitChoiceForm | None = None, line_id: int = 0) -> Any:
    view = _view()
    forms = {}
    for line in view.lines if view.open else []:
        if posted is not None and line_id == line.line_id:
            forms[line.line_id] = posted
            continue
        form = _form(line.line_id)
        if line.choice is not None:
            form.choice.data = line.choice.choice
        forms[line.line_id] = form
    return render_template(
        "store/exit.html",
        view=view,
        forms=forms,
        given_by={"customer": _("by you"), "staff": _("by customer service")},
        choice_label=lambda code: label("exit_choice", code),
    ), status


@bp.route("/exit")
@subscriber_required
def exit_choice() -> Any:
    return _page()


@bp.route("/exit/lines/<int:line_id>", methods=["POST"])
@subscriber_required
def exit_choose(line_id: int) -> Any:
    customer = own_customer()
    line = db_session().get(Line, line_id)
    if customer is None or line is None or line.customer_id != customer.id:
        abort(404)
    form = _form(line_id, request.form)
    if not form.validate_on_submit():
        return _page(422, form, line_id)
    try:
        row = choose(
            db_session(),
            msisdn=line.msisdn,
            choice=form.choice.data or "",
            actor=current_actor(),
            now=utcnow(),
            customer_id=customer.id,
        )
    except DomainError as exc:
        flash_refusal(exc)
        return _page(exc.http_status)
    flash(
        _(
            "Your choice for %(msisdn)s is recorded: %(choice)s.",
            msisdn=line.msisdn,
            choice=label("exit_choice", row.choice),
        ),
        "success",
    )
    return redirect(url_for("store.exit_choice"), code=303)
