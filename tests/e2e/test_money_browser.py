"""Money in a real browser: vouchers printed in the console and redeemed in the store,
a cash payment and adjustments on the console's customer page, and what care may not do.

Tests that move money run on a server of their own (`fresh_server`); amounts are
checked as "before + what this test did", never as absolute demo figures.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

from playwright.sync_api import Page, expect

from app.core.money import format_money, format_plain
from tests.e2e.test_browser import path_is, staff_sign_in, zh_hans

CURRENCY = "CNY"  # the documented default; the e2e server runs on the defaults
SUBSCRIBER_PASSWORD = "demo-subscriber-password"  # README, "Demo logins"
VOUCHER_VALUE = 2_000  # 20.00


def money(amount_minor: int, locale: str) -> str:
    """An amount as the server shows it in `locale` ("¥20.00", "CN¥20.00")."""
    return format_money(amount_minor, CURRENCY, locale)


def minor(text: str) -> int:
    """Minor units of an amount as shown on a page ("¥1,100.00" → 110000)."""
    match = re.search(r"(-?)([\d,]+)\.(\d{2})", text)
    assert match, f"no amount in {text!r}"
    sign, whole, cents = match.groups()
    value = int(whole.replace(",", "")) * 100 + int(cents)
    return -value if sign else value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def print_vouchers(page: Page, url: str, *, count: int, value: str) -> list[tuple[str, str]]:
    """Finance prints a batch on the console's Vouchers page; its (serial, PIN) pairs."""
    staff_sign_in(page, url, "finance")
    expect(page).to_have_url(path_is(url, "/console/"))
    page.locator('.nav a[href="/console/vouchers"]').click()
    expect(page).to_have_url(path_is(url, "/console/vouchers"))

    form = page.locator('form[action="/console/vouchers"]')
    form.locator('input[name="name"]').fill(unique("E2E"))
    form.locator('input[name="value"]').fill(value)
    form.locator('input[name="count"]').fill(str(count))
    form.locator('input[name="expires_at"]').fill((date.today() + timedelta(days=30)).isoformat())
    form.locator('button[name="format"][value="html"]').click()

    # The page shown once: a warning and the serials with their PINs.
    expect(page.locator('main .notice[role="status"]')).to_be_visible()
    rows = page.locator("main tr[data-serial]")
    expect(rows).to_have_count(count)
    pairs = []
    for i in range(count):
        row = rows.nth(i)
        serial = row.get_attribute("data-serial") or ""
        pin = row.locator("[data-pin]").inner_text().strip()
        assert serial and pin, (serial, pin)
        expect(row).to_contain_text(serial)
        pairs.append((serial, pin))
    assert len({s for s, _ in pairs}) == count
    return pairs


def subscriber_sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    form = page.locator("main form")
    form.locator('input[name="email"]').fill(email)
    form.locator('input[name="password"]').fill(SUBSCRIBER_PASSWORD)
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(path_is(url, "/account"))


def redeem_in_store(page: Page, url: str, serial: str, pin: str, *, locale: str) -> None:
    """The signed-in subscriber redeems a voucher on the top-up page and finds its receipt."""
    page.locator('.nav a[href="/account/topup"]').click()
    expect(page).to_have_url(path_is(url, "/account/topup"))
    t = zh_hans if locale == "zh_Hans" else str
    expect(page.locator("main h1")).to_have_text(t("Top up"))
    balance = page.locator("main [data-balance]")
    expect(balance).to_have_text(re.compile(r"\d\.\d\d"))
    before = minor(balance.inner_text())

    form = page.locator("#voucher-topup form")
    form.locator('input[name="serial"]').fill(serial)
    form.locator('input[name="pin"]').fill(pin)
    form.locator('button[type="submit"]').click()

    after = before + VOUCHER_VALUE
    expect(page).to_have_url(path_is(url, "/account/topup"))
    message = t("Voucher redeemed. Your balance is now %(balance)s.") % {
        "balance": money(after, locale)
    }
    expect(page.locator("main .flash-success")).to_have_text(message)
    expect(balance).to_have_text(money(after, locale))
    expect(page.locator("main .error, main .field-error")).to_have_count(0)

    page.locator('.nav a[href="/account/receipts"]').click()
    expect(page).to_have_url(path_is(url, "/account/receipts"))
    expect(page.locator("main h1")).to_have_text(t("Receipts"))
    row = page.locator("main table tbody tr", has_text=serial)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(t("voucher"))
    expect(row.locator("td.num")).to_have_text(money(VOUCHER_VALUE, locale))


