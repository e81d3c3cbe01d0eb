"""The dashboard's figures as the console and the API hand them out.

The figures are app/analytics's. This entry-point module also calls what
analytics may not: app/usage, for the current month's wholesale cost
(`compute_settlement` of each host of the currency, handed to
`monthly_revenue` as a plain value) and for usage per service and day
(`daily_usage`, `chart_series`). Each figure is a JSON-ready dict — money in
minor units beside its `currency`, days and months in `TIMEZONE` — which the
API returns as it is, the console draws, and `csv_table` turns into the rows
of a download.

Who may see what (app/auth/permissions.py): every staff role sees the
counts, lines and usage (`dashboard.view`); money — revenue, cost, margin,
revenue per plan, ARPU, liability — needs `dashboard.money` (admin,
finance, auditor). Ticket volume and SLA attainment belong to customer
service (app/care), composed here as the web layer may.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from flask_babel import gettext as _
from sqlalchemy import text
from sqlmodel import Session

from app.analytics.arpu import monthly_arpu
from app.analytics.calendar import (
    DEFAULT_DAYS,
    DEFAULT_MONTHS,
    MAX_DAYS,
    MAX_MONTHS,
    check_count,
    last_months,
    month_label,
    month_span,
)
from app.analytics.dashboard import dashboard_counts
from app.analytics.liability import prepaid_liability
from app.analytics.lines import line_activity
from app.analytics.revenue import monthly_revenue, plan_names, revenue_by_kind, revenue_per_plan
from app.care.figures import open_tickets_by_status, sla_attainment, tickets_opened_per_day
from app.core.db import Database
from app.core.errors import N_, DomainError, InvalidInput
from app.core.money import format_plain
from app.usage.queries import DailyPoint, chart_series, daily_usage
from app.usage.settlement import compute_settlement, usage_by_day
from app.web import label
from wholesale.models import HostCarrier
from wholesale.services import list_hosts
from wholesale.settlement import UNITS, USAGE_SERVICES, UsageQuantity, month_bounds


@dataclass(frozen=True)
class Context:
    """What every figure is computed for: the instant, the zone and the currency.

    `reads` holds what one figure read and another needs again within the same
    request (the months' revenue for revenue and ARPU, a month's usage for its
    cost and its chart), keyed by what was asked; it lives as long as the
    request's Context, never across requests.
    """

    now: datetime
    timezone: str
    currency: str
    reads: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)


def _read_once(context: Context, key: tuple[Any, ...], read: Callable[[], Any]) -> Any:
    if key not in context.reads:
        context.reads[key] = read()
    return context.reads[key]


def _usage_by_day(
    session: Session, context: Context, host: HostCarrier, start: datetime, end: datetime
) -> list[UsageQuantity]:
    return _read_once(
        context,
        ("usage", host.id, start, end),
        lambda: usage_by_day(session, host=host, start=start, end=end, summed=True),
    )


def _revenue_by_kind(session: Session, context: Context, months: int) -> list[tuple[int, int, int]]:
    spans = last_months(now=context.now, timezone=context.timezone, months=months)
    return _read_once(
        context,
        ("revenue", months),
        lambda: revenue_by_kind(session, spans=spans, currency=context.currency),
    )


# -- the figures ------------------------------------------------------------------------


TICKET_DAYS = 30


def tickets_figure(
    session: Session, context: Context, *, days: int = TICKET_DAYS
) -> dict[str, Any]:
    """Customer service over the last `days` local days: tickets opened, open now, SLA attainment.

    From app/care's figures; attainment counts the tickets opened in the
    window whose first response and resolution are met, missed or known.
    """
    last = context.now.astimezone(ZoneInfo(context.timezone)).date()
    first = last - timedelta(days=days - 1)
    opened = tickets_opened_per_day(session, first=first, last=last, timezone=context.timezone)
    attainment = sla_attainment(
        session, first=first, last=last, timezone=context.timezone, now=context.now
    )
    return {
        "days": days,
        "opened_total": sum(count for _, count in opened),
        "opened_per_day": [{"day": day.isoformat(), "opened": count} for day, count in opened],
        "open_by_status": open_tickets_by_status(session),
        "sla": attainment.as_dict(),
    }


def counts_figure(session: Session, context: Context) -> dict[str, Any]:
    """The tiles' counts, with customer service's ticket figures."""
    return {**dashboard_counts(session), "tickets": tickets_figure(session, context)}


def lines_figure(session: Session, context: Context, *, days: int) -> dict[str, Any]:
    """Lines by status now and, per day, lines in service, activations and terminations."""
    activity = line_activity(session, now=context.now, timezone=context.timezone, days=days)
    return {
        "timezone": context.timezone,
        "active_now": activity.active_now,
        "suspended_now": activity.suspended_now,
        "pending_now": activity.pending_now,
        "days": [
            {
                "day": d.day,
                "in_service": d.in_service,
                "activations": d.activations,
                "terminations": d.terminations,
            }
            for d in activity.days
        ],
    }


def current_month_cost(session: Session, context: Context) -> int | None:
    """The current month's wholesale cost so far, over the hosts of the currency.

    None when there is no such host or one of them cannot be settled (a day
    without a rate card): the month is then shown as not settled yet.
    """
    month = month_label(context.now, context.timezone)
    hosts = [h for h in list_hosts(session) if h.currency == context.currency]
    if not hosts:
        return None
    total = 0
    for host in hosts:
        start, end = month_bounds(month, host.timezone)
        usage = _usage_by_day(session, context, host, start, end)
        try:
            total += compute_settlement(session, host=host, month=month, usage=usage).total_minor
        except DomainError:
            return None
    return total


def revenue_figure(session: Session, context: Context, *, months: int) -> dict[str, Any]:
    """Revenue by kind, wholesale cost and gross margin per month."""
    rows = monthly_revenue(
        session,
        now=context.now,
        timezone=context.timezone,
        currency=context.currency,
        months=months,
        current_cost_minor=current_month_cost(session, context),
        revenue=_revenue_by_kind(session, context, months),
    )
    return {
        "currency": context.currency,
        "timezone": context.timezone,
        "months": [
            {
                "month": m.month,
                "plans_minor": m.plans_minor,
                "addons_minor": m.addons_minor,
                "overage_minor": m.overage_minor,
                "revenue_minor": m.revenue_minor,
                "wholesale_cost_minor": m.wholesale_cost_minor,
                "cost_source": m.cost_source,
                "margin_minor": m.margin_minor,
            }
            for m in rows
        ],
    }


def plans_figure(session: Session, context: Context, *, months: int) -> dict[str, Any]:
    """Plan sales per month and plan code, with the plans' names."""
    rows = revenue_per_plan(
        session,
        now=context.now,
        timezone=context.timezone,
        currency=context.currency,
        months=months,
    )
    codes = sorted({r.plan for r in rows if r.plan is not None})
    names = plan_names(session, codes)
    return {
        "currency": context.currency,
        "timezone": context.timezone,
        "months": _month_labels(context, months),
        "plans": [{"code": code, "names": names.get(code, {})} for code in codes],
        "items": [
            {"month": r.month, "plan": r.plan, "revenue_minor": r.revenue_minor} for r in rows
        ],
    }


