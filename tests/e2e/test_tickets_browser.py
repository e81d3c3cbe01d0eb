"""Customer service in a real browser: a subscriber opens a complaint in Chinese in
self-care, a care agent answers it in the console, and the subscriber reads the answer."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_browser import path_is, staff_sign_in, zh_hans
from tests.e2e.test_money_browser import subscriber_sign_in

SUBSCRIBER = "zhang.wei@example.com"  # README, "Demo logins" (Chinese by default)
SUBJECT = "晚上网速很慢"
COMPLAINT = "每天晚上八点以后上网特别慢，视频一直在缓冲。"
ANSWER = "您好，我们已检查您所在小区的基站，问题已修复，请重启手机后再试。"


def test_a_complaint_in_chinese_is_answered_in_the_console(
    page: Page, browser: Browser, fresh_server: str
) -> None:
    url = fresh_server
    subscriber_sign_in(page, url, SUBSCRIBER)
    page.locator('.nav a[href="/account/tickets"]').click()
    expect(page.locator("main h1")).to_have_text(zh_hans("My tickets"))
    page.locator("[data-open-ticket]").click()
    form = page.locator("[data-ticket-form]")
    form.locator('select[name="category"]').select_option("complaint")
    expect(form.locator('select[name="category"] option:checked')).to_have_text(
        zh_hans("complaint")
    )
    form.locator('select[name="line_id"]').select_option(index=1)  # the subscriber's line
    form.locator('input[name="subject"]').fill(SUBJECT)
    form.locator('textarea[name="body"]').fill(COMPLAINT)
    form.locator('button[type="submit"]').click()
    expect(page.locator(".flash")).to_contain_text("T-")
    ref = page.locator("main h1").inner_text().split()[0]
    expect(page.locator(".conversation li")).to_have_count(1)
    expect(page.locator(".conversation li .body")).to_have_text(COMPLAINT)

    # A care agent, in a browser of their own, finds it in the queue and answers.
    agent_context = browser.new_context(viewport={"width": 1280, "height": 800})
    agent_context.set_default_timeout(5_000)
    agent = agent_context.new_page()
    staff_sign_in(agent, url, "care")
    expect(agent).to_have_url(path_is(url, "/console/"))
    agent.locator('.nav a[href="/console/tickets"]').click()
    row = agent.locator(f'tr[data-ticket="{ref}"]')
    expect(row).to_contain_text(SUBJECT)
    expect(row.locator('[data-clock="first_response"] [data-sla]')).to_have_attribute(
        "data-sla", "running"
    )
    row.locator(f'a:has-text("{ref}")').click()
    expect(agent.locator(".conversation")).to_contain_text(COMPLAINT)
    reply = agent.locator("[data-reply-form]")
    reply.locator('select[name="visibility"]').select_option("customer")
    reply.locator('textarea[name="body"]').fill(ANSWER)
    reply.locator('button[type="submit"]').click()
    expect(agent.locator(".flash")).to_be_visible()
    expect(agent.locator('.conversation li[data-visibility="customer"]')).to_have_count(2)
    agent.locator('[data-status-form] button[value="pending_customer"]').click()
    expect(agent.locator("[data-ticket-facts] [data-status]")).to_have_attribute(
        "data-status", "pending_customer"
    )
    agent_context.close()

    # The subscriber sees the answer, in Chinese around it.
    page.goto(f"{url}/account/tickets/{ref}")
    messages = page.locator(".conversation li")
    expect(messages).to_have_count(2)
    expect(messages.nth(1).locator(".body")).to_have_text(ANSWER)
    expect(messages.nth(1).locator(".meta")).to_contain_text(zh_hans("Customer service"))
    expect(page.locator("[data-status]").first).to_have_text(zh_hans("waiting for the customer"))
