"""What the console, the store and the API share about tickets.

* **Uploads** are read from the request's `attachments` files (empty file
  inputs skipped), at most one byte past the limit each, so an oversized
  file is refused by app/care/attachments.py without being read whole.
* **Downloads** of an attachment always go out as an attachment of the
  type its content showed, with `X-Content-Type-Options: nosniff` and a
  sandboxing Content-Security-Policy: never a page of ours.
* **SLA countdowns** are text computed here (time left, or overdue by), so
  the queue needs no script.
* **Forms** of the console and the store (the SLA calendar's too), with the
  length limits of the models and messages in both languages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Response, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.care import attachments as files
from app.care.models import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_PER_MESSAGE,
    BODY_MAX,
    CATEGORIES,
    CATEGORY_LABELS,
    PRIORITIES,
    PRIORITY_LABELS,
    SLA_DAY_NAME_MAX,
    SUBJECT_MAX,
    Ticket,
    TicketAttachment,
)
from app.care.sla_calendar import DEFAULT_COUNTRY, FIRST_YEAR, LAST_YEAR
from app.care.targets import MAX_TARGET_MINUTES
from app.web.context import settings

STAFF_CHANNELS = ("phone", "store", "email")
# The largest request of a message with its files: every file at its limit.
UPLOAD_LIMIT = ATTACHMENTS_PER_MESSAGE * ATTACHMENT_MAX_BYTES


def storage() -> Path:
    """Where attachments are kept: `<instance>/attachments`."""
    return settings().instance_path / "attachments"


def uploads_from_request(field: str = "attachments") -> list[files.Upload]:
    """The files posted under `field`; empty file inputs are left out."""
    uploads = []
    for upload in request.files.getlist(field):
        if not upload.filename:
            continue
        content = upload.stream.read(ATTACHMENT_MAX_BYTES + 1)
        uploads.append(files.Upload(upload.filename, content))
    return uploads


def attachment_response(ticket: Ticket, attachment: TicketAttachment) -> Response:
    """The attachment's bytes as a download, never rendered by the browser."""
    body = files.read_attachment(storage(), ticket_ref=ticket.ref, attachment=attachment)
    response = Response(body, mimetype=attachment.content_type)
    response.headers.set("Content-Disposition", "attachment", filename=attachment.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def duration_text(delta: timedelta) -> str:
    """A duration in days, hours and minutes ("2 d 3 h", "3 h 20 min", "5 min")."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(days)s d %(hours)s h", days=days, hours=hours)
    if hours:
        return _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    return _("%(minutes)s min", minutes=minutes)


@dataclass(frozen=True)
class Countdown:
    """One SLA clock of a ticket as the queue shows it."""

    text: str
    state: str  # met | missed | paused | running | overdue


def countdown(due: datetime, done: datetime | None, *, paused: bool, now: datetime) -> Countdown:
    """The text of a due instant: met or missed once done, else time left or overdue."""
    if done is not None:
        if done <= due:
            return Countdown(_("met"), "met")
        return Countdown(_("late by %(time)s", time=duration_text(done - due)), "missed")
    if paused:
        return Countdown(_("paused"), "paused")
    if due >= now:
        return Countdown(_("%(time)s left", time=duration_text(due - now)), "running")
    return Countdown(_("overdue by %(time)s", time=duration_text(now - due)), "overdue")


def clocks(ticket: Ticket, now: datetime) -> dict[str, Countdown]:
    """Both SLA clocks of a ticket: `first_response` and `resolution`."""
    paused = ticket.status == "pending_customer"
    return {
        "first_response": countdown(
            ticket.first_response_due_at, ticket.first_responded_at, paused=paused, now=now
        ),
        "resolution": countdown(
            ticket.resolution_due_at, ticket.resolved_at, paused=paused, now=now
        ),
    }


def category_choices() -> list[SelectChoice]:
    return [SelectChoice(value=c, label=_l(CATEGORY_LABELS[c])) for c in CATEGORIES]


def priority_choices() -> list[SelectChoice]:
    return [SelectChoice(value=p, label=_l(PRIORITY_LABELS[p])) for p in PRIORITIES]


def _choices(*pairs: tuple[str, Any]) -> list[SelectChoice]:
    return [SelectChoice(value=value, label=text) for value, text in pairs]


SUBJECT_MESSAGE = _l("A subject of at most %(max)s characters.", max=SUBJECT_MAX)
BODY_MESSAGE = _l("A message of at most %(max)s characters.", max=BODY_MAX)


def _subject() -> StringField:
    return StringField(
        _l("Subject"),
        validators=[
            DataRequired(SUBJECT_MESSAGE),
            Length(max=SUBJECT_MAX, message=SUBJECT_MESSAGE),
        ],
    )


def _body(label: Any) -> TextAreaField:
    return TextAreaField(
        label, validators=[DataRequired(BODY_MESSAGE), Length(max=BODY_MAX, message=BODY_MESSAGE)]
    )


class CustomerTicketForm(FlaskForm):
    """A subscriber opening a ticket in self-care."""

    category = SelectField(_l("What is it about?"), choices=category_choices)
    line_id = SelectField(_l("Line"), coerce=int, validate_choice=True)
    subject = _subject()
    body = _body(_l("Your message"))


class CustomerReplyForm(FlaskForm):
    body = _body(_l("Your reply"))


class RatingForm(FlaskForm):
    score = SelectField(
        _l("How satisfied are you with how we handled it?"),
        coerce=int,
        choices=[SelectChoice(value=n, label=str(n)) for n in (5, 4, 3, 2, 1)],
        validators=[InputRequired()],
    )


class StaffTicketForm(FlaskForm):
    """Care opening a ticket for a phone call, a store visit or an e-mail."""

    customer = StringField(
        _l("Customer (ref or phone number)"),
        validators=[DataRequired(), Length(max=20)],
    )
    channel = SelectField(
        _l("Contact by"),
        choices=_choices(("phone", _l("phone")), ("store", _l("store")), ("email", _l("e-mail"))),
    )
    category = SelectField(_l("Category"), choices=category_choices)
    priority = SelectField(_l("Priority"), choices=priority_choices, default="normal")
    subject = _subject()
    body = _body(_l("What the customer said"))


class ReplyForm(FlaskForm):
    visibility = SelectField(
        _l("Who sees it"),
        choices=_choices(
            ("customer", _l("The customer (an answer; they are notified)")),
            ("internal", _l("Staff only (an internal note)")),
        ),
    )
    body = _body(_l("Message"))


class EscalationForm(FlaskForm):
    reference = StringField(
        _l("Regulator's reference"), validators=[DataRequired(), Length(max=60)]
    )
    date = DateField(_l("Escalated on"), validators=[InputRequired()])


class SlaTargetForm(FlaskForm):
    first_response_minutes = IntegerField(
        _l("First response (minutes)"),
        validators=[InputRequired(), NumberRange(min=1, max=MAX_TARGET_MINUTES)],
    )
    resolution_minutes = IntegerField(
        _l("Resolution (minutes)"),
        validators=[InputRequired(), NumberRange(min=1, max=MAX_TARGET_MINUTES)],
    )
    around_the_clock = SelectField(
        _l("Clock"),
        choices=_choices(("0", _l("working hours")), ("1", _l("around the clock"))),
        validators=[Optional()],
    )


YEAR_MESSAGE = _l("Choose a year from %(first)s to %(last)s.", first=FIRST_YEAR, last=LAST_YEAR)


class SlaDayForm(FlaskForm):
    """An admin adding a holiday or a make-up working day to the SLA calendar."""

    day = DateField(_l("Date"), validators=[InputRequired(_l("Write the date as YYYY-MM-DD."))])
    kind = SelectField(
        _l("Kind"),
        choices=_choices(
            ("holiday", _l("holiday (closed)")), ("workday", _l("make-up working day"))
        ),
    )
    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(_l("Give the day a name.")),
            Length(
                max=SLA_DAY_NAME_MAX,
                message=_l("A name of at most %(max)s characters.", max=SLA_DAY_NAME_MAX),
            ),
        ],
    )


class SlaLoadForm(FlaskForm):
    """An admin loading a year's public holidays and make-up working days."""

    year = IntegerField(
        _l("Year"),
        validators=[
            InputRequired(YEAR_MESSAGE),
            NumberRange(min=FIRST_YEAR, max=LAST_YEAR, message=YEAR_MESSAGE),
        ],
    )
    country = StringField(
        _l("Country"), default=DEFAULT_COUNTRY, validators=[DataRequired(), Length(max=2)]
    )
