"""Golden-number tiers recognised from the last 8 digits (numbering/golden.py)."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from numbering.golden import DEFAULT_TIERS, TIER_CODES, classifier, classify, shared_digits

ASCENDING = "0123456789"
DESCENDING = ASCENDING[::-1]


def reference_matches(msisdn: str) -> list[str]:
    """Every tier a number matches, written from the rules as plainly as possible."""
    d = msisdn[-8:]
    windows4 = [d[i : i + 4] for i in range(5)]
    windows5 = [d[i : i + 5] for i in range(4)]
    rules = {
        "aaaaa": re.search(r"(\d)\1{4}", d) is not None,
        "aaaa": re.search(r"(\d)\1{3}", d) is not None,
        "abcde": any(w in ASCENDING for w in windows5),
        "abcd": any(w in ASCENDING for w in windows4),
        "end_1314": d.endswith("1314"),
        "end_520": d.endswith("520"),
        "dcba": any(w in DESCENDING for w in windows4),
        "aabb": re.fullmatch(r"(\d)\1(?!\1)(\d)\2", d[-4:]) is not None,
        "abab": re.fullmatch(r"(\d)(?!\1)(\d)\1\2", d[-4:]) is not None,
        "end_aaa": re.search(r"(\d)\1\1$", d) is not None,
        "end_168": d.endswith("168"),
        "end_88": d.endswith("88"),
        "end_66": d.endswith("66"),
    }
    assert list(rules) == list(TIER_CODES)
    return [code for code, matched in rules.items() if matched]


@pytest.mark.parametrize(
    ("msisdn", "tier"),
    [
        # aaaaa: five or more equal digits in a row anywhere in the last 8
        ("+8617018888812", "aaaaa"),
        ("+8617000000000", "aaaaa"),
        ("+8617012399999", "aaaaa"),
        # aaaa: four in a row anywhere, including the endings 8888 and 6666
        ("+8617012348888", "aaaa"),
        ("+8617012666630", "aaaa"),
        ("+8617077771203", "aaaa"),
        # abcde / abcd: ascending runs anywhere
        ("+8617013456790", "abcde"),
        ("+8617090567811", "abcd"),
        ("+8617021234970", "abcd"),
        # romantic endings
        ("+8617020351314", "end_1314"),
        ("+8617020349520", "end_520"),
        # dcba: descending runs anywhere
        ("+8617009876202", "dcba"),
        ("+8617020354321", "dcba"),
        # last-four shapes
        ("+8617020351122", "aabb"),
        ("+8617020351212", "abab"),
        ("+8617020351777", "end_aaa"),
        # lucky endings
        ("+8617020351168", "end_168"),
        ("+8617020351488", "end_88"),
        ("+8617020351466", "end_66"),
    ],
)
def test_each_tier_is_recognised(msisdn, tier):
    assert classify(msisdn) == tier


@pytest.mark.parametrize(
    "msisdn",
    [
        "+8617020351467",  # ordinary
        "+8617078902461",  # 7890: 0 does not follow 9
        "+8617012352461",  # 1235 is not a run
        "+8617011122461",  # three equal digits inside, not at the end
        "+8617020351117",  # 1117: no tail rule
        "+8617020351221",  # abba is not a tier
        "+8617020351112",  # aaab
        "+8617020351561",  # 1561
        "+8617020350521",  # 0521
        "+8617020351315",  # almost 1314
        "+8617020351186",  # 186 is not 168
        "+8617020351468",  # 68 alone is no tier
    ],
)
def test_ordinary_numbers_have_no_tier(msisdn):
    assert classify(msisdn) is None


@pytest.mark.parametrize(
    ("msisdn", "tier", "why"),
    [
        ("+8617012388888", "aaaaa", "88888 beats ending 88 and ending 888"),
        ("+8617012345678", "abcde", "a 5-run ascending beats the 4-run"),
        ("+8617200000520", "aaaaa", "00000 beats ending 520"),
        ("+8617012341314", "abcd", "1234 beats ending 1314"),
        ("+8617043211314", "end_1314", "1314 beats 4321"),
        ("+8617098761122", "dcba", "9876 beats aabb"),
        ("+8617020358888", "aaaa", "8888 beats aabb, end_aaa and end_88"),
        ("+8617020356688", "aabb", "6688 beats ending 88"),
        ("+8617020351666", "end_aaa", "666 beats ending 66"),
        ("+8617020355520", "end_520", "520 beats nothing else; 555 is not at the end"),
    ],
)
def test_the_most_valuable_tier_wins(msisdn, tier, why):
    assert classify(msisdn) == tier, why


def test_disabled_tiers_give_way_to_the_next_enabled_one():
    assert classify("+8617020358888") == "aaaa"
    assert classify("+8617020358888", enabled={"end_aaa", "end_88"}) == "end_aaa"
    assert classify("+8617020358888", enabled={"end_88"}) == "end_88"
    assert classify("+8617020358888", enabled=set()) is None


def test_only_the_last_eight_digits_count():
    # 8888 sits in the operator prefix, outside the last eight digits.
    assert classify("+8618888020351467") is None
    assert classify("20351467") is None
    assert classify("12348888") == "aaaa"


@pytest.mark.parametrize(
    "value", ["", "+86", "1234567", "+86170abc45678", "+861701234 888", "١٢٣٤٨٨٨٨"]
)
def test_short_or_non_digit_input_has_no_tier(value):
    assert classify(value) is None


def test_default_tiers_run_from_most_to_least_valuable():
    surcharges = list(DEFAULT_TIERS.values())
    assert surcharges == sorted(surcharges, reverse=True)
    assert 8 <= len(DEFAULT_TIERS) <= 13
    assert all(len(code) <= 20 and amount > 0 for code, amount in DEFAULT_TIERS.items())


EIGHT_DIGITS = st.text(alphabet="0123456789", min_size=8, max_size=8)
# Few distinct digits make runs and repeated shapes common.
RUNNY_DIGITS = st.integers(0, 6).flatmap(
    lambda low: st.text(alphabet=ASCENDING[low : low + 4], min_size=8, max_size=8)
)


@given(digits=EIGHT_DIGITS | RUNNY_DIGITS, enabled=st.none() | st.sets(st.sampled_from(TIER_CODES)))
def test_classify_agrees_with_the_plain_rules(digits, enabled):
    msisdn = "+86170" + digits
    matches = [code for code in reference_matches(msisdn) if enabled is None or code in enabled]
    expected = matches[0] if matches else None
    assert classify(msisdn, enabled) == expected
    assert classifier(enabled)(msisdn) == expected


def test_a_block_of_numbers_classifies_quickly():
    classify_one = classifier()
    numbers = [f"+86170{n:08d}" for n in range(200_000)]
    start = time.perf_counter()
    tiers = [classify_one(number) for number in numbers]
    elapsed = time.perf_counter() - start
    # About 0.15 s here; a million numbers must stay far below the 30 s load budget.
    assert elapsed < 2.0
    assert tiers.count(None) > 150_000


def reference_in_block(msisdn: str, shared: int) -> list[str]:
    """Every tier a number of a block matches when its first `shared` digits of the last
    eight are the block's: an occurrence counts only if it ends past them."""
    d = msisdn[-8:]

    def found(length: int, test) -> bool:
        return any(test(d[i : i + length]) and i + length > shared for i in range(9 - length))

    def same(w: str) -> bool:
        return len(set(w)) == 1

    tail_counts = shared < 8
    rules = {
        "aaaaa": found(5, same),
        "aaaa": found(4, same),
        "abcde": found(5, lambda w: w in ASCENDING),
        "abcd": found(4, lambda w: w in ASCENDING),
        "end_1314": tail_counts and d.endswith("1314"),
        "end_520": tail_counts and d.endswith("520"),
        "dcba": found(4, lambda w: w in DESCENDING),
        "aabb": tail_counts and re.fullmatch(r"(\d)\1(?!\1)(\d)\2", d[-4:]) is not None,
        "abab": tail_counts and re.fullmatch(r"(\d)(?!\1)(\d)\1\2", d[-4:]) is not None,
        "end_aaa": tail_counts and re.search(r"(\d)\1\1$", d) is not None,
        "end_168": tail_counts and d.endswith("168"),
        "end_88": tail_counts and d.endswith("88"),
        "end_66": tail_counts and d.endswith("66"),
    }
    return [code for code, matched in rules.items() if matched]


