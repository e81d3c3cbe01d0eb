"""API schemas of the dashboard's figures: money in minor units beside the currency,
days and months in the platform's time zone."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import OneOf, Range

from app.analytics.calendar import DEFAULT_DAYS, DEFAULT_MONTHS, MAX_DAYS, MAX_MONTHS
from app.web.api.schemas import StrictQuery, WholeNumber
from app.web.api.usage_schemas import MONTH


class DaysQuery(StrictQuery):
    days = Integer(
        load_default=DEFAULT_DAYS,
        validate=Range(min=1, max=MAX_DAYS),
        metadata={"description": "How many days, today included"},
    )


class MonthsQuery(StrictQuery):
    months = Integer(
        load_default=DEFAULT_MONTHS,
        validate=Range(min=1, max=MAX_MONTHS),
        metadata={"description": "How many months, the current one included"},
    )


class UsageMonthQuery(StrictQuery):
    month = String(validate=MONTH, metadata={"description": "YYYY-MM; the current month if absent"})


class CountsOut(Schema):
    staff_by_role = Dict(keys=String(), values=WholeNumber(), required=True)
    subscribers = WholeNumber(required=True)
    active_api_keys = WholeNumber(required=True)
    audit_entries = WholeNumber(required=True)
    numbers_available = WholeNumber(required=True)
    sims_in_stock = WholeNumber(required=True)
    plans_on_sale = WholeNumber(required=True)
    tickets = Dict(
        required=True,
        allow_none=True,
        metadata={
            "description": "Customer service over the last 30 days: `opened_total`, "
            "`opened_per_day`, `open_by_status` now and `sla` attainment (met and counted "
            "for first response, resolution and both)"
        },
    )


class LineDayOut(Schema):
    day = String(required=True, metadata={"description": "YYYY-MM-DD, local"})
    in_service = WholeNumber(
        required=True, metadata={"description": "Lines active or suspended at the day's end"}
    )
    activations = WholeNumber(required=True)
    terminations = WholeNumber(
        required=True, metadata={"description": "Terminated, ported out or transferred"}
    )


class LinesOut(Schema):
    timezone = String(required=True)
    active_now = WholeNumber(required=True)
    suspended_now = WholeNumber(required=True)
    pending_now = WholeNumber(required=True)
    days = List(Nested(LineDayOut), required=True)


class RevenueMonthOut(Schema):
    month = String(required=True, metadata={"description": "YYYY-MM, local"})
    plans_minor = Integer(required=True, metadata={"description": "Plan sales and renewals"})
    addons_minor = Integer(required=True)
    overage_minor = Integer(required=True)
    revenue_minor = Integer(required=True)
    wholesale_cost_minor = Integer(
        required=True, allow_none=True, metadata={"description": "null: not settled yet"}
    )
    cost_source = String(
        required=True,
        allow_none=True,
        validate=OneOf(["settled", "computed"]),
        metadata={
            "description": "settled: the latest export run of each host; computed: the "
            "current month so far; null: not settled yet"
        },
    )
    margin_minor = Integer(required=True, allow_none=True)


class RevenueOut(Schema):
    currency = String(required=True)
    timezone = String(required=True)
    months = List(Nested(RevenueMonthOut), required=True)


class PlanNamesOut(Schema):
    code = String(required=True)
    names = Dict(keys=String(), values=String(), required=True)


class PlanRevenueOut(Schema):
    month = String(required=True)
    plan = String(required=True, allow_none=True, metadata={"description": "Plan code"})
    revenue_minor = Integer(required=True)


class PlansRevenueOut(Schema):
    currency = String(required=True)
    timezone = String(required=True)
    months = List(String(), required=True)
    plans = List(Nested(PlanNamesOut), required=True)
    items = List(Nested(PlanRevenueOut), required=True)


class ArpuMonthOut(Schema):
    month = String(required=True)
    revenue_minor = Integer(required=True)
    active_lines = WholeNumber(required=True)
    arpu_minor = Integer(required=True, allow_none=True)


class ArpuOut(Schema):
    currency = String(required=True)
    timezone = String(required=True)
    months = List(Nested(ArpuMonthOut), required=True)


class LiabilityOut(Schema):
    currency = String(required=True)
    at = DateTime(required=True)
    book_liability_minor = Integer(
        required=True, metadata={"description": "Sum of every prepaid balance, arrears included"}
    )
    positive_balances_minor = Integer(required=True)
    arrears_minor = Integer(required=True, metadata={"description": "Negative balances, as a sum"})
    unused_periods_minor = Integer(required=True)
    owed_minor = Integer(
        required=True,
        metadata={"description": "Owed if we exited now: positive balances + unused periods"},
    )
    difference_minor = Integer(
        required=True, metadata={"description": "owed − book liability = unused periods + arrears"}
    )
    customers_in_credit = WholeNumber(required=True)
    customers_in_arrears = WholeNumber(required=True)


class UsageOut(Schema):
    month = String(required=True)
    timezone = String(required=True)
    units = Dict(keys=String(), values=String(), required=True)
    days = List(String(), required=True)
    quantity = Dict(
        keys=String(),
        values=List(WholeNumber()),
        required=True,
        metadata={"description": "Per service, one quantity per day of `days`"},
    )
