"""API schemas of add-on purchases, the auto-renew switch and the notification outbox."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from app.notifications.models import CHANNELS, NOTIFICATION_KINDS, NOTIFICATION_STATUSES
from app.subscribers.models import LINE_STATUSES
from app.web.api.schemas import JsonBool, WholeNumber
from app.web.api.supply_schemas import StrictQuery
from plans.terms import PLAN_CODE_RE

ADDON_KEY = Regexp(r"^[\x21-\x7e]{1,64}$", error="1 to 64 printable ASCII characters, no spaces")


class AddOnBuyIn(Schema):
    addon = String(
        required=True,
        validate=[Length(min=1, max=40), Regexp(f"^{PLAN_CODE_RE.pattern}$")],
        metadata={"description": "The code of a published add-on."},
    )
    idempotency_key = String(
        required=True,
        validate=ADDON_KEY,
        metadata={
            "description": "Your key for this purchase: the same key for the same line again "
            "returns the first purchase and charges nothing."
        },
    )


class AddOnBoughtOut(Schema):
    id = WholeNumber(required=True)
    msisdn = String(required=True)
    addon = String(required=True)
    data_kb = WholeNumber(required=True)
    price_minor = WholeNumber(required=True)
    currency = String(required=True)
    entry_id = WholeNumber(required=True)
    period_start = DateTime(required=True)
    period_end = DateTime(required=True)
    period_data_kb = WholeNumber(required=True)
    period_data_kb_left = WholeNumber(required=True)
    balance = WholeNumber(required=True)
    created_at = DateTime(required=True)


class AutoRenewIn(Schema):
    auto_renew = JsonBool(required=True)


class AutoRenewOut(Schema):
    msisdn = String(required=True)
    status = String(required=True, validate=OneOf(LINE_STATUSES))
    auto_renew = JsonBool(required=True)


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