def arpu_figure(session: Session, context: Context, *, months: int) -> dict[str, Any]:
    """Revenue, lines active and ARPU per month."""
    rows = monthly_arpu(
        session,
        now=context.now,
        timezone=context.timezone,
        currency=context.currency,
        months=months,
        revenue=_revenue_by_kind(session, context, months),
    )
    return {
        "currency": context.currency,
        "timezone": context.timezone,
        "months": [
            {
                "month": m.month,
                "revenue_minor": m.revenue_minor,
                "active_lines": m.active_lines,
                "arpu_minor": m.arpu_minor,
            }
            for m in rows
        ],
    }


def liability_figure(session: Session, context: Context) -> dict[str, Any]:
    """The book liability now beside what an exit now would owe."""
    figure = prepaid_liability(session, at=context.now, currency=context.currency)
    return {
        "currency": context.currency,
        "at": figure.at,
        "book_liability_minor": figure.book_minor,
        "positive_balances_minor": figure.positive_balances_minor,
        "arrears_minor": figure.arrears_minor,
        "unused_periods_minor": figure.unused_periods_minor,
        "owed_minor": figure.owed_minor,
        "difference_minor": figure.difference_minor,
        "customers_in_credit": figure.customers_in_credit,
        "customers_in_arrears": figure.customers_in_arrears,
    }