@given(
    digits=EIGHT_DIGITS | RUNNY_DIGITS,
    shared=st.integers(0, 8),
    enabled=st.none() | st.sets(st.sampled_from(TIER_CODES)),
)
def test_in_a_block_only_patterns_past_the_shared_digits_count(digits, shared, enabled):
    msisdn = "+86170" + digits
    matches = [c for c in reference_in_block(msisdn, shared) if enabled is None or c in enabled]
    assert classifier(enabled, shared=shared)(msisdn) == (matches[0] if matches else None)


@pytest.mark.parametrize(
    ("first", "last", "shared"),
    [
        ("+8617012340000", "+8617012349999", 4),  # 1234xxxx
        ("+8617012340000", "+8617012340099", 6),  # 123400xx
        ("+8617012340000", "+8617012340001", 7),
        ("+8617012340000", "+8617012340000", 0),  # one number is judged on its own digits
        ("+8617000000000", "+8617099999999", 0),
        ("+8617012340000", "+86170123400000", 0),  # ends of different lengths
        ("+8617012", "+8617019", 0),  # shorter than eight digits
    ],
)
def test_shared_digits_of_a_block(first, last, shared):
    assert shared_digits(first, last) == shared


def test_when_all_eight_digits_are_shared_nothing_counts():
    assert classifier(shared=8)("+8617012348888") is None
    assert classifier(shared=0)("+8617012348888") == "aaaa"


def test_every_tier_has_words_for_the_buyer() -> None:
    from numbering.models import GOLDEN_TIER_LABELS

    assert list(GOLDEN_TIER_LABELS) == list(TIER_CODES)
