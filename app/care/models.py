"""Tickets, their conversation and attachments, and the SLA targets (DESIGN §11).

A `Ticket` (`T-000001`) is one matter a customer raised — or the system:
a settlement dispute or a dead-lettered provisioning event opens one with
no customer, once per `source` (UNIQUE). Its status moves

    open ⇄ pending_customer, open | pending_customer → escalated,
    open | pending_customer | escalated → resolved → closed,
    resolved → open (a reopening within `REOPEN_DAYS`, counted)

and each change is one service of app/care/workflow.py. The SLA due
instants are set when the ticket opens from the `SlaTarget` of its category
and priority (app/care/sla.py does the arithmetic) and move while the
ticket waits for the customer (`paused_at`, `paused_seconds`). A breach is
flagged once, with the instant it was found (`*_breached_at`).

A `TicketMessage` is customer-visible or internal; a customer only ever
writes customer-visible ones. A `TicketAttachment` is a file of a message,
kept under `instance/attachments/<ticket ref>/<sha256>` and typed by its
content, never by what the uploader said it was.

SLA defaults (`DEFAULT_SLA_TARGETS`, seeded by migration 0010, editable by
admins): a working day is 09:00–18:00 Monday to Friday in `TIMEZONE` (9
working hours). Urgent tickets run around the clock: 1 h to first response,
8 h to resolution. Otherwise, in working time:

| priority | first response | resolution |
|---|---|---|
| high | 4 working h | 2 working days |
| normal | 8 working h | 5 working days |
| low | 2 working days | 10 working days |

with these exceptions: a high-priority fault (no service) runs around the
clock, 2 h / 24 h; porting, which the regulator times, is answered within
4 working h and resolved within 2 working days at normal priority; a
billing dispute, which may need the host's records, has 10 working days to
resolution at normal priority; an inquiry at normal priority 3 working days.

The `SlaDay` table amends the working week, one row per local date of
`TIMEZONE`: a `holiday` (no working hours, the Spring Festival week) or a
`workday` (a Saturday or Sunday worked 09:00–18:00, 调休), filled from the
public holidays of a country or by admins (app/care/sla_calendar.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

CATEGORIES = ("inquiry", "complaint", "fault", "billing_dispute", "porting")
CHANNELS = ("self_care", "phone", "store", "email", "system")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "pending_customer", "resolved", "closed", "escalated")
# Statuses in which the ticket still needs work from staff or the customer.
ACTIVE_STATUSES = ("open", "pending_customer", "escalated")
# Tickets whose SLA clock runs and whose breach the job has still to flag.
_CLOCK_RUNNING = "status IN ('open', 'escalated')"
_FIRST_RESPONSE_OPEN = (
    f"{_CLOCK_RUNNING} AND first_responded_at IS NULL AND first_response_breached_at IS NULL"
)
_RESOLUTION_OPEN = f"{_CLOCK_RUNNING} AND resolution_breached_at IS NULL"
AUTHOR_KINDS = ("customer", "staff", "system")
VISIBILITIES = ("customer", "internal")
# A resolved ticket may be reopened for this long after its resolution.
REOPEN_DAYS = 7
SUBJECT_MAX = 200
BODY_MAX = 10_000
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENTS_PER_MESSAGE = 5
# Allowed attachment types, by the type their content shows.
ATTACHMENT_TYPES = ("application/pdf", "image/png", "image/jpeg", "text/plain")

SLA_DAY_KINDS = ("holiday", "workday")
SLA_DAY_SOURCES = ("public", "staff")
SLA_DAY_NAME_MAX = 100

CATEGORY_LABELS = {
    "inquiry": N_("inquiry"),
    "complaint": N_("complaint"),
    "fault": N_("fault"),
    "billing_dispute": N_("billing dispute"),
    "porting": N_("porting"),
}
CHANNEL_LABELS = {
    "self_care": N_("self-care"),
    "phone": N_("phone"),
    "store": N_("store"),
    "email": N_("e-mail"),
    "system": N_("system"),
}
PRIORITY_LABELS = {
    "low": N_("low"),
    "normal": N_("normal"),
    "high": N_("high"),
    "urgent": N_("urgent"),
}
TICKET_STATUS_LABELS = {
    "open": N_("open"),
    "pending_customer": N_("waiting for the customer"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "escalated": N_("escalated"),
}
VISIBILITY_LABELS = {
    "customer": N_("visible to the customer"),
    "internal": N_("internal note"),
}
SLA_DAY_KIND_LABELS = {
    "holiday": N_("holiday (closed)"),
    "workday": N_("make-up working day"),
}

# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "ticket_category": CATEGORY_LABELS,
    "ticket_channel": CHANNEL_LABELS,
    "ticket_priority": PRIORITY_LABELS,
    "ticket_status": TICKET_STATUS_LABELS,
    "message_visibility": VISIBILITY_LABELS,
    "sla_day_kind": SLA_DAY_KIND_LABELS,
}

HOUR = 60
WORKING_DAY = 9 * HOUR


def _default_sla_targets() -> dict[tuple[str, str], tuple[int, int, bool]]:
    targets: dict[tuple[str, str], tuple[int, int, bool]] = {}
    for category in CATEGORIES:
        targets[(category, "urgent")] = (1 * HOUR, 8 * HOUR, True)
        targets[(category, "high")] = (4 * HOUR, 2 * WORKING_DAY, False)
        targets[(category, "normal")] = (8 * HOUR, 5 * WORKING_DAY, False)
        targets[(category, "low")] = (2 * WORKING_DAY, 10 * WORKING_DAY, False)
    targets[("fault", "high")] = (2 * HOUR, 24 * HOUR, True)
    targets[("porting", "normal")] = (4 * HOUR, 2 * WORKING_DAY, False)
    targets[("billing_dispute", "normal")] = (8 * HOUR, 10 * WORKING_DAY, False)
    targets[("inquiry", "normal")] = (8 * HOUR, 3 * WORKING_DAY, False)
    return targets


# (category, priority) → (first response minutes, resolution minutes, around the clock).
DEFAULT_SLA_TARGETS = _default_sla_targets()


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(in_check("category", CATEGORIES), name="category_known"),
        CheckConstraint(in_check("channel", CHANNELS), name="channel_known"),
        CheckConstraint(in_check("priority", PRIORITIES), name="priority_known"),
        CheckConstraint(in_check("status", STATUSES), name="status_known"),
        # Only the system opens a ticket about no customer.
        CheckConstraint("channel = 'system' OR customer_id IS NOT NULL", name="customer_present"),
        CheckConstraint(
            "(status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL)", name="resolved_when"
        ),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_when"),
        CheckConstraint(
            "(status = 'pending_customer') = (paused_at IS NOT NULL)", name="paused_when"
        ),
        CheckConstraint(
            "satisfaction IS NULL OR (satisfaction BETWEEN 1 AND 5"
            " AND satisfaction_at IS NOT NULL AND customer_id IS NOT NULL)",
            name="satisfaction_valid",
        ),
        CheckConstraint(
            "(regulator_ref IS NULL) = (regulator_escalated_on IS NULL)", name="regulator_complete"
        ),
        CheckConstraint("reopen_count >= 0 AND paused_seconds >= 0", name="counts_not_negative"),
        CheckConstraint(
            "resolution_due_at >= first_response_due_at", name="resolution_after_response"
        ),
        # The queue: tickets of a status by due time.
        Index("ix_ticket_status_resolution_due_at", "status", "resolution_due_at"),
        # The breach job: only tickets whose clock runs and whose breach is still to flag.
        Index(
            "ix_ticket_first_response_unflagged",
            "first_response_due_at",
            sqlite_where=text(_FIRST_RESPONSE_OPEN),
            postgresql_where=text(_FIRST_RESPONSE_OPEN),
        ),
        Index(
            "ix_ticket_resolution_unflagged",
            "resolution_due_at",
            sqlite_where=text(_RESOLUTION_OPEN),
            postgresql_where=text(_RESOLUTION_OPEN),
        ),
        # A customer's tickets, newest first (self-care, the 360° view).
        Index("ix_ticket_customer_id_id", "customer_id", "id"),
        Index("ix_ticket_assignee_id_status", "assignee_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=20, unique=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    line_id: int | None = Field(default=None, foreign_key="line.id", index=True)
    category: str = Field(max_length=20)
    channel: str = Field(max_length=10)
    priority: str = Field(default="normal", max_length=10)
    status: str = Field(default="open", max_length=20)
    subject: str = Field(max_length=SUBJECT_MAX)
    assignee_id: int | None = Field(default=None, foreign_key="staff_user.id")
    # What opened a system ticket (`dispute:12`, `provisioning:34`): once per source.
    source: str | None = Field(default=None, max_length=60, unique=True)
    # The SLA clock the ticket opened with: around the clock, or working hours only.
    sla_around_the_clock: bool = False
    first_response_due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    resolution_due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    first_responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # While waiting for the customer the clock stops: since when, and how much
    # SLA time (working seconds, or plain seconds around the clock) all pauses took.
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_seconds: int = 0
    first_response_breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution_breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    regulator_ref: str | None = Field(default=None, max_length=60)
    regulator_escalated_on: date | None = None
    satisfaction: int | None = None
    satisfaction_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reopen_count: int = 0
    locale: str = Field(default="zh_Hans", max_length=10)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    @property
    def breached(self) -> bool:
        return (
            self.first_response_breached_at is not None or self.resolution_breached_at is not None
        )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class TicketMessage(SQLModel, table=True):
    __tablename__ = "ticket_message"
    __table_args__ = (
        CheckConstraint(in_check("author_kind", AUTHOR_KINDS), name="author_kind_known"),
        CheckConstraint(in_check("visibility", VISIBILITIES), name="visibility_known"),
        CheckConstraint(
            "author_kind <> 'customer' OR visibility = 'customer'", name="customer_writes_visible"
        ),
        CheckConstraint(f"length(body) BETWEEN 1 AND {BODY_MAX}", name="body_length"),
        Index("ix_ticket_message_ticket_id_id", "ticket_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    author_kind: str = Field(max_length=10)
    # The staff user, customer or nothing (the system); the label is kept for display.
    author_id: int | None = None
    author_label: str = Field(default="", max_length=254)
    body: str = Field(sa_type=Text)
    visibility: str = Field(default="customer", max_length=10)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class TicketAttachment(SQLModel, table=True):
    __tablename__ = "ticket_attachment"
    __table_args__ = (
        CheckConstraint(in_check("content_type", ATTACHMENT_TYPES), name="type_allowed"),
        CheckConstraint(
            f"size_bytes BETWEEN 1 AND {ATTACHMENT_MAX_BYTES}", name="size_within_limit"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    message_id: int = Field(foreign_key="ticket_message.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=40)
    size_bytes: int
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SlaTarget(SQLModel, table=True):
    """How long a category and priority may take to a first response and to resolution."""

    __tablename__ = "sla_target"
    __table_args__ = (
        UniqueConstraint("category", "priority"),
        CheckConstraint(in_check("category", CATEGORIES), name="category_known"),
        CheckConstraint(in_check("priority", PRIORITIES), name="priority_known"),
        CheckConstraint(
            "first_response_minutes > 0 AND resolution_minutes >= first_response_minutes",
            name="minutes_valid",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    category: str = Field(max_length=20)
    priority: str = Field(max_length=10)
    first_response_minutes: int
    resolution_minutes: int
    around_the_clock: bool = False
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SlaDay(SQLModel, table=True):
    """A local date whose working hours differ from the week's: a holiday, or a weekend day worked.

    `source` says who set it: `public` (loaded from a country's public holidays)
    or `staff`; loading never overwrites a date already set.
    """

    __tablename__ = "sla_day"
    __table_args__ = (
        CheckConstraint(in_check("kind", SLA_DAY_KINDS), name="kind_known"),
        CheckConstraint(in_check("source", SLA_DAY_SOURCES), name="source_known"),
        CheckConstraint(f"length(name) BETWEEN 1 AND {SLA_DAY_NAME_MAX}", name="name_length"),
    )

    day: date = Field(primary_key=True)
    kind: str = Field(max_length=10)
    name: str = Field(max_length=SLA_DAY_NAME_MAX)
    source: str = Field(default="staff", max_length=10)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
