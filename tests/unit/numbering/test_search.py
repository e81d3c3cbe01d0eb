"""Searching the numbers a buyer can take (numbering/search.py search_numbers)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.errors import InvalidInput
from numbering.lifecycle import assign_number, quarantine_number, reserve_number
from numbering.search import get_number, search_numbers
from tests.factories import NOW


@pytest.fixture
def block(add_block):
    # +86 170 2035 1000 … 1999: a thousand numbers with a few golden ones.
    return add_block("+8617020351000", "+8617020351999")


def msisdns(page):
    return [number.msisdn for number in page.items]


def test_ends_with_finds_numbers_ending_in_the_digits(session, block):
    page = search_numbers(session, pattern="314", now=NOW)
    assert msisdns(page) == ["+8617020351314"]
    assert page.has_more is False


def test_ends_with_a_trailing_run_of_nines_is_found(session, block):
    page = search_numbers(session, pattern="99", now=NOW, per_page=100)
    assert msisdns(page) == [f"+8617020351{d}99" for d in range(10)]
    assert search_numbers(session, pattern="1999", now=NOW).items[0].msisdn == ("+8617020351999")


def test_ends_with_the_whole_national_number_finds_exactly_one(session, block):
    page = search_numbers(session, pattern="17020351467", now=NOW)
    assert msisdns(page) == ["+8617020351467"]


def test_contains_finds_the_digits_anywhere(session, block):
    page = search_numbers(session, pattern="5131", mode="contains", now=NOW)
    assert msisdns(page) == [f"+861702035131{d}" for d in range(10)]


def test_results_are_ordered_by_number_and_paged(session, block):
    first = search_numbers(session, pattern="7", now=NOW, per_page=40)
    assert len(first.items) == 40
    assert first.has_more is True
    assert msisdns(first) == sorted(msisdns(first))
    second = search_numbers(session, pattern="7", now=NOW, page=2, per_page=40)
    third = search_numbers(session, pattern="7", now=NOW, page=3, per_page=40)
    everything = msisdns(first) + msisdns(second) + msisdns(third)
    assert len(everything) == 100  # one in ten of a thousand numbers ends in 7
    assert len(set(everything)) == 100
    assert everything == sorted(everything)
    assert second.has_more is True
    assert third.has_more is False
    assert (third.page, third.per_page) == (3, 40)


def test_a_page_past_the_end_is_empty(session, block):
    page = search_numbers(session, pattern="7", now=NOW, page=99)
    assert page.items == []
    assert page.has_more is False


def test_an_exactly_full_last_page_has_no_more(session, block):
    page = search_numbers(session, pattern="14", now=NOW, per_page=10)
    assert len(page.items) == 10
    assert page.has_more is False


def test_no_pattern_lists_every_available_number(session, block):
    page = search_numbers(session, now=NOW, per_page=5)
    assert msisdns(page) == [f"+861702035100{d}" for d in range(5)]
    assert page.has_more is True


def test_tier_filter_returns_only_that_tier(session, block):
    page = search_numbers(session, tier="end_aaa", now=NOW, per_page=100)
    # 1000, 1222, … 1999 but not 1111, which is the more valuable aaaa.
    assert msisdns(page) == [f"+8617020351{d}{d}{d}" for d in "023456789"]
    assert {n.tier for n in page.items} == {"end_aaa"}
    assert get_number(session, "+8617020351111").tier == "aaaa"


def test_tier_and_pattern_combine(session, block):
    page = search_numbers(session, pattern="88", tier="end_88", now=NOW, per_page=100)
    assert all(n.msisdn.endswith("88") and n.tier == "end_88" for n in page.items)
    # 1188 is the more valuable aabb.
    assert msisdns(page) == [f"+8617020351{d}88" for d in "02345679"]


def test_reserved_assigned_and_quarantined_numbers_are_not_offered(session, block):
    reserve_number(session, msisdn="+8617020351314", holder="order-1", now=NOW)
    reserve_number(session, msisdn="+8617020351414", holder="order-2", now=NOW)
    assign_number(session, msisdn="+8617020351414", holder="order-2", now=NOW)
    reserve_number(session, msisdn="+8617020351514", holder="order-3", now=NOW)
    assign_number(session, msisdn="+8617020351514", holder="order-3", now=NOW)
    quarantine_number(session, msisdn="+8617020351514", now=NOW, days=90)

    page = search_numbers(session, pattern="14", now=NOW, per_page=100)

    assert len(page.items) == 7  # ten numbers end in 14; three are taken
    assert not {"+8617020351314", "+8617020351414", "+8617020351514"} & set(msisdns(page))
    assert search_numbers(session, pattern="1314", now=NOW).items == []


def test_a_number_whose_hold_expired_is_offered_again(session, block):
    reserve_number(session, msisdn="+8617020351314", holder="order-1", now=NOW)
    assert search_numbers(session, pattern="1314", now=NOW).items == []

    at_expiry = NOW + timedelta(minutes=15)
    page = search_numbers(session, pattern="1314", now=at_expiry)
    assert msisdns(page) == ["+8617020351314"]
    assert page.items[0].status == "reserved"  # still held on paper until released


@pytest.mark.parametrize(
    "pattern", ["12a4", "+86", "12 34", "1-2", "%", "_", "١٢٣", "123456789012", "12\x00"]
)
def test_a_pattern_that_is_not_up_to_eleven_digits_is_refused(session, pattern):
    with pytest.raises(InvalidInput) as info:
        search_numbers(session, pattern=pattern, now=NOW)
    assert info.value.field == "pattern"


def test_an_unknown_mode_is_refused(session):
    with pytest.raises(InvalidInput) as info:
        search_numbers(session, pattern="12", mode="starts_with", now=NOW)
    assert info.value.field == "mode"


def test_an_unknown_tier_is_refused(session):
    with pytest.raises(InvalidInput) as info:
        search_numbers(session, tier="lucky7", now=NOW)
    assert info.value.field == "tier"


def test_page_and_page_size_are_clamped(session, block):
    page = search_numbers(session, now=NOW, page=0, per_page=10_000)
    assert (page.page, page.per_page, len(page.items)) == (1, 100, 100)


def test_an_absurd_page_is_clamped_instead_of_overflowing_the_offset(session, block):
    page = search_numbers(session, now=NOW, page=10**30, per_page=100)
    assert (page.page, page.items, page.has_more) == (1_000_000, [], False)
