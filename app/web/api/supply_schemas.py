"""API schemas of the supply side. Money is integers: `*_minor` (fen/cents) and
wholesale unit prices `*_micro` (1e-6 of the currency unit)."""

from __future__ import annotations

from zoneinfo import available_timezones

from apiflask import Schema
from apiflask.fields import Boolean, Date, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from babel.numbers import list_currencies

from app.web.api.schemas import NON_BLANK_TEXT, PLAIN_TEXT, JsonBool, WholeNumber
from numbering.golden import TIER_CODES
from numbering.models import NUMBER_STATUSES, SIM_KINDS, SIM_STATUSES
from numbering.tiers import MAX_SURCHARGE_MINOR
from plans.models import MAX_VALIDITY_DAYS, PLAN_STATUSES
from wholesale.models import SERVICES

# Bounds of the integer columns behind these fields (PostgreSQL `integer`).
MAX_INT = 2**31 - 1
MONEY = Range(min=0, max=MAX_INT)
COUNT = Range(min=0, max=MAX_INT)


class StrictQuery(Schema):
    """Query parameters; views load them with unknown=RAISE so a misspelt filter is refused."""


class ServicePrices(Schema):
    data = WholeNumber(required=True, validate=MONEY)
    voice = WholeNumber(required=True, validate=MONEY)
    sms = WholeNumber(required=True, validate=MONEY)
    line = WholeNumber(required=True, validate=MONEY)
    number = WholeNumber(required=True, validate=MONEY)


class RateCardOut(Schema):
    id = WholeNumber(required=True)
    effective_from = Date(required=True)
    prices_micro = Nested(ServicePrices, required=True)
    retail_micro = Nested(ServicePrices, required=True)
    non_compliant_services = List(String(), required=True)


class CurrentRateCard(RateCardOut):
    """The rate card in force, inside a host (its own component keeps references unique)."""


class RateCardIn(Schema):
    effective_from = Date(required=True)
    prices_micro = Nested(ServicePrices, required=True)
    retail_micro = Nested(ServicePrices, required=True)


class RateCardListItem(RateCardOut):
    """A rate card inside a list."""


class RateCardList(Schema):
    items = List(Nested(RateCardListItem), required=True)


class HostOut(Schema):
    code = String(required=True)
    name = String(required=True)
    currency = String(required=True)
    timezone = String(required=True)
    provisioning = String(required=True)
    provisioning_url = String(allow_none=True)
    current_rate_card = Nested(CurrentRateCard, allow_none=True)


class HostListItem(HostOut):
    """A host inside a list."""


class HostList(Schema):
    items = List(Nested(HostListItem), required=True)


class HostIn(Schema):
    name = String(required=True, validate=[Length(min=1, max=200), NON_BLANK_TEXT])
    currency = String(load_default="CNY", validate=OneOf(sorted(list_currencies())))
    timezone = String(load_default="Asia/Shanghai", validate=OneOf(sorted(available_timezones())))
    provisioning = String(load_default="log", validate=OneOf(["log", "http"]))
    provisioning_url = String(
        load_default=None, allow_none=True, validate=[Length(max=500), PLAIN_TEXT]
    )


class BlockOut(Schema):
    id = WholeNumber(required=True)
    host = String(required=True)
    first = String(required=True)
    last = String(required=True)
    size = WholeNumber(required=True)
    received_at = DateTime(required=True)
    counts = Dict(keys=String(validate=OneOf(NUMBER_STATUSES)), values=WholeNumber(), required=True)


class BlockListItem(BlockOut):
    """A block inside a list."""


class BlockList(Schema):
    items = List(Nested(BlockListItem), required=True)


class BlockIn(Schema):
    host = String(required=True, validate=[Length(min=1, max=20), PLAIN_TEXT])
    first = String(required=True, validate=Regexp(r"^\+[1-9][0-9]{6,14}$"))
    last = String(required=True, validate=Regexp(r"^\+[1-9][0-9]{6,14}$"))


class NumberOut(Schema):
    msisdn = String(required=True)
    tier = String(allow_none=True)
    surcharge_minor = WholeNumber(required=True)
    status = String(required=True)


class NumberPageOut(Schema):
    items = List(Nested(NumberOut), required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)
    has_more = Boolean(required=True)


class NumberQuery(StrictQuery):
    pattern = String(load_default="", validate=Regexp(r"^[0-9]{0,11}$"))
    mode = String(load_default="ends_with", validate=OneOf(["ends_with", "contains"]))
    tier = String(validate=OneOf(TIER_CODES))
    page = Integer(load_default=1, validate=Range(min=1, max=100_000))
    per_page = Integer(load_default=20, validate=Range(min=1, max=100))


class TierOut(Schema):
    code = String(required=True)
    surcharge_minor = WholeNumber(required=True)
    enabled = Boolean(required=True)


class TierListItem(TierOut):
    """A tier inside a list."""


class TierList(Schema):
    items = List(Nested(TierListItem), required=True)


class TierIn(Schema):
    surcharge_minor = WholeNumber(required=True, validate=Range(min=0, max=MAX_SURCHARGE_MINOR))
    enabled = JsonBool(load_default=True)


class SimOut(Schema):
    iccid = String(required=True)
    imsi = String(required=True)
    kind = String(required=True)
    status = String(required=True)
    created_at = DateTime(required=True)


class SimPage(Schema):
    items = List(Nested(SimOut), required=True)
    total = WholeNumber(required=True)
    counts = Dict(keys=String(), values=WholeNumber(), required=True)


class SimQuery(StrictQuery):
    status = String(validate=OneOf(SIM_STATUSES))
    kind = String(validate=OneOf(SIM_KINDS))
    page = Integer(load_default=1, validate=Range(min=1, max=100_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))


class SimImportIn(Schema):
    host = String(required=True, validate=[Length(min=1, max=20), PLAIN_TEXT])
    filename = String(load_default="api.csv", validate=[Length(max=200), PLAIN_TEXT])
    csv = String(
        required=True,
        validate=Length(min=1, max=20_000_000),
        metadata={"description": "The file's text: header iccid,imsi,kind,lpa"},
    )


class SimImportOut(Schema):
    rows = WholeNumber(required=True)
    imported = WholeNumber(required=True)


class LocalText(Schema):
    zh_Hans = String(validate=[Length(max=1000), PLAIN_TEXT])
    en = String(validate=[Length(max=1000), PLAIN_TEXT])


class PlanIn(Schema):
    names = Nested(LocalText, required=True)
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


__all__ = ["SERVICES"]


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
    names = Nested(LocalText, required=True)
    price_minor = WholeNumber(required=True, validate=MONEY)
    data_mb = WholeNumber(required=True, validate=Range(min=1, max=MAX_INT))


class AddOnStatusIn(Schema):
    status = String(required=True, validate=OneOf(PLAN_STATUSES))
