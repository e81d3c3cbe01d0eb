"""The console dashboard: the tiles, the charts and every figure as a CSV download.

* `/console/` shows the figures of app/web/dashboard.py the viewer's role
  may see: counts, lines and usage for every role; revenue, cost, margin,
  revenue per plan, ARPU and liability with `dashboard.money`. The charts
  are drawn by `static/dashboard-charts.js` from one JSON block (series,
  translated labels, locale, currency; money in minor units), never an
  inline script. Tables show money through the `money` filter.
* `/console/dashboard/<figure>.csv` downloads one figure (same permission
  as the figure): a header row, UTF-8 with a byte-order mark, money in
  currency units with two decimals.
* `?days=` (lines), `?months=` (revenue, per plan, ARPU) and `?month=`
  (usage) choose the window; bad values are refused with 422, never 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from app.analytics.calendar import local_date
from app.core.clock import utcnow
from app.core.money import MINOR_PLACES
from app.web.auth import staff_required
from app.web.console import bp
from app.web.context import database, db_session, settings
from app.web.dashboard import (
    FIGURE_PERMISSIONS,
    Context,
    build_figure,
    build_figures,
    csv_response,
    csv_table,
    figure_parameters,
)
from wholesale.settlement import USAGE_SERVICES

_LINE_SERIES = ("in_service", "activations", "terminations")
# Usage quantities per unit drawn: MB of bytes, minutes of seconds, messages.
USAGE_UNITS = {"data": 1_048_576, "voice": 60, "sms": 1}


def _context() -> Context:
    config = settings()
    return Context(now=utcnow(), timezone=config.timezone, currency=config.currency)


def _locale() -> str:
    return str(get_locale() or "zh_Hans")


def _plan_name(names: dict[str, str], code: str) -> str:
    return names.get(_locale()) or names.get("en") or code


def _usage_titles() -> dict[str, str]:
    return {"data": _("Data (MB)"), "voice": _("Voice (minutes)"), "sms": _("SMS (messages)")}


def _chart_labels(currency: str) -> dict[str, str]:
    return {
        "day": _("Day"),
        "month": _("Month"),
        "lines": _("Lines"),
        "in_service": _("Lines in service"),
        "activations": _("Activations"),
        "terminations": _("Terminations"),
        "plans": _("Plans"),
        "addons": _("Add-ons"),
        "overage": _("Overage"),
        "cost": _("Wholesale cost"),
        "margin": _("Gross margin"),
        "arpu": _("ARPU"),
        "amount": _("Amount (%(currency)s)", currency=currency),
        "other_plan": _("Other"),
    }


def _plans_series(figure: dict[str, Any]) -> list[dict[str, Any]]:
    months = figure["months"]
    names = {p["code"]: _plan_name(p["names"], p["code"]) for p in figure["plans"]}
    series: dict[str | None, list[int]] = {}
    for item in figure["items"]:
        data = series.setdefault(item["plan"], [0] * len(months))
        data[months.index(item["month"])] += item["revenue_minor"]
    return [
        {"code": code, "label": names.get(code or "", _("Other")), "data": data}
        for code, data in series.items()
    ]


def _chart(figures: dict[str, dict[str, Any]], currency: str) -> dict[str, Any]:
    """The JSON block the charts are drawn from."""
    lines, usage = figures["lines"], figures["usage"]
    chart: dict[str, Any] = {
        "locale": "zh-Hans" if _locale() == "zh_Hans" else "en",
        "currency": currency,
        "minor_per_unit": 10**MINOR_PLACES,
        "labels": _chart_labels(currency),
        "lines": {
            "days": [d["day"] for d in lines["days"]],
            **{key: [d[key] for d in lines["days"]] for key in _LINE_SERIES},
        },
        "usage": {
            "days": usage["days"],
            "charts": [
                {
                    "service": service,
                    "title": _usage_titles()[service],
                    "data": [
                        round(q / USAGE_UNITS[service], 3) for q in usage["quantity"][service]
                    ],
                }
                for service in USAGE_SERVICES
            ],
        },
    }
    if "revenue" in figures:
        months = figures["revenue"]["months"]
        chart["revenue"] = {
            "months": [m["month"] for m in months],
            "plans": [m["plans_minor"] for m in months],
            "addons": [m["addons_minor"] for m in months],
            "overage": [m["overage_minor"] for m in months],
            "cost": [m["wholesale_cost_minor"] for m in months],
            "margin": [m["margin_minor"] for m in months],
        }
        plans = figures["revenue-per-plan"]
        chart["plans"] = {"months": plans["months"], "series": _plans_series(plans)}
        arpu = figures["arpu"]["months"]
        chart["arpu"] = {
            "months": [m["month"] for m in arpu],
            "arpu": [m["arpu_minor"] for m in arpu],
        }
    return chart


@bp.route("/")
@staff_required("dashboard.view")
def dashboard() -> Any:
    params = figure_parameters(request.args)
    session, context = db_session(), _context()
    allowed = [name for name, need in FIGURE_PERMISSIONS.items() if current_user.can(need)]
    figures = build_figures(allowed, database(), session, context, params)
    return render_template(
        "console/dashboard.html",
        counts=figures["counts"],
        figures=figures,
        chart=_chart(figures, context.currency),
        params=params,
        tickets=figures["counts"]["tickets"],
        usage_titles=_usage_titles(),
    )


def _filename(name: str, params: dict[str, Any], context: Context) -> str:
    stamp = local_date(context.now, context.timezone).isoformat()
    if name == "usage":
        stamp = params["month"] or stamp[:7]
    return f"dashboard_{name}_{stamp}.csv"


def _csv_view(name: str) -> Callable[[], Any]:
    def download() -> Any:
        params = figure_parameters(request.args)
        context = _context()
        figure = build_figure(name, db_session(), context, params)
        header, rows = csv_table(name, figure, locale=_locale())
        return csv_response(_filename(name, params, context), header, rows)

    download.__name__ = f"dashboard_{name.replace('-', '_')}_csv"
    download.__doc__ = f"The dashboard's {name} figure as a CSV download."
    return download


for _name, _permission in FIGURE_PERMISSIONS.items():
    _view = _csv_view(_name)
    bp.add_url_rule(
        f"/dashboard/{_name}.csv",
        endpoint=_view.__name__,
        view_func=staff_required(_permission)(_view),
    )
