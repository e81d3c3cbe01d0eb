"""JSON API of the dashboard's figures (the console's `/console/` and its CSV downloads).

`GET /dashboard` holds the tiles' counts; `GET /dashboard/<figure>` each
figure of app/web/dashboard.py, money in minor units beside the currency.
Counts, lines and usage need `dashboard.view` (every role); revenue,
revenue per plan, ARPU and liability need `dashboard.money`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.core.clock import utcnow
from app.web.api import bp
from app.web.api.dashboard_schemas import (
    ArpuOut,
    CountsOut,
    DaysQuery,
    LiabilityOut,
    LinesOut,
    MonthsQuery,
    PlansRevenueOut,
    RevenueOut,
    UsageMonthQuery,
    UsageOut,
)
from app.web.api.security import requires
from app.web.context import db_session, settings
from app.web.dashboard import (
    Context,
    arpu_figure,
    counts_figure,
    liability_figure,
    lines_figure,
    plans_figure,
    revenue_figure,
    usage_figure,
)


def _context() -> Context:
    config = settings()
    return Context(now=utcnow(), timezone=config.timezone, currency=config.currency)


@bp.get("/dashboard")
@requires("dashboard.view")
@bp.output(CountsOut)
def dashboard() -> Any:
    """The counts the console dashboard's tiles show, with customer service's
    ticket volume and SLA attainment (`tickets`)."""
    return counts_figure(db_session(), _context())


@bp.get("/dashboard/lines")
@requires("dashboard.view")
@bp.input(DaysQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(LinesOut)
def dashboard_lines(query: dict[str, Any]) -> Any:
    """Lines by status now and, per local day of the last `days`, lines in service at
    the day's end (active or suspended), activations and terminations."""
    return lines_figure(db_session(), _context(), days=query["days"])


@bp.get("/dashboard/revenue")
@requires("dashboard.money")
@bp.input(MonthsQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(RevenueOut)
def dashboard_revenue(query: dict[str, Any]) -> Any:
    """Revenue per month by kind (plan sales and renewals, add-ons, overage) against the
    wholesale cost (each host's latest settlement export; the current month computed so
    far), and the gross margin."""
    return revenue_figure(db_session(), _context(), months=query["months"])


@bp.get("/dashboard/revenue-per-plan")
@requires("dashboard.money")
@bp.input(MonthsQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(PlansRevenueOut)
def dashboard_revenue_per_plan(query: dict[str, Any]) -> Any:
    """Plan sales (store orders and renewals) per month and plan code."""
    return plans_figure(db_session(), _context(), months=query["months"])


@bp.get("/dashboard/arpu")
@requires("dashboard.money")
@bp.input(MonthsQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(ArpuOut)
def dashboard_arpu(query: dict[str, Any]) -> Any:
    """Revenue per line active in the month (a line with a period overlapping it)."""
    return arpu_figure(db_session(), _context(), months=query["months"])


@bp.get("/dashboard/liability")
@requires("dashboard.money")
@bp.output(LiabilityOut)
def dashboard_liability() -> Any:
    """The book liability (every prepaid balance) beside what would be owed if we
    exited now (positive balances + unused value of current periods)."""
    return liability_figure(db_session(), _context())


@bp.get("/dashboard/usage")
@requires("dashboard.view")
@bp.input(UsageMonthQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(UsageOut)
def dashboard_usage(query: dict[str, Any]) -> Any:
    """Usage per service and day of a month, every host together: bytes, seconds and
    messages, each host's records by its own local day."""
    return usage_figure(db_session(), _context(), month=query.get("month"))
