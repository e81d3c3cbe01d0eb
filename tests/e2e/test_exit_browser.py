"""The market exit in a real browser: after the exit is announced (`mvno exit plan` and
`mvno exit announce`), a subscriber signs in, sees the notice, opens the choice page
in Chinese, chooses to transfer a line to the host with consent, and sees the choice
recorded — in the page and in the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer, _run
from tests.e2e.test_browser import path_is, zh_hans
from tests.e2e.test_money_browser import subscriber_sign_in

SUBSCRIBER = "zhang.wei@example.com"  # README, "Demo logins" (Chinese by default)


def _choices(instance: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(instance / "mvno.db") as db:
        return list(
            db.execute(
                "SELECT line.msisdn, exit_choice.choice, exit_choice.given_by"
                " FROM exit_choice JOIN line ON line.id = exit_choice.line_id"
                " ORDER BY exit_choice.id"
            )
        )


def test_a_subscriber_chooses_transfer_after_the_announcement(
    page: Page, server_factory: Callable[[], LiveServer], tmp_path: Path
) -> None:
    server = server_factory()
    url = server.url
    exit_date = (date.today() + timedelta(days=120)).isoformat()
    _run(server.instance, "exit", "plan", "--exit-date", exit_date)
    _run(server.instance, "exit", "announce", "--out", str(tmp_path))

    subscriber_sign_in(page, url, SUBSCRIBER)
    notice = page.locator("[data-exit-notice]")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("data-exit-date", exit_date)
    expect(notice).to_contain_text(
        zh_hans("No new lines are sold; your lines keep working until then.")
    )

    notice.locator("[data-exit-link]").click()
    expect(page).to_have_url(path_is(url, "/exit"))
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator("main h1")).to_have_text(zh_hans("Market exit: your lines"))
    expect(page.locator("#exit-money [data-refund]").first).to_be_visible()

    line = page.locator("article.exit-line").first
    msisdn = line.get_attribute("data-line") or ""
    assert msisdn.startswith("+")
    expect(line.locator("[data-current-choice]")).to_contain_text(
        zh_hans("No choice yet: the line will be terminated and refunded.")
    )
    form = line.locator("[data-exit-form]")
    form.locator('input[value="transfer"]').check()
    # Without the consent the transfer is refused, beside the box.
    form.locator('button[type="submit"]').click()
    line = page.locator(f'article.exit-line[data-line="{msisdn}"]')
    expect(line.locator(".field-error")).to_contain_text(
        zh_hans("To transfer the line, tick the box to agree to your details being passed on.")
    )
    assert _choices(server.instance) == []

    form = line.locator("[data-exit-form]")
    form.locator('input[value="transfer"]').check()
    form.locator('input[type="checkbox"][name$="-consent"]').check()
    form.locator('button[type="submit"]').click()

    expect(page).to_have_url(path_is(url, "/exit"))
    expect(page.locator(".flash-success")).to_contain_text(msisdn)
    line = page.locator(f'article.exit-line[data-line="{msisdn}"]')
    expect(line).to_have_attribute("data-choice", "transfer")
    expect(line.locator("[data-current-choice]")).to_contain_text(zh_hans("transfer to the host"))
    expect(line.locator("[data-current-choice]")).to_contain_text(zh_hans("by you"))
    assert _choices(server.instance) == [(msisdn, "transfer", "customer")]