def usage_figure(session: Session, context: Context, *, month: str | None) -> dict[str, Any]:
    """Usage per service and day of a month (the current one by default), every host
    together, each host's records by its own local day."""
    chosen = month or month_label(context.now, context.timezone)
    span = month_span(chosen, context.timezone)
    points: list[DailyPoint] = []
    for host in list_hosts(session):
        usage = _usage_by_day(session, context, host, span.start, span.end)
        points.extend(daily_usage(session, host=host, start=span.start, end=span.end, usage=usage))
    series = chart_series(points)
    first = date.fromisoformat(f"{chosen}-01")
    dates = [first + timedelta(days=n) for n in range(31)]
    days = [day.isoformat() for day in dates if day.month == first.month]
    index = {day: n for n, day in enumerate(series["days"])}
    quantity = {
        service: [series["quantity"][service][index[day]] if day in index else 0 for day in days]
        for service in USAGE_SERVICES
    }
    return {
        "month": chosen,
        "timezone": context.timezone,
        "units": {service: UNITS[service] for service in USAGE_SERVICES},
        "days": days,
        "quantity": quantity,
    }


def _month_labels(context: Context, months: int) -> list[str]:
    spans = last_months(now=context.now, timezone=context.timezone, months=months)
    return [span.label for span in spans]


# The figures by name, with the permission each needs (see the module docstring).
FIGURE_PERMISSIONS: dict[str, str] = {
    "counts": "dashboard.view",
    "lines": "dashboard.view",
    "usage": "dashboard.view",
    "revenue": "dashboard.money",
    "revenue-per-plan": "dashboard.money",
    "arpu": "dashboard.money",
    "liability": "dashboard.money",
}


def build_figure(
    name: str, session: Session, context: Context, params: dict[str, Any]
) -> dict[str, Any]:
    """The figure `name` (a key of FIGURE_PERMISSIONS) for `params` (`figure_parameters`)."""
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "counts": lambda: counts_figure(session, context),
        "lines": lambda: lines_figure(session, context, days=params["days"]),
        "usage": lambda: usage_figure(session, context, month=params["month"]),
        "revenue": lambda: revenue_figure(session, context, months=params["months"]),
        "revenue-per-plan": lambda: plans_figure(session, context, months=params["months"]),
        "arpu": lambda: arpu_figure(session, context, months=params["months"]),
        "liability": lambda: liability_figure(session, context),
    }
    return builders[name]()


# Figures that read the same rows (Context.reads: the months' revenue, a month's usage)
# share a group; the groups read nothing of each other's and may run side by side.
FIGURE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("revenue", "arpu", "usage"),
    ("liability",),
    ("counts", "lines", "revenue-per-plan"),
)


