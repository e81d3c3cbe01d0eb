"""Buying a plan in a real browser: a new subscriber chooses a plan and a number,
creates an account, gives their real name, chooses an eSIM and pays with a
voucher; the provisioning delivery runs (`mvno provisioning deliver`, the log
adapter acknowledges at once) and the line is active, with its allowances and
the eSIM's QR code. Once in Chinese (the default) and once in English.

Each run has a server of its own; the test puts an eSIM in stock with `mvno
sims import` (whatever the demo stock holds), and finance prints the voucher
in the console.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from stdnum import luhn

from tests.e2e.conftest import LiveServer, _run
from tests.e2e.test_browser import path_is
from tests.e2e.test_money_browser import print_vouchers

VALID_RIC = "11010519491231002X"
BAD_RIC = "110105194912310022"  # the check digit should be X
PASSWORD = "a-long-buyer-password"
_sims = itertools.count(1)


def import_esim(instance: Path, tmp_path: Path) -> str:
    """Put one eSIM of HOSTA in stock through the CLI; returns its LPA code."""
    n = next(_sims)
    body = f"8986012699{uuid.uuid4().int % 10**8:08d}"
    iccid = body + luhn.calc_check_digit(body)
    lpa = f"LPA:1$smdp.example.com$E2E-{n}-{uuid.uuid4().hex[:6].upper()}"
    imsi = f"46001{uuid.uuid4().int % 10**10:010d}"
    path = tmp_path / f"esim-{n}.csv"
    path.write_text(f"iccid,imsi,kind,lpa\n{iccid},{imsi},esim,{lpa}\n", encoding="utf-8")
    _run(instance, "sims", "import", str(path), "--host", "HOSTA")
    return lpa


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_a_new_subscriber_buys_an_esim_plan_with_a_voucher_and_sees_the_active_line(
    page: Page,
    server_factory: Callable[[], LiveServer],
    tmp_path: Path,
    lang: str,
) -> None:
    server = server_factory()
    url = server.url
    import_esim(server.instance, tmp_path)  # so an eSIM is in stock whatever the demo holds

    # Finance prints a voucher, then signs out.
    [(serial, pin)] = print_vouchers(page, url, count=1, value="150.00")
    page.locator('.nav form button[type="submit"]').click()
    page.context.clear_cookies()
    if lang == "en":
        page.goto(f"{url}/language/en")

    # 1. A plan.
    page.goto(f"{url}/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans" if lang == "zh_Hans" else "en")
    page.locator('a[data-buy="LITE30"]').click()
    expect(page).to_have_url(path_is(url, "/buy/LITE30"))

    # 2. A golden number whose surcharge the 150.00 voucher covers beside the plan's
    # 39.00, held for 15 minutes.
    rows = page.locator('tr[data-number]:not([data-surcharge="0"])')
    row = next(
        rows.nth(i)
        for i in range(rows.count())
        if int(rows.nth(i).get_attribute("data-surcharge") or 0) <= 11_100
    )
    msisdn = row.get_attribute("data-number") or ""
    assert msisdn.startswith("+86170123")
    row.locator('button[type="submit"]').click()
    expect(page).to_have_url(path_is(url, "/buy/checkout"))
    expect(page.locator("#cart")).to_contain_text(msisdn)
    expect(page.locator("[data-hold-until]")).to_be_visible()

    # 3. A new account, created inside the purchase.
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    register = page.locator("#buy-register form")
    register.locator('input[name="reg-email"]').fill(email)
    register.locator('input[name="reg-password"]').fill(PASSWORD)
    register.locator('input[name="reg-confirm"]').fill(PASSWORD)
    register.locator('button[type="submit"]').click()
    expect(page).to_have_url(path_is(url, "/buy/checkout"))
    expect(page.locator("#cart")).to_contain_text(msisdn)

    # 4. Real name: a wrong check digit is refused beside the field, the right one kept masked.
    identity = page.locator("#buy-identity form")
    identity.locator('input[name="name"]').fill("张三")
    identity.locator('select[name="id_type"]').select_option("cn_ric")
    identity.locator('input[name="id_number"]').fill(BAD_RIC)
    identity.locator('button[type="submit"]').click()
    expect(page.locator("#buy-identity .field-error")).to_be_visible()
    identity = page.locator("#buy-identity form")
    identity.locator('input[name="name"]').fill("张三")
    identity.locator('input[name="id_number"]').fill(VALID_RIC)
    identity.locator('button[type="submit"]').click()
    expect(page.locator("#buy-identity-done")).to_be_visible()
    assert VALID_RIC not in page.content()

    # 5. An eSIM.
    place = page.locator("#buy-place form")
    place.locator('input[name="sim_kind"][value="esim"]').check()
    place.locator('button[type="submit"]').click()
    expect(page).to_have_url(path_is(url, "/orders/O-000001"))
    expect(page.locator("#order-summary")).to_have_attribute("data-status", "awaiting_payment")
    expect(page.locator("[data-hold-until]")).to_contain_text(msisdn)

    # 6. The voucher pays it.
    voucher = page.locator("#order-voucher form")
    voucher.locator('input[name="serial"]').fill(serial)
    voucher.locator('input[name="pin"]').fill(pin)
    voucher.locator('button[type="submit"]').click()
    expect(page.locator("#order-summary")).to_have_attribute("data-status", "paid")
    expect(page.locator("#order-line")).to_have_attribute("data-line-status", "pending")
    expect(page.locator("[data-pending]")).to_be_visible()

    # The host is told; the log adapter acknowledges at once.
    _run(server.instance, "provisioning", "deliver")
    # The page refreshes itself (every 5 s) while the line is pending.
    expect(page.locator("#order-line")).to_have_attribute(
        "data-line-status", "active", timeout=15_000
    )
    expect(page.locator("[data-active]")).to_contain_text(msisdn)
    expect(page.locator('#order-line [data-meter="data"] progress')).to_be_visible()
    expect(page.locator("[data-qr] svg")).to_be_visible()
    # The oldest eSIM in stock is given out: ours, or one of the demo's.
    expect(page.locator("[data-lpa]")).to_have_text(re.compile(r"^LPA:1\$smdp\.example\.com\$\S+$"))

    # Signed in later, the account page shows the active line with its allowance bars.
    page.locator('.nav form button[type="submit"]').click()
    page.goto(f"{url}/login")
    form = page.locator("main form")
    form.locator('input[name="email"]').fill(email)
    form.locator('input[name="password"]').fill(PASSWORD)
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(path_is(url, "/account"))
    card = page.locator(f'section.line-card[data-line="{msisdn}"]')
    expect(card).to_be_visible()
    expect(card.locator(".meter progress").first).to_be_visible()
    expect(card.locator(".meter")).to_have_count(3)
    page.locator('.nav a[href="/orders"]').click()
    expect(page.locator('tr[data-order="O-000001"] [data-status="paid"]')).to_be_visible()
    page.goto(f"{url}/orders/O-000001")
    expect(page.locator("[data-qr] svg")).to_be_visible()
