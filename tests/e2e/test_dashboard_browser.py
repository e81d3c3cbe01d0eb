"""The console dashboard in a real browser: every Chart.js chart drawn under the content
security policy, with readable labels and number formats in Chinese and in English."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_browser import staff_sign_in
from tests.e2e.test_usage_browser import _watch_errors

MONEY_CHARTS = ("chart-revenue", "chart-plans", "chart-arpu")
ALWAYS = ("chart-lines", "chart-usage-data", "chart-usage-voice", "chart-usage-sms")
LABELS = {
    "en": {"amount": "Amount (CNY)", "in_service": "Lines in service", "tick": "1,234.50"},
    "zh_Hans": {"amount": "金额（CNY）", "in_service": "在网线路", "tick": "1,234.50"},
}


def _drawn(page: Page, chart_id: str) -> None:
    page.wait_for_function(
        f"() => window.Chart && window.Chart.getChart('{chart_id}') !== undefined"
        f" && window.Chart.getChart('{chart_id}').width > 0"
    )


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_the_dashboard_draws_every_chart_in_both_languages(
    page: Page, live_server: str, lang: str
) -> None:
    errors = _watch_errors(page)
    staff_sign_in(page, live_server, "finance")
    page.goto(f"{live_server}/console/?lang={lang}")
    for chart_id in (*ALWAYS, *MONEY_CHARTS):
        _drawn(page, chart_id)
    revenue = page.evaluate(
        "() => { const c = window.Chart.getChart('chart-revenue');"
        " return [c.options.scales.y.title.text, c.data.labels.length,"
        " c.options.scales.y.ticks.callback(1234.5), c.data.datasets.length]; }"
    )
    assert revenue == [LABELS[lang]["amount"], 12, LABELS[lang]["tick"], 5]
    lines = page.evaluate(
        "() => { const c = window.Chart.getChart('chart-lines');"
        " return [c.data.datasets[0].label, c.data.labels.length]; }"
    )
    assert lines == [LABELS[lang]["in_service"], 30]
    expect(page.locator("[data-liability-explained]")).not_to_be_empty()
    assert errors == []


def test_care_sees_lines_and_usage_but_no_money_charts(page: Page, live_server: str) -> None:
    errors = _watch_errors(page)
    staff_sign_in(page, live_server, "care")
    page.goto(f"{live_server}/console/?lang=en")
    for chart_id in ALWAYS:
        _drawn(page, chart_id)
    for chart_id in MONEY_CHARTS:
        expect(page.locator(f"#{chart_id}")).to_have_count(0)
    expect(page.locator("#liability")).to_have_count(0)
    assert errors == []
