"""The demo's store, as a newcomer sees it after `make run`: several plans (a cheap one,
a big-data one, a quarterly one and LITE30) and data packs, all on sale with a margin
of at least zero; the home page shows them as cards in both languages, and the number
picker offers golden numbers with their surcharge, a search by ending digits and pages.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session, col, select

from plans.addons import list_addons
from plans.models import Plan
from plans.pricing import plan_margin
from plans.services import published_plans
from plans.terms import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH
from tests.e2e.test_browser import zh_hans

ON = date(2026, 11, 1)


@pytest.fixture
def demo(app: Any, db: Any, session: Session) -> dict[str, Any]:
    """The demo loaded twice: the second load's answer."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load", "--size", "0", "--json"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo", "load", "--size", "0", "--json"])
    assert second.exit_code == 0, second.output
    return json.loads(second.stdout)


def test_loading_the_demo_twice_changes_no_plan_or_add_on(demo: dict[str, Any]) -> None:
    catalog = demo["catalog"]
    for table in ("hosts", "rate_cards", "number_blocks", "plans", "addons"):
        assert catalog[table]["created"] == catalog[table]["updated"] == 0, table
    assert catalog["plans"]["unchanged"] >= 4 and catalog["addons"]["unchanged"] >= 3


def test_the_demo_sells_a_range_of_plans_each_with_a_margin(
    demo: dict[str, Any], session: Session
) -> None:
    plans = {plan.code: plan for plan in published_plans(session)}
    lite = plans["LITE30"]
    assert (lite.price_minor, lite.validity_days, lite.data_mb) == (3900, 30, 10240)
    assert any(p.price_minor < lite.price_minor for p in plans.values()), "a cheap plan"
    assert any(p.data_mb >= 3 * lite.data_mb for p in plans.values()), "a big-data plan"
    assert any(p.validity_days == 90 for p in plans.values()), "a quarterly plan"
    for plan in plans.values():
        assert plan_margin(session, plan=plan, on=ON).margin_minor >= 0, plan.code
        assert not plan.margin_override, plan.code
        assert set(plan.names) == set(plan.descriptions) == {"zh_Hans", "en"}, plan.code
        assert all(len(name) <= MAX_NAME_LENGTH for name in plan.names.values())
        assert all(len(text) <= MAX_DESCRIPTION_LENGTH for text in plan.descriptions.values())
    # Every plan of the catalog is published: no draft or second version is left behind.
    codes = set(session.exec(select(Plan.code).where(col(Plan.status) != "published")))
    assert not codes & set(plans)


def test_the_demo_sells_data_packs(demo: dict[str, Any], session: Session) -> None:
    packs = list_addons(session, status="published")
    assert len(packs) >= 3
    for pack in packs:
        assert set(pack.names) == {"zh_Hans", "en"} and pack.price_minor > 0


def _cards(page: str) -> dict[str, str]:
    """The plan cards of the store home, by plan code, as text."""
    card = r'<li class="card plan-card" data-plan="([A-Z0-9_-]+)">(.*?)</li>\s*'
    following = r'(?=<li class="card plan-card"|</ul>\s*</section>)'
    found = re.findall(card + following, page, re.S)
    return {code: html.unescape(re.sub(r"<[^>]+>", " ", body)) for code, body in found}


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_the_store_home_shows_every_plan_as_a_card(
    demo: dict[str, Any], session: Session, client: Any, zh_client: Any, lang: str
) -> None:
    browser = zh_client if lang == "zh_Hans" else client
    page = browser.get("/").get_data(as_text=True)
    plans = sorted(published_plans(session), key=lambda p: p.price_minor)
    cards = _cards(page)
    assert list(cards) == [p.code for p in plans], "cheapest first"

    def say(text: str) -> str:
        return zh_hans(text) if lang == "zh_Hans" else text

    for plan in plans:
        card = " ".join(cards[plan.code].split())
        assert plan.names[lang] in card
        assert f'data-buy="{plan.code}"' in page
        assert say("Choose a number and buy") in card
    lite = " ".join(cards["LITE30"].split())
    assert ("10 GB 流量" if lang == "zh_Hans" else "10 GB data") in lite
    assert ("200 分钟通话" if lang == "zh_Hans" else "200 minutes of calls") in lite
    assert ("100 条短信" if lang == "zh_Hans" else "100 SMS") in lite
    assert ("有效期 30 天" if lang == "zh_Hans" else "Valid for 30 days") in lite
    quarterly = next(p for p in plans if p.validity_days == 90)
    card = " ".join(cards[quarterly.code].split())
    assert ("有效期 90 天" if lang == "zh_Hans" else "Valid for 90 days") in card
    assert "36.00" in card  # 108.00 over 90 days is 36.00 per 30 days
    assert 'data-addon="DATA1G"' in page


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_the_number_picker_offers_golden_numbers_with_their_surcharge(
    demo: dict[str, Any], client: Any, zh_client: Any, lang: str
) -> None:
    browser = zh_client if lang == "zh_Hans" else client
    page = browser.get("/buy/LITE30?tier=end_88").get_data(as_text=True)
    rows = re.findall(r'<tr data-number="(\+\d+)" data-surcharge="(\d+)"', page)
    assert len(rows) == 20, "a full first page"
    assert all(msisdn.endswith("88") and int(surcharge) == 880 for msisdn, surcharge in rows)
    tier_label = zh_hans("ends in 88") if lang == "zh_Hans" else "ends in 88"
    assert f'data-tier="end_88">{tier_label}' in page
    assert "+¥8.80" in page or "+CN¥8.80" in page
    # The next page keeps the filter.
    assert "tier=end_88" in page and "page=2" in page
    second = browser.get("/buy/LITE30?tier=end_88&page=2").get_data(as_text=True)
    later = re.findall(r'<tr data-number="(\+\d+)"', second)
    assert later and set(later).isdisjoint(msisdn for msisdn, _ in rows)


def test_the_number_picker_searches_by_ending_digits(demo: dict[str, Any], client: Any) -> None:
    page = client.get("/buy/LITE30?q=2468&mode=ends_with").get_data(as_text=True)
    assert re.findall(r'<tr data-number="(\+\d+)"', page) == ["+8617012342468"]
    assert 'maxlength="11"' in page
    # Plain numbers cost nothing extra; golden ones say what they cost.
    plain = client.get("/buy/LITE30?q=2467").get_data(as_text=True)
    assert 'data-surcharge="0"' in plain and "chip golden" not in plain
