"""The supply side in a real browser: the store's plans and the plan editor's live margin."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.test_browser import staff_sign_in


def test_store_shows_the_demo_plan_in_both_languages(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/")
    plan = page.locator('[data-plan="LITE30"]')
    expect(plan).to_contain_text("轻享套餐")
    expect(plan).to_contain_text("39.00")
    page.goto(f"{live_server}/?lang=en")
    expect(page.locator('[data-plan="LITE30"]')).to_contain_text("Lite")


def test_plan_editor_shows_the_margin_of_unsaved_terms(page: Page, live_server: str) -> None:
    staff_sign_in(page, live_server, "wholesale")
    page.goto(f"{live_server}/console/plans/LITE30?lang=en")
    expect(page.locator("[data-margin]").first).to_have_attribute("data-margin", "270")
    live = page.locator("#margin-live")
    page.locator('input[name="price"]').fill("20.00")
    # 20.00 − 36.30 of wholesale cost: the editor says so before anything is saved.
    expect(live).to_have_attribute("data-margin", "-1630")
    expect(live).to_have_class("muted bad")
    page.locator('input[name="price"]').fill("45.00")
    expect(live).to_have_attribute("data-margin", "870")  # 45.00 − 36.30
    expect(page.locator('[data-version="1"]')).to_contain_text("on sale")
