"""The dashboard in the console and the JSON API: figures, charts' data, CSV downloads,
role scoping and bad input, on a business built through the real services."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from app.analytics.arpu import monthly_arpu
from app.analytics.lines import line_activity
from app.analytics.revenue import monthly_revenue
from app.auth.permissions import PERMISSIONS, ROLES
from app.charging.unused_value import owed_at
from app.core.money import format_money
from app.web.dashboard import FIGURE_PERMISSIONS
from tests.factories import login_staff, make_api_key, make_staff
from tests.unit.analytics.business import AT, CURRENCY, TIMEZONE, Business, build

API_FIGURES = {
    "/api/v1/dashboard": "dashboard.view",
    "/api/v1/dashboard/lines": "dashboard.view",
    "/api/v1/dashboard/usage": "dashboard.view",
    "/api/v1/dashboard/revenue": "dashboard.money",
    "/api/v1/dashboard/revenue-per-plan": "dashboard.money",
    "/api/v1/dashboard/arpu": "dashboard.money",
    "/api/v1/dashboard/liability": "dashboard.money",
}
CHART_BLOCK = re.compile(
    r'<script type="application/json" id="dashboard-charts">(.*?)</script>', re.S
)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard is read at AT (noon local, 15 November 2026)."""
    import app.web.api.dashboard as api
    import app.web.console.dashboard as console

    monkeypatch.setattr(api, "utcnow", lambda: AT)
    monkeypatch.setattr(console, "utcnow", lambda: AT)


@pytest.fixture
def business(session, tmp_path) -> Business:
    return build(session, tmp_path)


def bearer(session, role: str = "admin") -> dict[str, str]:
    _key, token = make_api_key(session, role=role, name=f"dash-{role}")
    return {"Authorization": f"Bearer {token}"}


def sign_in(client, session, role: str) -> None:
    make_staff(session, role=role, email=f"dash-{role}@example.com")
    login_staff(client, f"dash-{role}@example.com")


def chart_of(page: str) -> dict:
    match = CHART_BLOCK.search(page)
    assert match, "no chart data on the page"
    return json.loads(match.group(1))


# -- the page -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_lines_and_usage_and_money_only_with_its_permission(
    client, session, business, role
) -> None:
    sign_in(client, session, role)
    response = client.get("/console/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    chart = chart_of(page)
    money = role in PERMISSIONS["dashboard.money"]
    assert {"lines", "usage"} <= chart.keys()
    assert ("revenue" in chart) == ("plans" in chart) == ("arpu" in chart) == money
    assert ('id="liability"' in page) == money
    assert ('data-csv="revenue"' in page) == money
    assert 'id="chart-lines"' in page and 'id="chart-usage-data"' in page
    assert "<script>" not in page  # nothing inline: the CSP forbids it


def test_the_page_shows_the_figures_and_explains_the_liability(client, session, business) -> None:
    sign_in(client, session, "finance")
    page = client.get("/console/").get_data(as_text=True)
    chart = chart_of(page)
    lines = line_activity(session, now=AT, timezone=TIMEZONE)
    assert chart["lines"]["days"][-1] == "2026-11-15" and len(chart["lines"]["days"]) == 30
    assert chart["lines"]["in_service"] == [d.in_service for d in lines.days]
    assert f'data-count="active_lines">{lines.active_now}<' in page
    revenue = monthly_revenue(session, now=AT, timezone=TIMEZONE, currency=CURRENCY)
    assert chart["revenue"]["plans"] == [m.plans_minor for m in revenue]
    assert chart["revenue"]["cost"][-1] == business.current_cost_minor
    assert chart["currency"] == "CNY" and chart["minor_per_unit"] == 100
    assert chart["locale"] == "en" and chart["labels"]["amount"] == "Amount (CNY)"
    assert 'data-month="2026-11"' in page and 'data-cost-source="computed"' in page
    assert 'data-cost-source="none"' in page and "not settled yet" in page
    owed = owed_at(session, at=AT).total(CURRENCY)
    assert f"If we exited now we would owe {format_money(owed, CURRENCY, 'en')}," in page
    # The chart of plan sales has a series per plan sold, in currency minor units.
    assert {s["code"] for s in chart["plans"]["series"]} == {
        business.small.code,
        business.world.plan.code,
    }


def test_the_page_is_in_chinese_for_a_chinese_viewer(zh_client, session, business) -> None:
    sign_in(zh_client, session, "admin")
    page = zh_client.get("/console/").get_data(as_text=True)
    chart = chart_of(page)
    assert chart["locale"] == "zh-Hans"
    assert chart["labels"]["in_service"] != "Lines in service"
    assert "Dashboard" not in page.split("<main", 1)[1]


# -- CSV downloads ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIGURE_PERMISSIONS))
def test_every_figure_downloads_as_csv_with_a_header(client, session, business, name) -> None:
    sign_in(client, session, "admin")
    response = client.get(f"/console/dashboard/{name}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"dashboard_{name}_" in disposition
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows)


def test_the_revenue_csv_has_currency_units_and_says_what_is_not_settled(
    client, session, business
) -> None:
    sign_in(client, session, "finance")
    body = client.get("/console/dashboard/revenue.csv?months=3").get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == [
        "Month",
        "Plans (CNY)",
        "Add-ons (CNY)",
        "Overage (CNY)",
        "Revenue (CNY)",
        "Wholesale cost (CNY)",
        "Wholesale cost is",
        "Gross margin (CNY)",
    ]
    assert [row[0] for row in rows[1:]] == ["2026-09", "2026-10", "2026-11"]
    revenue = monthly_revenue(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=3)
    assert rows[2][3] == f"{revenue[1].overage_minor / 100:.2f}"
    assert rows[3][6] == "computed so far" and rows[1][6] == "settled"


def test_a_chinese_viewer_downloads_chinese_headers(zh_client, session, business) -> None:
    sign_in(zh_client, session, "admin")
    body = zh_client.get("/console/dashboard/lines.csv?days=2").get_data().decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(body)))
    assert header[0] != "Day" and len(rows) == 2