def test_vouchers_printed_in_the_console_are_redeemed_in_the_store(
    page: Page, fresh_server: str
) -> None:
    url = fresh_server
    (serial_zh, pin_zh), (serial_en, pin_en) = print_vouchers(page, url, count=2, value="20.00")
    page.context.clear_cookies()

    # zhang.wei in Chinese, the default locale.
    subscriber_sign_in(page, url, "zhang.wei@example.com")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator('.nav a[href="/account/topup"]')).to_have_text("充值")
    redeem_in_store(page, url, serial_zh, pin_zh, locale="zh_Hans")
    expect(page.locator("main")).to_contain_text("充值卡")
    page.context.clear_cookies()

    # li.na in English, chosen with the language link.
    subscriber_sign_in(page, url, "li.na@example.com")
    page.locator('.lang a[lang="en"]').click()
    expect(page).to_have_url(path_is(url, "/account"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    redeem_in_store(page, url, serial_en, pin_en, locale="en")

    # A voucher is good once: the first one, again, is refused and changes nothing.
    page.locator('.nav a[href="/account/topup"]').click()
    balance = page.locator("main [data-balance]").inner_text()
    form = page.locator("#voucher-topup form")
    form.locator('input[name="serial"]').fill(serial_zh)
    form.locator('input[name="pin"]').fill(pin_zh)
    form.locator('button[type="submit"]').click()
    expect(page.locator("#voucher-topup .error, #voucher-topup .field-error").first).to_be_visible()
    expect(page.locator("main .flash-success")).to_have_count(0)
    expect(page.locator("main [data-balance]")).to_have_text(balance)


def open_customer(page: Page, url: str, email: str) -> None:
    """From the console's nav: Customers, search by e-mail, open the one found."""
    page.locator('.nav a[href="/console/customers"]').click()
    expect(page).to_have_url(path_is(url, "/console/customers"))
    search = page.locator("main form.search")
    search.locator('input[name="q"]').fill(email)
    search.locator('button[type="submit"]').click()
    rows = page.locator("main tr[data-customer]")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(email)
    ref = rows.get_attribute("data-customer")
    rows.locator(f'a[href="/console/customers/{ref}"]').click()
    expect(page).to_have_url(path_is(url, f"/console/customers/{ref}"))
    expect(page.locator("main h1")).to_contain_text(ref or "")
    expect(page.locator("main")).to_contain_text(email)


def test_finance_records_cash_and_adjusts_a_balance(page: Page, fresh_server: str) -> None:
    url = fresh_server
    staff_sign_in(page, url, "finance")
    expect(page).to_have_url(path_is(url, "/console/"))
    page.locator('.lang a[lang="en"]').click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    open_customer(page, url, "zhang.wei@example.com")

    balance = page.locator('main [data-figure="balance"]')
    headroom = page.locator('main [data-figure="headroom"]')
    ledger_rows = page.locator("main tr[data-entry]")
    before = minor(balance.inner_text())
    postings = ledger_rows.count()

    # A cash payment with a reference of this test's own.
    reference = unique("E2E-CASH")
    pay = page.locator("#payment form")
    pay.locator('select[name="payment-method"]').select_option("cash")
    pay.locator('input[name="payment-amount"]').fill("30.00")
    pay.locator('input[name="payment-reference"]').fill(reference)
    pay.locator('input[name="payment-memo"]').fill("paid at the counter")
    pay.get_by_role("button", name="Record payment").click()

    after_cash = before + 3_000
    expect(page.locator("main .flash-success")).to_contain_text(money(3_000, "en"))
    expect(balance).to_have_text(money(after_cash, "en"))
    expect(ledger_rows).to_have_count(postings + 1)
    cash_row = ledger_rows.filter(has_text=reference)
    expect(cash_row).to_have_count(1)
    expect(cash_row.locator("[data-amount]")).to_have_attribute("data-amount", "3000")
    expect(cash_row.locator("[data-running]")).to_have_attribute("data-running", str(after_cash))
    expect(ledger_rows.first).to_contain_text(reference)  # newest first
    expect(page.locator("main table").filter(has_text="paid at the counter").first).to_be_visible()

    # An adjustment without a reason: the message is beside the reason, nothing moves.
    adjust = page.locator("#adjust form")
    adjust.locator('input[name="adjust-amount"]').fill("5.00")
    adjust.locator('[name="adjust-reason"]').fill("")
    adjust.get_by_role("button", name="Post adjustment").click()
    reason_field = page.locator('#adjust [name="adjust-reason"]')
    expect(reason_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#adjust .field-error")).to_contain_text("required")
    expect(page.locator("main .flash-success")).to_have_count(0)
    expect(balance).to_have_text(money(after_cash, "en"))
    expect(ledger_rows).to_have_count(postings + 1)

    # With a reason it is posted, and the reason is in the ledger.
    reason = f"goodwill credit {unique('E2E')}"
    adjust = page.locator("#adjust form")
    adjust.locator('input[name="adjust-amount"]').fill("5.00")
    adjust.locator('[name="adjust-reason"]').fill(reason)
    adjust.get_by_role("button", name="Post adjustment").click()
    after_adjust = after_cash + 500
    expect(page.locator("main .flash-success")).to_have_text(
        f"Balance adjusted by {money(500, 'en')}."
    )
    expect(balance).to_have_text(money(after_adjust, "en"))
    expect(ledger_rows).to_have_count(postings + 2)
    adjust_row = ledger_rows.filter(has_text=reason)
    expect(adjust_row).to_have_count(1)
    expect(adjust_row.locator("[data-running]")).to_have_attribute(
        "data-running", str(after_adjust)
    )
    expect(page.locator("#adjust .field-error")).to_have_count(0)

    # Above the cap: refused, naming the largest amount allowed now.
    allowed = minor(headroom.inner_text())
    assert allowed > 0
    adjust = page.locator("#adjust form")
    adjust.locator('input[name="adjust-amount"]').fill(format_plain(allowed + 1))
    adjust.locator('[name="adjust-reason"]').fill("too much")
    adjust.get_by_role("button", name="Post adjustment").click()
    error = page.locator("#adjust .field-error")
    expect(error).to_contain_text("the largest amount allowed now is")
    expect(error).to_contain_text(format_plain(allowed))
    expect(page.locator('#adjust [name="adjust-amount"]')).to_have_attribute("aria-invalid", "true")
    expect(page.locator("main .flash-success")).to_have_count(0)
    expect(balance).to_have_text(money(after_adjust, "en"))
    expect(ledger_rows).to_have_count(postings + 2)

    # Reloaded from the server, the figures are the same.
    page.goto(page.url.split("/adjust")[0])
    expect(balance).to_have_text(money(after_adjust, "en"))
    expect(ledger_rows).to_have_count(postings + 2)


def test_care_reads_the_ledger_but_cannot_move_money(page: Page, live_server: str) -> None:
    url = live_server
    staff_sign_in(page, url, "care")
    expect(page).to_have_url(path_is(url, "/console/"))
    expect(page.locator('.nav a[href="/console/refunds"]')).to_have_count(0)
    expect(page.locator('.nav a[href="/console/vouchers"]')).to_have_count(0)
    open_customer(page, url, "zhang.wei@example.com")

    expect(page.locator('main [data-figure="balance"]')).to_have_text(re.compile(r"\d\.\d\d"))
    expect(page.locator("main tr[data-entry]").first).to_be_visible()
    expect(page.locator("#adjust")).to_have_count(0)
    expect(page.locator('[name="adjust-amount"]')).to_have_count(0)
    expect(page.locator("#payment")).to_have_count(0)
    expect(page.locator("#refund")).to_have_count(0)

    response = page.goto(f"{url}/console/refunds")
    assert response is not None
    assert response.status == 403
    expect(page.locator("main tr[data-refund]")).to_have_count(0)
