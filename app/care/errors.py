"""Customer service refusals (DESIGN §11)."""

from __future__ import annotations

from app.core.errors import Conflict, InvalidInput, NotFound


class TicketNotFound(NotFound):
    """No such ticket — or not one of this customer's, which looks the same."""

    code = "ticket_not_found"


class TicketState(Conflict):
    """The ticket's status does not allow this change."""

    code = "ticket_state"


class TicketInvalid(InvalidInput):
    code = "ticket_invalid"


class AttachmentRefused(InvalidInput):
    """A file that is too large, of a type not allowed, or one too many."""

    code = "attachment_refused"


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"


class SatisfactionRefused(Conflict):
    """A rating before resolution, by someone else, or a second one."""

    code = "satisfaction_refused"


class SlaDayInvalid(InvalidInput):
    """A calendar day that cannot be set: a bad date, kind, name or year."""

    code = "sla_day_invalid"


class SlaDayNotFound(NotFound):
    code = "sla_day_not_found"


class SlaCalendarClosed(Conflict):
    """A calendar with too long a stretch of days without working hours."""

    code = "sla_calendar_closed"