def _one_worker_per_query(session: Session) -> None:
    """PostgreSQL: no parallel workers for this transaction's queries.

    The groups already keep the cores busy side by side; a query's own workers
    would only compete with them, and starting them costs more than these
    queries of tens of milliseconds gain (measured: a pass of the figures
    about a quarter faster without them on two cores).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def build_figures(
    names: Collection[str],
    database: Database,
    session: Session,
    context: Context,
    params: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The figures `names` (keys of FIGURE_PERMISSIONS), in FIGURE_PERMISSIONS' order.

    On a database whose units of work are not bound to one connection, the
    groups of FIGURE_GROUPS are computed at the same time: the first on
    `session`, each other on a read-only session of its own (its own
    connection and snapshot of committed data; every figure is computed
    whole in one of them). Bound (tests' savepoints), they run one after
    the other on `session`.
    """
    wanted = [name for name in FIGURE_PERMISSIONS if name in names]
    groups = [[name for name in group if name in wanted] for group in FIGURE_GROUPS]
    groups = [group for group in groups if group]
    figures: dict[str, dict[str, Any]] = {}

    def build_group(group: list[str], own: Session) -> dict[str, dict[str, Any]]:
        return {name: build_figure(name, own, context, params) for name in group}

    def build_apart(group: list[str]) -> dict[str, dict[str, Any]]:
        with database.session(write=False) as own:
            try:
                _one_worker_per_query(own)
                return build_group(group, own)
            finally:
                own.rollback()

    if database.is_bound or len(groups) < 2:
        for group in groups:
            figures.update(build_group(group, session))
    else:
        with ThreadPoolExecutor(max_workers=len(groups) - 1) as pool:
            apart = [pool.submit(build_apart, group) for group in groups[1:]]
            _one_worker_per_query(session)
            figures.update(build_group(groups[0], session))
            for future in apart:
                figures.update(future.result())
    return {name: figures[name] for name in wanted}


# -- query parameters -------------------------------------------------------------------


def whole_number(text: str | None, *, field: str, default: int, maximum: int) -> int:
    """A query parameter holding a whole number from 1 to `maximum` (`default` if absent).

    :raises InvalidInput: anything else, such as ``?days=abc``.
    """
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise InvalidInput(
            N_("%(name)s must be a whole number from 1 to %(max)s."),
            field=field,
            name=field,
            max=maximum,
        )
    return check_count(int(text), field=field, maximum=maximum)


def figure_parameters(args: Any) -> dict[str, Any]:
    """`days`, `months` and `month` from a request's query string, checked."""
    month = args.get("month") or None
    if month is not None:
        month_span(month, "UTC")  # refuses anything but YYYY-MM
    return {
        "days": whole_number(
            args.get("days"), field="days", default=DEFAULT_DAYS, maximum=MAX_DAYS
        ),
        "months": whole_number(
            args.get("months"), field="months", default=DEFAULT_MONTHS, maximum=MAX_MONTHS
        ),
        "month": month,
    }


# -- downloads ---------------------------------------------------------------------------


def _money(amount: int | None) -> str:
    return "" if amount is None else format_plain(amount)


