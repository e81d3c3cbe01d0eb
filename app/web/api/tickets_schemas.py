"""API schemas of customer service: tickets, their messages, SLA targets, the SLA
calendar and figures."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Date, DateTime, File, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from app.care.models import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_TYPES,
    ATTACHMENTS_PER_MESSAGE,
    AUTHOR_KINDS,
    BODY_MAX,
    CATEGORIES,
    CHANNELS,
    PRIORITIES,
    SLA_DAY_KINDS,
    SLA_DAY_NAME_MAX,
    SLA_DAY_SOURCES,
    STATUSES,
    SUBJECT_MAX,
    VISIBILITIES,
)
from app.care.sla_calendar import (
    DEFAULT_COUNTRY,
    FIRST_YEAR,
    LAST_YEAR,
    public_holiday_countries,
)
from app.care.targets import MAX_TARGET_MINUTES
from app.care.workflow import MAX_BULK, REGULATOR_REF_MAX
from app.web.api.schemas import NON_BLANK_TEXT, PLAIN_TEXT, JsonBool, StrictQuery, WholeNumber

STAFF_CHANNELS = ("phone", "store", "email")
# A message: a visible character somewhere; tabs and line ends allowed, no other control
# characters (app/care/tickets.py clean_body).
_BODY_CHAR = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
MESSAGE_TEXT = Regexp(
    rf"^{_BODY_CHAR}*[^\x00-\x20\x7f-\x9f]{_BODY_CHAR}*$",
    error="must contain a visible character and no control characters but tabs and line ends",
)
MAX_SPAN_DAYS = 366


class TicketQuery(StrictQuery):
    status = String(
        validate=OneOf((*STATUSES, "active", "all")),
        metadata={
            "description": "One status, `active` (open, waiting, escalated; the default) or `all`."
        },
    )
    category = String(validate=OneOf(CATEGORIES))
    assignee = String(
        validate=[Length(max=254), PLAIN_TEXT],
        metadata={"description": "A staff e-mail, or `none` for unassigned tickets."},
    )
    breached = Boolean(metadata={"description": "true: breached tickets only; false: none."})
    customer = String(
        validate=[Length(max=20), PLAIN_TEXT], metadata={"description": "A customer ref."}
    )
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))


class TicketOut(Schema):
    ref = String(required=True)
    customer_ref = String(allow_none=True)
    msisdn = String(allow_none=True)
    category = String(required=True, validate=OneOf(CATEGORIES))
    channel = String(required=True, validate=OneOf(CHANNELS))
    priority = String(required=True, validate=OneOf(PRIORITIES))
    status = String(required=True, validate=OneOf(STATUSES))
    subject = String(required=True)
    assignee = String(allow_none=True, metadata={"description": "The assignee's e-mail."})
    source = String(allow_none=True)
    sla_around_the_clock = Boolean(required=True)
    first_response_due_at = DateTime(required=True)
    resolution_due_at = DateTime(required=True)
    first_responded_at = DateTime(allow_none=True)
    resolved_at = DateTime(allow_none=True)
    closed_at = DateTime(allow_none=True)
    paused_at = DateTime(allow_none=True)
    paused_seconds = WholeNumber(required=True)
    first_response_breached_at = DateTime(allow_none=True)
    resolution_breached_at = DateTime(allow_none=True)
    regulator_ref = String(allow_none=True)
    regulator_escalated_on = Date(allow_none=True)
    satisfaction = Integer(allow_none=True)
    reopen_count = WholeNumber(required=True)
    locale = String(required=True)
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)


class TicketListItem(TicketOut):
    """A ticket inside a list."""


class TicketPage(Schema):
    items = List(Nested(TicketListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class AttachmentOut(Schema):
    id = WholeNumber(required=True)
    filename = String(required=True)
    content_type = String(required=True, validate=OneOf(ATTACHMENT_TYPES))
    size_bytes = WholeNumber(required=True)
    sha256 = String(required=True)


class MessageOut(Schema):
    id = WholeNumber(required=True)
    author_kind = String(required=True, validate=OneOf(AUTHOR_KINDS))
    author_label = String(required=True)
    visibility = String(required=True, validate=OneOf(VISIBILITIES))
    body = String(required=True)
    created_at = DateTime(required=True)
    attachments = List(Nested(AttachmentOut), required=True)


class MessageItem(MessageOut):
    """A message inside a ticket."""


class TicketDetail(TicketOut):
    messages = List(Nested(MessageItem), required=True)


class TicketIn(Schema):
    customer = String(
        required=True,
        validate=[Length(min=1, max=20), NON_BLANK_TEXT],
        metadata={
            "description": "The customer's ref (C-0001) or one of their numbers (E.164); "
            "a number ties the ticket to that line."
        },
    )
    channel = String(required=True, validate=OneOf(STAFF_CHANNELS))
    category = String(required=True, validate=OneOf(CATEGORIES))
    priority = String(load_default="normal", validate=OneOf(PRIORITIES))
    subject = String(required=True, validate=[Length(min=1, max=SUBJECT_MAX), NON_BLANK_TEXT])
    body = String(required=True, validate=[Length(min=1, max=BODY_MAX), MESSAGE_TEXT])


class MessageIn(Schema):
    body = String(required=True, validate=[Length(min=1, max=BODY_MAX), MESSAGE_TEXT])
    visibility = String(
        required=True,
        validate=OneOf(VISIBILITIES),
        metadata={
            "description": "`customer`: an answer, notified to the customer; "
            "`internal`: a note for staff."
        },
    )


class MessageUploadIn(MessageIn):
    attachments = List(
        File(),
        required=True,
        validate=Length(min=1),
        metadata={
            "description": f"One to {ATTACHMENTS_PER_MESSAGE} files, each a PDF, PNG, JPEG or "
            f"plain text file of 1 byte to {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MiB, typed "
            "by its content; the name's extension must agree (.pdf, .png, .jpg, .txt). "
            "A refused file keeps the whole message out."
        },
    )


class StatusIn(Schema):
    status = String(required=True, validate=OneOf(STATUSES))
    reason = String(load_default="", validate=[Length(max=500), PLAIN_TEXT])


class AssignIn(Schema):
    tickets = List(
        String(validate=[Length(min=1, max=20), PLAIN_TEXT]),
        required=True,
        validate=Length(min=1, max=MAX_BULK),
    )
    assignee = String(
        required=True,
        allow_none=True,
        validate=[Length(min=1, max=254), PLAIN_TEXT],
        metadata={"description": "The e-mail of an active admin or care user; null unassigns."},
    )


class AssignOut(Schema):
    changed = WholeNumber(required=True)


class EscalationIn(Schema):
    reference = String(
        required=True, validate=[Length(min=1, max=REGULATOR_REF_MAX), NON_BLANK_TEXT]
    )
    date = Date(required=True, metadata={"description": "Not after today in TIMEZONE."})


class SlaTargetOut(Schema):
    category = String(required=True, validate=OneOf(CATEGORIES))
    priority = String(required=True, validate=OneOf(PRIORITIES))
    first_response_minutes = WholeNumber(required=True)
    resolution_minutes = WholeNumber(required=True)
    around_the_clock = Boolean(required=True)


class SlaTargetItem(SlaTargetOut):
    """A target inside the list."""


class SlaTargetList(Schema):
    items = List(Nested(SlaTargetItem), required=True)


class SlaTargetIn(Schema):
    first_response_minutes = WholeNumber(
        required=True, validate=Range(min=1, max=MAX_TARGET_MINUTES)
    )
    resolution_minutes = WholeNumber(
        required=True,
        validate=Range(min=1, max=MAX_TARGET_MINUTES),
        metadata={"description": "Not less than first_response_minutes."},
    )
    around_the_clock = JsonBool(required=True)


class FiguresQuery(StrictQuery):
    first = Date(required=True, metadata={"description": "First local day (TIMEZONE)."})
    last = Date(
        required=True,
        metadata={
            "description": f"Last local day; at most {MAX_SPAN_DAYS} days after the first are "
            "counted, and a last day before the first counts nothing."
        },
    )


class DayCount(Schema):
    day = Date(required=True)
    opened = WholeNumber(required=True)


class StatusCount(Schema):
    open = WholeNumber(required=True)
    pending_customer = WholeNumber(required=True)
    escalated = WholeNumber(required=True)


class AttainmentOut(Schema):
    first_response_met = WholeNumber(required=True)
    first_response_total = WholeNumber(required=True)
    resolution_met = WholeNumber(required=True)
    resolution_total = WholeNumber(required=True)
    both_met = WholeNumber(required=True)
    both_total = WholeNumber(required=True)
    share = Float(allow_none=True, metadata={"description": "both_met / both_total."})


class FiguresOut(Schema):
    opened_per_day = List(Nested(DayCount), required=True)
    open_by_status = Nested(StatusCount, required=True)
    sla_attainment = Nested(AttainmentOut, required=True)


class SlaDayQuery(StrictQuery):
    year = Integer(
        validate=Range(min=FIRST_YEAR, max=LAST_YEAR),
        metadata={"description": "Only this year's days; every day when left out."},
    )


class SlaDayPath(Schema):
    day = Date(required=True, metadata={"description": "A local date of TIMEZONE, YYYY-MM-DD."})


class SlaDayOut(Schema):
    day = Date(required=True)
    kind = String(
        required=True,
        validate=OneOf(SLA_DAY_KINDS),
        metadata={
            "description": "`holiday`: no working hours; `workday`: a Saturday or Sunday "
            "worked 09:00–18:00 (a make-up working day)."
        },
    )
    name = String(required=True)
    source = String(
        required=True,
        validate=OneOf(SLA_DAY_SOURCES),
        metadata={"description": "`public`: loaded from public holidays; `staff`: set by hand."},
    )
    updated_at = DateTime(required=True)


class SlaDayItem(SlaDayOut):
    """A day inside the calendar."""


class SlaDayList(Schema):
    items = List(Nested(SlaDayItem), required=True)


class SlaDayIn(Schema):
    kind = String(
        required=True,
        validate=OneOf(SLA_DAY_KINDS),
        metadata={"description": "`workday` only on a Saturday or Sunday."},
    )
    name = String(required=True, validate=[Length(min=1, max=SLA_DAY_NAME_MAX), NON_BLANK_TEXT])


class SlaLoadIn(Schema):
    year = WholeNumber(required=True, validate=Range(min=FIRST_YEAR, max=LAST_YEAR))
    country = String(
        load_default=DEFAULT_COUNTRY,
        validate=OneOf(public_holiday_countries()),
        metadata={"description": "ISO 3166-1 alpha-2 code; CN (the default) has make-up days."},
    )


class SlaLoadOut(Schema):
    country = String(required=True)
    year = WholeNumber(required=True)
    holidays = List(Date(), required=True, metadata={"description": "Holidays added."})
    workdays = List(Date(), required=True, metadata={"description": "Make-up days added."})
    kept = List(
        Date(),
        required=True,
        metadata={"description": "Days of the year already set, left as they were."},
    )
