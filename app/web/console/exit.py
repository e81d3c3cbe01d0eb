"""The market exit as a console wizard (DESIGN §12, §14): one page, one step at a time.

The page at `/console/exit` shows the step the exit is at, and before each
change what it will do, to how many lines and how much money:

1. **Plan** (no exit yet): the exit date and the notice period; the earliest
   date the notice allows is shown, and a refusal stays beside the field.
2. **Review** (draft): `workflow.preview` — lines, how many would transfer,
   terminate or have made no choice, refunds, balances carried to the host,
   the liability and arrears written off, per currency; the plan may change.
3. **Announce** (draft, confirmed): sales stop, the customers are notified,
   the regulator report is written (its link is shown).
4. **Notice period** (announced): the choices so far, a choice given by
   phone recorded with the agent's note, and cancelling with a reason.
5. **Execute** (announced, at or after the exit instant, confirmed):
   `workflow.run_execution` in its own units of work; the files go into
   `workflow.exit_folder`. Refunds to cards are sent by the scheduler's
   refund job.
6. **Completed**: what the execution did, and the files to download.

Changes need `exit.manage` (admin); the page and the files `exit.view`.
Every step is audited by the services.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, NumberRange

from app.core import limits
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.exit.choices import choose
from app.exit.models import (
    CHOICE_LABELS,
    CHOICES,
    DEFAULT_NOTICE_DAYS,
    MAX_NOTICE_DAYS,
    MIN_NOTICE_DAYS,
)
from app.exit.schedule import cancel_exit, earliest_exit_date, plan_exit
from app.exit.workflow import announce, exit_folder, run_execution
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import ReasonForm
from app.web.context import current_actor, database, db_session, own_units_of_work, settings
from app.web.exit_status import exit_file_response, exit_status
from app.web.forms import attach_error, limit

# The longest notice a form accepts: ten years, far beyond any real plan.


class PlanForm(FlaskForm):
    exit_date = DateField(_l("Exit date (service ends at 00:00 of this day)"), [DataRequired()])
    notice_days = IntegerField(
        _l("Notice period (days)"),
        default=DEFAULT_NOTICE_DAYS,
        validators=[InputRequired(), NumberRange(min=1, max=MAX_NOTICE_DAYS)],
    )


class ConfirmForm(FlaskForm):
    confirm = BooleanField(
        _l("I have read what will happen, and it is right."), validators=[DataRequired()]
    )


class ChoiceForm(FlaskForm):
    msisdn = StringField(_l("Number"), validators=[DataRequired(), limit(20)])
    choice = SelectField(
        _l("Choice"),
        choices=[SelectChoice(value=c, label=_l(CHOICE_LABELS[c])) for c in CHOICES],
    )
    note = StringField(
        _l("What the subscriber said (required)"),
        validators=[DataRequired(), limit(limits.NOTE)],
    )


FORMS: dict[str, type[FlaskForm]] = {
    "plan_form": PlanForm,
    "announce_form": ConfirmForm,
    "choice_form": ChoiceForm,
    "cancel_form": ReasonForm,
    "execute_form": ConfirmForm,
}


def _render(status: int = 200, **posted: FlaskForm) -> Any:
    """The wizard at the exit's step; `posted` is a refused form, shown with its messages."""
    now = utcnow()
    figures = exit_status(db_session(), settings=settings(), now=now)
    forms = {
        name: posted.get(name) or form_class(prefix=name.removesuffix("_form"), formdata=None)
        for name, form_class in FORMS.items()
    }
    plan_form = forms["plan_form"]
    if plan_form.exit_date.data is None and figures["exit"] is not None:
        plan_form.exit_date.data = _exit_date(figures)
    notice = plan_form.notice_days.data
    if not isinstance(notice, int) or notice < MIN_NOTICE_DAYS:
        notice = DEFAULT_NOTICE_DAYS
    earliest = earliest_exit_date(
        min(notice, MAX_NOTICE_DAYS), timezone=settings().timezone, now=now
    )
    alerts = [str(error) for form in posted.values() for error in form.form_errors]
    return render_template(
        "console/exit.html",
        status=figures,
        exit=figures["exit"],
        preview=figures["preview"],
        result=figures["result"],
        earliest=earliest,
        notice_days=notice,
        alerts=alerts,
        now=now,
        choice_labels=CHOICE_LABELS,
        **forms,
    ), status


