"""The store and the staff console in a real browser against gunicorn."""

from __future__ import annotations

import re
import uuid
import warnings
from functools import cache
from pathlib import Path

from flask import Flask
from flask_babel import Babel, force_locale, gettext
from playwright.sync_api import Page, expect

from app.core.config import VARIABLES

TRANSLATIONS = Path(__file__).resolve().parents[2] / "app" / "translations"
DEFAULTS = {name: default for name, default, _ in VARIABLES}
HOTLINE = DEFAULTS["SERVICE_HOTLINE"]  # 10100-0000
SUPERVISION = DEFAULTS["SUPERVISION_PHONE"]  # 12300
DEMO_SUBSCRIBERS = 2


@cache
def zh_hans(msgid: str) -> str:
    """`msgid` as the server shows it in zh_Hans: looked up the way Flask-Babel does.

    Until app/translations/zh_Hans/LC_MESSAGES/messages.mo exists this is the
    msgid itself (the server falls back the same way), so the check tightens by
    itself once the catalog is compiled.
    """
    mo = TRANSLATIONS / "zh_Hans" / "LC_MESSAGES" / "messages.mo"
    if not mo.exists():
        warnings.warn(f"{mo} is not compiled yet; Chinese text is checked as English", stacklevel=2)
    probe = Flask("catalog-probe")
    probe.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(probe)
    with probe.test_request_context(), force_locale("zh_Hans"):
        return str(gettext(msgid))


def path_is(url: str, path: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(url)}{re.escape(path)}(\?.*)?$")


def staff_sign_in(page: Page, url: str, role: str, password: str | None = None) -> None:
    page.goto(f"{url}/console/login")
    page.locator('input[name="email"]').fill(f"{role}@demo.example.com")
    page.locator('input[name="password"]').fill(password or f"demo-{role}-password")
    page.locator('main button[type="submit"]').click()


def test_staff_login_dashboard_and_sign_out(page: Page, live_server: str, tmp_path: Path) -> None:
    staff_sign_in(page, live_server, "admin")

    expect(page).to_have_url(path_is(live_server, "/console/"))
    expect(page.locator('[data-count="subscribers"]')).to_have_text(str(DEMO_SUBSCRIBERS))
    expect(page.locator(".who")).to_contain_text("admin@demo.example.com")
    expect(page.locator('.nav a[href="/console/api-keys"]')).to_be_visible()
    # Every demo role has one active staff user.
    expect(page.locator("[data-table=staff-by-role] tbody tr")).to_have_count(5)

    shot = tmp_path / "console-dashboard.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 0

    page.locator('form[action="/console/logout"] button').click()
    expect(page).to_have_url(path_is(live_server, "/console/login"))
    expect(page.locator('input[name="password"]')).to_be_visible()
    expect(page.locator("[data-count]")).to_have_count(0)

    page.goto(f"{live_server}/console/")
    expect(page).to_have_url(path_is(live_server, "/console/login"))
    expect(page.locator("[data-count]")).to_have_count(0)


def test_staff_wrong_password_stays_on_login(page: Page, live_server: str) -> None:
    # A role other than admin, so this failure does not count toward admin's lockout.
    staff_sign_in(page, live_server, "care", password="not-the-right-password")

    expect(page).to_have_url(path_is(live_server, "/console/login"))
    expect(page.locator('main .error[role="alert"]')).to_be_visible()
    expect(page.locator('main .error[role="alert"]')).not_to_be_empty()
    expect(page.locator("[data-count]")).to_have_count(0)
    expect(page.locator('form[action="/console/logout"]')).to_have_count(0)


def test_store_language_switch(page: Page, live_server: str, tmp_path: Path) -> None:
    html = page.locator("html")
    footer = page.locator("footer.footer")
    hotline_zh = zh_hans("Service hotline:")

    page.goto(f"{live_server}/")
    expect(html).to_have_attribute("lang", "zh-Hans")
    expect(footer).to_contain_text(f"{hotline_zh} {HOTLINE}")
    expect(footer.locator(f'a[href="tel:{HOTLINE}"]')).to_have_text(HOTLINE)
    expect(footer.locator(f'a[href="tel:{SUPERVISION}"]')).to_have_text(SUPERVISION)
    if hotline_zh != "Service hotline:":
        expect(footer).not_to_contain_text("Service hotline")
    shot = tmp_path / "store-zh_Hans.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 0

    page.locator('.lang a[lang="en"]').click()
    expect(page).to_have_url(path_is(live_server, "/"))
    expect(html).to_have_attribute("lang", "en")
    expect(footer).to_contain_text(f"Service hotline: {HOTLINE}")
    expect(footer).to_contain_text(SUPERVISION)
    page.reload()
    expect(html).to_have_attribute("lang", "en")
    expect(footer).to_contain_text("Service hotline")

    page.locator('.lang a[lang="zh-Hans"]', has_text="中文").click()
    expect(page).to_have_url(path_is(live_server, "/"))
    expect(html).to_have_attribute("lang", "zh-Hans")
    expect(footer).to_contain_text(f"{hotline_zh} {HOTLINE}")
    page.reload()
    expect(html).to_have_attribute("lang", "zh-Hans")
    expect(footer).to_contain_text(hotline_zh)


def test_language_switch_returns_to_the_same_page(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/register")
    page.locator('.lang a[lang="en"]').click()
    expect(page).to_have_url(path_is(live_server, "/register"))
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_subscriber_registers_and_lands_on_account(page: Page, fresh_server: str) -> None:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    password = "e2e-subscriber-pw"

    page.goto(f"{fresh_server}/register")
    form = page.locator("main form")
    form.locator('input[name="email"]').fill(email)
    form.locator('input[name="display_name"]').fill("E2E Tester")
    form.locator('input[name="password"]').fill(password)
    form.locator('input[name="confirm"]').fill(password)
    form.locator('button[type="submit"]').click()

    expect(page).to_have_url(path_is(fresh_server, "/account"))
    expect(page.locator("main")).to_contain_text(email)
    expect(page.locator('form[action="/logout"] button')).to_be_visible()
