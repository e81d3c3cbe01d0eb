"""Pages that read well on a phone and on a desktop, in both languages.

At 390 px and 1280 px wide, the console's customers table and the store's home page
have no table header cell taller than two lines of text, and nothing makes the page
wider than the window: a wide table scrolls inside its own frame. Measured with the
elements' bounding boxes.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Route

from tests.e2e.test_browser import staff_sign_in

WIDTHS = (390, 1280)
LANGS = ("zh_Hans", "en")


@pytest.fixture(params=WIDTHS, ids=lambda width: f"{width}px")
def sized_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": request.param, "height": 800})
    context.set_default_timeout(5_000)
    outside: list[str] = []

    def only_local(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    yield page
    context.close()
    assert not outside, f"the page tried to reach beyond 127.0.0.1: {outside}"


def overflow_px(page: Page) -> float:
    """How far the page's content reaches beyond the window's right edge (0 when it fits).

    A table may be wider than the window only inside its scrolling frame, so
    the frames and everything outside them are measured, not what they hold.
    """
    width = page.evaluate("document.documentElement.clientWidth")
    widest = 0.0
    for element in page.locator("body > *, main > *, .table-wrap").all():
        box = element.bounding_box()
        if box is not None:
            widest = max(widest, box["x"] + box["width"])
    scroll = page.evaluate("document.documentElement.scrollWidth")
    return max(widest - width, scroll - width, 0.0)


def lines_of(page: Page, selector: str) -> float:
    """The height of the tallest element matching `selector`, in lines of its own text."""
    tallest = 0.0
    for element in page.locator(selector).all():
        box = element.bounding_box()
        if box is None:
            continue  # not shown at this width
        line, padding = element.evaluate(
            "e => { const s = getComputedStyle(e);"
            " return [parseFloat(s.lineHeight), parseFloat(s.paddingTop)"
            " + parseFloat(s.paddingBottom)]; }"
        )
        tallest = max(tallest, (box["height"] - padding) / line)
    return tallest


def check(page: Page) -> None:
    assert page.locator("thead th").count() > 0
    lines = lines_of(page, "thead th")
    assert lines <= 2.05, f"a header cell is {lines:.1f} lines tall"
    assert overflow_px(page) <= 0.5, f"the page overflows by {overflow_px(page)} px"


@pytest.mark.parametrize("lang", LANGS)
def test_the_console_customers_table_fits(sized_page: Page, live_server: str, lang: str) -> None:
    sized_page.goto(f"{live_server}/language/{lang}")
    staff_sign_in(sized_page, live_server, "care")
    sized_page.goto(f"{live_server}/console/customers")
    assert sized_page.locator("tr[data-customer]").count() >= 2
    check(sized_page)


@pytest.mark.parametrize("lang", LANGS)
def test_the_store_home_and_number_picker_fit(
    sized_page: Page, live_server: str, lang: str
) -> None:
    sized_page.goto(f"{live_server}/language/{lang}")
    sized_page.goto(f"{live_server}/")
    assert sized_page.locator("[data-plan]").count() >= 4
    assert overflow_px(sized_page) <= 0.5
    # The home page has no table: its card titles keep to two lines, and no card is cut.
    assert lines_of(sized_page, ".plan-card h3") <= 2.05
    for card in sized_page.locator(".plan-card").all():
        box = card.bounding_box()
        assert box is not None and box["x"] >= 0
        assert box["x"] + box["width"] <= sized_page.viewport_size["width"]  # type: ignore[index]
    sized_page.locator('a[data-buy="LITE30"]').click()
    sized_page.wait_for_url("**/buy/LITE30")
    check(sized_page)
    # The button that takes a number is on screen without scrolling sideways.
    button = sized_page.locator("tr[data-number] button").first.bounding_box()
    assert button is not None
    assert button["x"] + button["width"] <= sized_page.viewport_size["width"]  # type: ignore[index]
