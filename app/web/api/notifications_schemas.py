"""API schemas of the notification outbox."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Integer, List, Nested, String
from apiflask.validators import OneOf, Range

from app.notifications.models import CHANNELS, NOTIFICATION_KINDS, NOTIFICATION_STATUSES
from app.web.api.schemas import StrictQuery, WholeNumber


class NotificationOut(Schema):
    """A notice as staff see it: never its data or body (a reset link may be in them)."""

    id = WholeNumber(required=True)
    customer_id = WholeNumber(allow_none=True)
    channel = String(required=True, validate=OneOf(CHANNELS))
    recipient = String(required=True)
    kind = String(required=True, validate=OneOf(NOTIFICATION_KINDS))
    locale = String(required=True)
    subject = String(required=True)
    status = String(required=True, validate=OneOf(NOTIFICATION_STATUSES))
    attempts = WholeNumber(required=True)
    next_attempt_at = DateTime(required=True)
    last_error = String(required=True)
    created_at = DateTime(required=True)
    sent_at = DateTime(allow_none=True)


class NotificationListItem(NotificationOut):
    """A notice inside a list."""


class NotificationPage(Schema):
    items = List(Nested(NotificationListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class NotificationQuery(StrictQuery):
    status = String(validate=OneOf(NOTIFICATION_STATUSES))
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))
