"""API schemas of the fraud rules and alerts."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Date, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import OneOf, Range

from app.analytics.models import ALERT_STATUSES, RULES
from app.web.api.schemas import JsonBool, StrictQuery, WholeNumber


class AlertOut(Schema):
    id = WholeNumber(required=True)
    rule = String(required=True, validate=OneOf(RULES))
    subject = String(required=True)
    line_id = WholeNumber(allow_none=True)
    msisdn = String(allow_none=True)
    customer_ref = String(required=True)
    day = Date(required=True, metadata={"description": "The local day the alert is about."})
    figures = Dict(required=True, metadata={"description": "What made the rule fire."})
    status = String(required=True, validate=OneOf(ALERT_STATUSES))
    ticket_ref = String(allow_none=True)
    suspended_at = DateTime(allow_none=True)
    created_at = DateTime(required=True)
    status_changed_at = DateTime(allow_none=True)
    status_changed_by = String(required=True)


class AlertListItem(AlertOut):
    """An alert inside a list."""


class AlertPage(Schema):
    items = List(Nested(AlertListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class AlertQuery(StrictQuery):
    status = String(validate=OneOf(ALERT_STATUSES))
    rule = String(validate=OneOf(RULES))
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))


class RuleOut(Schema):
    rule = String(required=True, validate=OneOf(RULES))
    enabled = JsonBool(required=True)
    auto_suspend = JsonBool(required=True)
    params = Dict(keys=String(), values=WholeNumber(), required=True)


class RuleItem(RuleOut):
    """A rule inside the list."""


class RuleList(Schema):
    items = List(Nested(RuleItem), required=True)


class RuleIn(Schema):
    enabled = JsonBool(required=True)
    auto_suspend = JsonBool(
        required=True, metadata={"description": "Not for voucher_failures (no line)."}
    )
    params = Dict(
        keys=String(),
        values=WholeNumber(),
        required=True,
        metadata={"description": "Every threshold of the rule, each within its bounds."},
    )