@pytest.mark.parametrize("name", sorted(n for n, p in FIGURE_PERMISSIONS.items() if "money" in p))
def test_money_downloads_are_refused_to_care(client, session, business, name) -> None:
    sign_in(client, session, "care")
    assert client.get(f"/console/dashboard/{name}.csv").status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        "days=abc",
        "days=0",
        "days=367",
        "days=-1",
        "days=1.5",
        "months=abc",
        "months=99",
        "month=2026-13",
        "month=x",
    ],
)
def test_bad_windows_are_refused_not_a_server_error(client, session, query) -> None:
    sign_in(client, session, "admin")
    assert client.get(f"/console/?{query}").status_code == 422
    name = "usage" if query.startswith("month=") else "lines" if "days" in query else "arpu"
    assert client.get(f"/console/dashboard/{name}.csv?{query}").status_code == 422
    api = client.get(f"/api/v1/dashboard/{name}?{query}", headers=bearer(session))
    assert api.status_code == 422
    assert api.get_json()["error"]["code"] == "invalid_input"


# -- the API ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_api_figures_are_scoped_by_role(client, session, role) -> None:
    headers = bearer(session, role)
    for path, permission in API_FIGURES.items():
        expected = 200 if role in PERMISSIONS[permission] else 403
        assert client.get(path, headers=headers).status_code == expected, (role, path)
    assert client.get("/api/v1/dashboard/lines").status_code == 401


def test_api_shapes_carry_minor_units_and_the_currency(client, session, business) -> None:
    headers = bearer(session)
    counts = client.get("/api/v1/dashboard", headers=headers).get_json()
    assert counts["tickets"]["opened_total"] == 0 and counts["plans_on_sale"] >= 2

    lines = client.get("/api/v1/dashboard/lines?days=5", headers=headers).get_json()
    assert [d["day"] for d in lines["days"]] == [f"2026-11-{n}" for n in range(11, 16)]
    assert lines["timezone"] == TIMEZONE and lines["active_now"] == 3

    revenue = client.get("/api/v1/dashboard/revenue?months=3", headers=headers).get_json()
    expected = monthly_revenue(
        session,
        now=AT,
        timezone=TIMEZONE,
        currency=CURRENCY,
        months=3,
        current_cost_minor=business.current_cost_minor,
    )
    assert revenue["currency"] == "CNY"
    assert [
        (m["month"], m["revenue_minor"], m["wholesale_cost_minor"], m["margin_minor"])
        for m in revenue["months"]
    ] == [(m.month, m.revenue_minor, m.wholesale_cost_minor, m.margin_minor) for m in expected]
    assert [m["cost_source"] for m in revenue["months"]] == ["settled", "settled", "computed"]

    arpu = client.get("/api/v1/dashboard/arpu?months=3", headers=headers).get_json()
    assert [m["arpu_minor"] for m in arpu["months"]] == [
        m.arpu_minor
        for m in monthly_arpu(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=3)
    ]

    plans = client.get("/api/v1/dashboard/revenue-per-plan?months=3", headers=headers).get_json()
    assert plans["months"] == ["2026-09", "2026-10", "2026-11"]
    assert {p["code"] for p in plans["plans"]} == {i["plan"] for i in plans["items"]}

    liability = client.get("/api/v1/dashboard/liability", headers=headers).get_json()
    assert liability["owed_minor"] == owed_at(session, at=AT).total(CURRENCY)
    assert liability["difference_minor"] == (
        liability["unused_periods_minor"] + liability["arrears_minor"]
    )

    usage = client.get("/api/v1/dashboard/usage?month=2026-10", headers=headers).get_json()
    assert usage["units"] == {"data": "bytes", "voice": "seconds", "sms": "messages"}
    assert len(usage["days"]) == 31 and usage["quantity"]["sms"][9] == 5


def test_the_figures_are_in_the_openapi_document(client) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in API_FIGURES:
        assert path.removeprefix("/api/v1") in paths or path in paths, path


def test_ticket_volume_and_sla_attainment_come_from_customer_service(client, session) -> None:
    from app.care.tickets import open_ticket
    from app.core.audit import Actor

    for subject in ("No signal since Monday", "Billed twice"):
        open_ticket(
            session,
            category="complaint",
            channel="system",
            subject=subject,
            body="Raised by a job.",
            actor=Actor.system("test"),
            now=AT,  # the dashboard's clock in these tests
            timezone=TIMEZONE,
        )
    tickets = client.get("/api/v1/dashboard", headers=bearer(session)).get_json()["tickets"]
    assert tickets["days"] == 30 and len(tickets["opened_per_day"]) == 30
    assert tickets["opened_total"] == 2 == sum(d["opened"] for d in tickets["opened_per_day"])
    assert tickets["open_by_status"] == {"open": 2, "pending_customer": 0, "escalated": 0}
    # Nothing answered yet and nothing overdue: not counted for first response.
    assert tickets["sla"]["first_response_met"] == 0
    sign_in(client, session, "care")
    page = client.get("/console/").get_data(as_text=True)
    assert 'data-tickets="opened">2<' in page and 'data-sla="first_response"' in page
