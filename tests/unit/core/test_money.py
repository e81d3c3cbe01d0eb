import pytest

from app.core.money import (
    ceil_div,
    format_money,
    format_plain,
    parse_micro,
    parse_minor,
    round_half_up,
)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 2, 3),  # a half goes up
        (7, 2, 4),
        (4, 3, 1),
        (5, 3, 2),
        (-5, 2, -3),  # and away from zero when negative
        (-4, 3, -1),
        (5, -2, -3),
        (0, 7, 0),
        (3900 * 30, 31, 3774),  # 3774.19… rounds down
        (3900 * 31, 62, 1950),  # exactly half of 3900
        (10**30 + 1, 2, 5 * 10**29 + 1),  # big integers stay exact
    ],
)
def test_round_half_up(numerator, denominator, expected):
    assert round_half_up(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 1024, 0),
        (1, 1024, 1),
        (1024, 1024, 1),
        (1025, 1024, 2),
        (-1, 1024, 0),
        (-1025, 1024, -1),
    ],
)
def test_ceil_div_rounds_towards_positive_infinity(numerator, denominator, expected):
    assert ceil_div(numerator, denominator) == expected


@pytest.mark.parametrize("func", [round_half_up, ceil_div])
def test_division_by_zero_is_a_bug_not_zero(func):
    with pytest.raises(ZeroDivisionError):
        func(1, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("29.00", 2900), ("29", 2900), ("0.5", 50), ("0.01", 1), ("0.010", 1), (" 7.10 ", 710)],
)
def test_parse_minor_accepts_exact_amounts(text, expected):
    assert parse_minor(text) == expected


@pytest.mark.parametrize(
    "text",
    ["0.001", "29.005", "-1.00", "1e3", "1,000.00", "", " ", "abc", "1.", ".5", "+1", "1 000"],
)
def test_parse_minor_refuses_excess_precision_and_garbage(text):
    with pytest.raises(ValueError):
        parse_minor(text)


def test_parse_minor_allows_negative_only_when_asked():
    assert parse_minor("-1.25", allow_negative=True) == -125


@pytest.mark.parametrize(
    ("text", "expected"), [("0.0030", 3000), ("0.0025", 2500), ("1.20", 1_200_000), ("0.000001", 1)]
)
def test_parse_micro(text, expected):
    assert parse_micro(text) == expected


def test_parse_micro_refuses_a_seventh_decimal():
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        parse_micro("0.0000001")


@pytest.mark.parametrize(
    ("amount", "places", "expected"),
    [(2900, 2, "29.00"), (5, 2, "0.05"), (-5, 2, "-0.05"), (2500, 6, "0.002500"), (0, 2, "0.00")],
)
def test_format_plain_round_trips(amount, places, expected):
    assert format_plain(amount, places=places) == expected


def test_format_money_uses_the_locale():
    assert format_money(3900, "CNY", "zh_Hans") == "¥39.00"
    assert format_money(3900, "CNY", "en") == "CN¥39.00"
    assert format_money(-150, "USD", "en") == "-$1.50"
