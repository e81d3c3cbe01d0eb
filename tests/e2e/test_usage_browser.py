"""Usage and settlement in a real browser: the upload form, the confirmation before
reprocessing, and the Chart.js chart drawn under the content security policy."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.test_browser import staff_sign_in

DEMO_CDR = Path(__file__).resolve().parents[2] / "app" / "demo" / "cdr.csv"


def _watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_an_uploaded_file_is_drawn_on_the_settlement_chart(page: Page, fresh_server: str) -> None:
    errors = _watch_errors(page)
    staff_sign_in(page, fresh_server, "wholesale")
    page.goto(f"{fresh_server}/console/usage?lang=en")
    page.select_option('[data-usage-upload] select[name="host"]', "HOSTA")
    page.set_input_files('[data-usage-upload] input[name="file"]', str(DEMO_CDR))
    page.locator("[data-usage-upload] button[type=submit]").click()
    expect(page.locator('.tile [data-count="charged"]')).to_have_text("4")

    page.goto(f"{fresh_server}/console/settlement?host=HOSTA&month=2026-10&lang=en")
    for service in ("data", "voice", "sms"):
        page.wait_for_function(
            f"() => window.Chart && window.Chart.getChart('usage-chart-{service}') !== undefined"
        )
    drawn = page.evaluate(
        "() => { const c = window.Chart.getChart('usage-chart-data');"
        " return [c.data.labels.length, c.data.datasets[0].data[1],"
        " c.options.scales.cost.title.text]; }"
    )
    assert drawn == [31, 50, "Wholesale cost (CNY)"]
    assert errors == []


def test_reprocessing_asks_first(page: Page, fresh_server: str, tmp_path: Path) -> None:
    errors = _watch_errors(page)
    usage = tmp_path / "unknown.csv"
    usage.write_text(
        "record_id,msisdn,service,start_time,quantity\n"
        "X1,+8613900000000,sms,2026-10-02T09:05:00+08:00,1\n",
        encoding="utf-8",
    )
    staff_sign_in(page, fresh_server, "admin")
    page.goto(f"{fresh_server}/language/en?next=/console/usage")
    page.select_option('[data-usage-upload] select[name="host"]', "HOSTA")
    page.set_input_files('[data-usage-upload] input[name="file"]', str(usage))
    page.locator("[data-usage-upload] button[type=submit]").click()
    expect(page.locator('.tile [data-count="rejected"]')).to_have_text("1")
    asked: list[str] = []

    def dismiss(dialog) -> None:  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("[data-reprocess-file] button").click()
    expect(page.locator("[data-reprocess-file]")).to_be_visible()
    assert asked == ["Try the 1 open rejects of this file again?"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-reprocess-file] button").click()
    expect(page.locator(".flash")).to_contain_text("1 rejects tried again: 0 charged")
    assert errors == []