def _exit_date(figures: dict[str, Any]) -> date:
    return date.fromisoformat(figures["exit"]["exit_date"])


def _posted(name: str) -> FlaskForm:
    return FORMS[name](prefix=name.removesuffix("_form"))


def _act(name: str, act: Any) -> Any:
    """Validate the posted form `name`, run `act(form)`; a refusal re-renders the wizard."""
    form = _posted(name)
    if form.validate_on_submit():
        try:
            answer = act(form)
        except DomainError as exc:
            attach_error(form, exc)
        except OSError as exc:
            form.form_errors.append(
                _("The files could not be written: %(error)s", error=exc.strerror or str(exc))
            )
        else:
            if answer is not None:
                return answer
    elif form.errors.get("csrf_token"):
        form.form_errors.append(
            _("The form expired or was sent from elsewhere. Reload the page and try again.")
        )
    return _render(422, **{name: form})


def _back(anchor: str | None = None) -> Any:
    return redirect(url_for("console.exit_wizard", _anchor=anchor))


@bp.route("/exit")
@staff_required("exit.view")
def exit_wizard() -> Any:
    return _render()


@bp.route("/exit/plan", methods=["POST"])
@staff_required("exit.manage")
def exit_plan() -> Any:
    def act(form: Any) -> Any:
        found = plan_exit(
            db_session(),
            exit_date=form.exit_date.data,
            notice_days=form.notice_days.data,
            timezone=settings().timezone,
            actor=current_actor(),
            now=utcnow(),
        )
        flash(
            _(
                "The exit is planned for %(date)s with %(days)s days' notice."
                " Review what it will do, then announce it.",
                date=found.exit_date.isoformat(),
                days=found.notice_days,
            ),
            "success",
        )
        return _back("review")

    return _act("plan_form", act)


@bp.route("/exit/announce", methods=["POST"])
@staff_required("exit.manage")
def exit_announce() -> Any:
    def act(form: Any) -> Any:
        found, report = announce(
            db_session(),
            settings=settings(),
            actor=current_actor(),
            now=utcnow(),
            out_dir=exit_folder(settings()),
        )
        flash(
            _(
                "The exit on %(date)s is announced: sales have stopped and the customers"
                " are being notified. The regulator report is %(file)s.",
                date=found.exit_date.isoformat(),
                file=report.name,
            ),
            "success",
        )
        return _back("notice")

    return _act("announce_form", act)


@bp.route("/exit/choices", methods=["POST"])
@staff_required("exit.manage")
def exit_choice() -> Any:
    def act(form: Any) -> Any:
        row = choose(
            db_session(),
            msisdn=(form.msisdn.data or "").strip(),
            choice=form.choice.data or "",
            note=form.note.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
        flash(
            _(
                "Recorded for %(msisdn)s: %(choice)s.",
                msisdn=(form.msisdn.data or "").strip(),
                choice=_(CHOICE_LABELS[row.choice]),
            ),
            "success",
        )
        return _back("choices")

    return _act("choice_form", act)


@bp.route("/exit/cancel", methods=["POST"])
@staff_required("exit.manage")
def exit_cancel() -> Any:
    def act(form: Any) -> Any:
        found = cancel_exit(
            db_session(), reason=form.reason.data or "", actor=current_actor(), now=utcnow()
        )
        flash(
            _(
                "The exit on %(date)s is cancelled; sales and prepayment are back to normal.",
                date=found.exit_date.isoformat(),
            ),
            "success",
        )
        return _back()

    return _act("cancel_form", act)


@bp.route("/exit/execute", methods=["POST"])
@own_units_of_work
@staff_required("exit.manage")
def exit_execute() -> Any:
    def act(form: Any) -> Any:
        result = run_execution(
            database(),
            settings=settings(),
            actor=current_actor(),
            now=utcnow(),
            out_dir=exit_folder(settings()),
        )
        flash(
            _(
                "The exit is executed: %(lines)s lines, %(transferred)s transferred,"
                " %(terminated)s terminated; its files are below.",
                lines=result["lines"],
                transferred=result["transferred"],
                terminated=result["terminated"],
            ),
            "success",
        )
        return _back("completed")

    return _act("execute_form", act)


@bp.route("/exit/files/<name>")
@staff_required("exit.view")
def exit_file(name: str) -> Any:
    return exit_file_response(settings(), name, may_see_pii=current_user.can("pii.reveal"))
