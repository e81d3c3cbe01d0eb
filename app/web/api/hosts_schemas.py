"""API schemas of host carriers: hosts, rate cards and the provisioning secret."""

from __future__ import annotations

from zoneinfo import available_timezones

from apiflask import Schema
from apiflask.fields import Boolean, Date, List, Nested, String
from apiflask.validators import Length, OneOf, Regexp
from babel.numbers import list_currencies

from app.core import limits
from app.web.api.schemas import MONEY, NON_BLANK_TEXT, PLAIN_TEXT, WholeNumber


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
    name = String(required=True, validate=[Length(min=1, max=limits.LABEL), NON_BLANK_TEXT])
    currency = String(load_default="CNY", validate=OneOf(sorted(list_currencies())))
    timezone = String(load_default="Asia/Shanghai", validate=OneOf(sorted(available_timezones())))
    provisioning = String(load_default="log", validate=OneOf(["log", "http"]))
    provisioning_url = String(
        load_default=None, allow_none=True, validate=[Length(max=500), PLAIN_TEXT]
    )


class SecretIn(Schema):
    secret = String(
        required=True,
        allow_none=True,
        validate=Regexp(r"^[!-~]{16,200}$"),
        load_only=True,
        metadata={"description": "16 to 200 printable ASCII characters; null clears it."},
    )


class SecretOut(Schema):
    code = String(required=True)
    secret_set = Boolean(required=True)
    secret_last4 = String(allow_none=True)
