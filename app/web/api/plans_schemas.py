"""API schemas of what is sold: plans, their versions and margin, add-ons."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.web.api.schemas import (
    COUNT,
    MAX_INT,
    MONEY,
    PLAIN_TEXT,
    JsonBool,
    StrictQuery,
    WholeNumber,
)
from plans.models import MAX_VALIDITY_DAYS, PLAN_STATUSES
from plans.terms import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH


class LocalName(Schema):
    zh_Hans = String(validate=[Length(max=MAX_NAME_LENGTH), PLAIN_TEXT])
    en = String(validate=[Length(max=MAX_NAME_LENGTH), PLAIN_TEXT])


class LocalText(Schema):
    zh_Hans = String(validate=[Length(max=MAX_DESCRIPTION_LENGTH), PLAIN_TEXT])
    en = String(validate=[Length(max=MAX_DESCRIPTION_LENGTH), PLAIN_TEXT])


class PlanIn(Schema):
    names = Nested(LocalName, required=True)
    descriptions = Nested(LocalText, load_default=dict)
    host = String(required=True, validate=[Length(min=1, max=20), PLAIN_TEXT])
    price_minor = WholeNumber(required=True, validate=MONEY)
    validity_days = WholeNumber(required=True, validate=Range(min=1, max=MAX_VALIDITY_DAYS))
    data_mb = WholeNumber(load_default=0, validate=COUNT)
    voice_min = WholeNumber(load_default=0, validate=COUNT)
    sms = WholeNumber(load_default=0, validate=COUNT)
    overage_data_per_mb_minor = WholeNumber(load_default=0, validate=MONEY)
    overage_voice_per_min_minor = WholeNumber(load_default=0, validate=MONEY)
    overage_sms_minor = WholeNumber(load_default=0, validate=MONEY)
    voice_increment_s = WholeNumber(load_default=60, validate=Range(min=1, max=3600))
    auto_renew_default = JsonBool(load_default=True)


class MarginOut(Schema):
    price_minor = WholeNumber(required=True)
    data_cost_minor = WholeNumber(required=True)
    voice_cost_minor = WholeNumber(required=True)
    sms_cost_minor = WholeNumber(required=True)
    line_fee_minor = WholeNumber(required=True)
    margin_minor = WholeNumber(required=True)


class PlanOut(Schema):
    id = WholeNumber(required=True)
    code = String(required=True)
    version = WholeNumber(required=True)
    status = String(required=True, validate=OneOf(PLAN_STATUSES))
    names = Dict(keys=String(), values=String(), required=True)
    descriptions = Dict(keys=String(), values=String(), required=True)
    currency = String(required=True)
    price_minor = WholeNumber(required=True)
    validity_days = WholeNumber(required=True)
    data_mb = WholeNumber(required=True)
    voice_min = WholeNumber(required=True)
    sms = WholeNumber(required=True)
    overage_data_per_mb_minor = WholeNumber(required=True)
    overage_voice_per_min_minor = WholeNumber(required=True)
    overage_sms_minor = WholeNumber(required=True)
    voice_increment_s = WholeNumber(required=True)
    auto_renew_default = Boolean(required=True)
    margin_override = Boolean(required=True)
    published_at = DateTime(allow_none=True)
    retired_at = DateTime(allow_none=True)
    margin = Nested(MarginOut, allow_none=True)


class PlanListItem(PlanOut):
    """A plan inside a list."""


class PlanList(Schema):
    items = List(Nested(PlanListItem), required=True)


class PlanVersion(PlanOut):
    """One version of a plan."""


class PlanDetail(PlanOut):
    versions = List(Nested(PlanVersion), required=True)


class PlanQuery(StrictQuery):
    status = String(validate=OneOf(PLAN_STATUSES))


class PublishIn(Schema):
    override_negative_margin = JsonBool(load_default=False)
    reason = String(load_default="", validate=[Length(max=500), PLAIN_TEXT])


class AddOnOut(Schema):
    code = String(required=True)
    status = String(required=True, validate=OneOf(PLAN_STATUSES))
    names = Dict(keys=String(), values=String(), required=True)
    currency = String(required=True)
    price_minor = WholeNumber(required=True)
    data_mb = WholeNumber(required=True)


class AddOnListItem(AddOnOut):
    """An add-on inside a list."""


class AddOnList(Schema):
    items = List(Nested(AddOnListItem), required=True)


class AddOnIn(Schema):
    names = Nested(LocalName, required=True)
    price_minor = WholeNumber(required=True, validate=MONEY)
    data_mb = WholeNumber(required=True, validate=Range(min=1, max=MAX_INT))


class AddOnStatusIn(Schema):
    status = String(required=True, validate=OneOf(PLAN_STATUSES))