def _text(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _cost_source(source: str | None) -> str:
    if source == "settled":
        return _("settled")
    if source == "computed":
        return _("computed so far")
    return _("not settled yet")


def _counts_table(figure: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows: list[list[Any]] = [
        [_("Subscriber accounts"), figure["subscribers"]],
        [_("Plans on sale"), figure["plans_on_sale"]],
        [_("Numbers available"), figure["numbers_available"]],
        [_("SIMs in stock"), figure["sims_in_stock"]],
        [_("Active API keys"), figure["active_api_keys"]],
        [_("Audit entries"), figure["audit_entries"]],
    ]
    rows.extend(
        [f"{_('Active staff by role')}: {label('role', role)}", count]
        for role, count in figure["staff_by_role"].items()
    )
    return [_("Figure"), _("Value")], rows


def _lines_table(figure: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = [_("Day"), _("Lines in service"), _("Activations"), _("Terminations")]
    rows = [
        [d["day"], d["in_service"], d["activations"], d["terminations"]] for d in figure["days"]
    ]
    return header, rows


def _revenue_table(figure: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    currency = figure["currency"]
    header = [
        _("Month"),
        _("Plans (%(currency)s)", currency=currency),
        _("Add-ons (%(currency)s)", currency=currency),
        _("Overage (%(currency)s)", currency=currency),
        _("Revenue (%(currency)s)", currency=currency),
        _("Wholesale cost (%(currency)s)", currency=currency),
        _("Wholesale cost is"),
        _("Gross margin (%(currency)s)", currency=currency),
    ]
    rows = [
        [
            m["month"],
            _money(m["plans_minor"]),
            _money(m["addons_minor"]),
            _money(m["overage_minor"]),
            _money(m["revenue_minor"]),
            _money(m["wholesale_cost_minor"]),
            _cost_source(m["cost_source"]),
            _money(m["margin_minor"]),
        ]
        for m in figure["months"]
    ]
    return header, rows


def _plans_table(figure: dict[str, Any], locale: str) -> tuple[list[str], list[list[Any]]]:
    names = {p["code"]: p["names"] for p in figure["plans"]}
    header = [
        _("Month"),
        _("Plan"),
        _("Name"),
        _("Revenue (%(currency)s)", currency=figure["currency"]),
    ]
    rows = []
    for item in figure["items"]:
        code = item["plan"] or ""
        plan_names = names.get(code, {})
        name = plan_names.get(locale) or plan_names.get("en") or ""
        rows.append([item["month"], _text(code), _text(name), _money(item["revenue_minor"])])
    return header, rows


def _arpu_table(figure: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    currency = figure["currency"]
    header = [
        _("Month"),
        _("Revenue (%(currency)s)", currency=currency),
        _("Lines active in the month"),
        _("ARPU (%(currency)s)", currency=currency),
    ]
    rows = [
        [m["month"], _money(m["revenue_minor"]), m["active_lines"], _money(m["arpu_minor"])]
        for m in figure["months"]
    ]
    return header, rows


def _liability_table(figure: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    currency = figure["currency"]
    rows = [
        [_("Book liability (all prepaid balances)"), _money(figure["book_liability_minor"])],
        [_("Positive balances"), _money(figure["positive_balances_minor"])],
        [_("Arrears (negative balances)"), _money(figure["arrears_minor"])],
        [_("Unused value of current periods"), _money(figure["unused_periods_minor"])],
        [_("Owed if we exited now"), _money(figure["owed_minor"])],
        [_("Owed if we exited now − book liability"), _money(figure["difference_minor"])],
    ]
    return [_("Figure"), _("Amount (%(currency)s)", currency=currency)], rows


def _usage_table(figure: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = [
        _("Day"),
        _("Data (bytes)"),
        _("Voice (seconds)"),
        _("SMS (messages)"),
    ]
    quantity = figure["quantity"]
    rows = [
        [day, *(quantity[service][n] for service in USAGE_SERVICES)]
        for n, day in enumerate(figure["days"])
    ]
    return header, rows


def csv_table(
    name: str, figure: dict[str, Any], *, locale: str
) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of a figure's CSV download, in the viewer's language;
    money in currency units with two decimals."""
    if name == "revenue-per-plan":
        return _plans_table(figure, locale)
    tables: dict[str, Callable[[dict[str, Any]], tuple[list[str], list[list[Any]]]]] = {
        "counts": _counts_table,
        "lines": _lines_table,
        "revenue": _revenue_table,
        "arpu": _arpu_table,
        "liability": _liability_table,
        "usage": _usage_table,
    }
    return tables[name](figure)


def csv_response(filename: str, header: list[str], rows: list[list[Any]]) -> Response:
    """A CSV download: UTF-8 with a byte-order mark (so Excel reads it as UTF-8),
    a header row, `Content-Disposition: attachment`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    response = Response(("\ufeff" + out.getvalue()).encode("utf-8"), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response
