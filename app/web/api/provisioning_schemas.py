"""API schemas of the provisioning outbox."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import OneOf, Range

from app.provisioning.models import ACTIONS, EVENT_STATUSES
from app.web.api.schemas import StrictQuery, WholeNumber


class EventOut(Schema):
    id = WholeNumber(required=True)
    line_id = WholeNumber(required=True)
    msisdn = String(required=True)
    host_id = WholeNumber(required=True)
    action = String(required=True, validate=OneOf(ACTIONS))
    payload = Dict(required=True)
    status = String(required=True, validate=OneOf(EVENT_STATUSES))
    attempts = WholeNumber(required=True)
    next_attempt_at = DateTime(required=True)
    last_error = String(required=True)
    created_at = DateTime(required=True)
    delivered_at = DateTime(allow_none=True)


class EventListItem(EventOut):
    """An event inside a list."""


class EventPage(Schema):
    items = List(Nested(EventListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class EventQuery(StrictQuery):
    status = String(validate=OneOf(EVENT_STATUSES))
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))
