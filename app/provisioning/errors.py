"""Refusals of the provisioning outbox."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class EventNotFound(NotFound):
    code = "provisioning_event_not_found"


class EventState(Conflict):
    code = "provisioning_event_state"
