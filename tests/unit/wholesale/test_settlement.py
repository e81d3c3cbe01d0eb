"""Settlement arithmetic (wholesale/settlement.py): months, cards, rounding, files.

Pure: rate cards are plain objects with the prices of HOSTA's example card
unless a test says otherwise; no database.
"""

from __future__ import annotations

import csv
import json
import os
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import InvalidInput
from app.core.money import parse_micro
from wholesale import settlement as settlement_module
from wholesale.errors import NoRateCard
from wholesale.models import PRICE_UNITS, SERVICES
from wholesale.settlement import (
    Settlement,
    SettlementRow,
    UsageQuantity,
    card_in_force,
    format_unit_price,
    month_bounds,
    parse_month,
    settle,
    settlement_csv,
    settlement_json,
    write_settlement,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PRICES = {"data": 2_500, "voice": 40_000, "sms": 15_000, "line": 1_200_000, "number": 100_000}
RETAIL = {
    "data": 10_000,
    "voice": 100_000,
    "sms": 100_000,
    "line": 8_000_000,
    "number": 1_000_000,
}
OCT = "2026-10"


@dataclass(frozen=True)
class Card:
    """A rate card as settlement sees it: a date, prices and retail prices (micro-units)."""

    effective_from: date
    prices: dict[str, int] = field(default_factory=lambda: dict(PRICES))
    retail: dict[str, int] = field(default_factory=lambda: dict(RETAIL))

    def price(self, service: str) -> int:
        return self.prices[service]

    def compliant(self, service: str) -> bool:
        return self.prices[service] < self.retail[service]


def card(effective_from: date = date(2026, 1, 1), **prices: int) -> Card:
    return Card(effective_from, {**PRICES, **prices})


def oct_(day: int) -> date:
    return date(2026, 10, day)


def settle_oct(
    usage: list[UsageQuantity],
    cards: list[Card] | None = None,
    *,
    lines: int = 0,
    numbers: int = 0,
) -> Settlement:
    return settle(
        host_code="HOSTA",
        currency="CNY",
        month=OCT,
        cards=[card()] if cards is None else cards,
        usage=usage,
        lines=lines,
        numbers=numbers,
    )


def row_of(s: Settlement, service: str) -> SettlementRow:
    (row,) = [r for r in s.rows if r.service == service]
    return row


# -- months ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "zone", "start", "end"),
    [
        ("2026-10", "Asia/Shanghai", "2026-09-30T16:00:00+00:00", "2026-10-31T16:00:00+00:00"),
        ("2026-12", "Asia/Shanghai", "2026-11-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
        # Summer time ends on 25 October: the month starts at +02:00 and ends at +01:00.
        ("2026-10", "Europe/Berlin", "2026-09-30T22:00:00+00:00", "2026-10-31T23:00:00+00:00"),
        ("2026-03", "Europe/Berlin", "2026-02-28T23:00:00+00:00", "2026-03-31T22:00:00+00:00"),
        ("2026-10", "UTC", "2026-10-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00"),
        # Cairo skipped the midnight that began August 2014 (00:00 became 01:00).
        ("2014-08", "Africa/Cairo", "2014-07-31T22:00:00+00:00", "2014-08-31T21:00:00+00:00"),
    ],
)
def test_month_bounds_are_the_local_month_in_utc(month, zone, start, end):
    bounds = month_bounds(month, zone)
    assert bounds == (datetime.fromisoformat(start), datetime.fromisoformat(end))
    assert all(instant.tzinfo is UTC for instant in bounds)


def test_a_month_across_the_end_of_summer_time_is_an_hour_longer():
    start, end = month_bounds("2026-10", "Europe/Berlin")
    assert end - start == timedelta(days=31, hours=1)
    start, end = month_bounds("2026-10", "Asia/Shanghai")
    assert end - start == timedelta(days=31)


def test_month_bounds_hold_exactly_the_instants_of_local_days_in_the_month():
    start, end = month_bounds("2026-10", "Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    assert (start - timedelta(microseconds=1)).astimezone(berlin).date() == date(2026, 9, 30)
    assert start.astimezone(berlin).date() == date(2026, 10, 1)
    assert (end - timedelta(microseconds=1)).astimezone(berlin).date() == date(2026, 10, 31)
    assert end.astimezone(berlin).date() == date(2026, 11, 1)


@pytest.mark.parametrize(
    "text",
    [
        "2026-1",
        "2026-13",
        "2026-00",
        " 2026-10",
        "2026-10 ",
        "2026-10-01",
        "26-10",
        "2026/10",
        "202610",
        "\uff12\uff10\uff12\uff16-10",  # full-width digits
        "1899-12",
        "9999-12",
        "",
        None,
        202610,
    ],
)
def test_a_month_not_written_yyyy_mm_is_refused(text):
    with pytest.raises(InvalidInput) as caught:
        parse_month(text)
    assert caught.value.field == "month"


def test_parse_month_gives_the_first_day():
    assert parse_month("2026-10") == date(2026, 10, 1)
    assert parse_month("9998-12") == date(9998, 12, 1)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(InvalidInput) as caught:
        month_bounds(OCT, "Mars/Olympus")
    assert caught.value.field == "timezone"


# -- cards -------------------------------------------------------------------------------


def test_the_card_in_force_is_the_latest_one_on_or_before_the_day():
    jan, oct15, nov = card(date(2026, 1, 1)), card(date(2026, 10, 15)), card(date(2026, 11, 1))
    cards = [oct15, nov, jan]
    assert card_in_force(cards, date(2025, 12, 31)) is None
    assert card_in_force(cards, date(2026, 1, 1)) is jan
    assert card_in_force(cards, oct_(14)) is jan
    assert card_in_force(cards, oct_(15)) is oct15
    assert card_in_force(cards, oct_(31)) is oct15
    assert card_in_force(cards, date(2027, 5, 1)) is nov
    assert card_in_force([], oct_(1)) is None


# -- rounding ----------------------------------------------------------------------------

MB = 1_048_576


@pytest.mark.parametrize(
    ("service", "quantity", "price_micro", "amount_minor"),
    [
        # data: price per MB, billed per byte, 10**4 micro-units a fen
        ("data", MB, 5_000, 1),  # 0.5 fen exactly: half up
        ("data", MB - 1, 5_000, 0),  # a byte short of half a fen
        ("data", 1, 2_500, 0),
        ("data", 3 * MB, 2_500, 1),  # 0.75 fen
        ("data", 50 * MB + MB, 2_500, 13),  # 0.1275 yuan, the example's data
        ("data", 52_428_801, 2_500, 13),  # not a whole number of MB
        ("data", 6 * MB, 2_500, 2),  # 1.5 fen
        ("data", 0, 2_500, 0),
        # voice: price per minute, billed per second
        ("voice", 61, 40_000, 4),  # 4.0667 fen
        ("voice", 90, 10_000, 2),  # 1.5 fen exactly
        ("voice", 89, 10_000, 1),  # 1.483 fen
        ("voice", 1, 40_000, 0),  # 0.0667 fen
        ("voice", 8, 40_000, 1),  # 0.5333 fen
        ("voice", 7, 40_000, 0),  # 0.4667 fen
        # sms: price per message
        ("sms", 1, 15_000, 2),  # 0.0150 yuan is 1.5 fen: half up
        ("sms", 1, 14_999, 1),
        ("sms", 3, 15_000, 5),  # 4.5 fen
        ("sms", 2, 15_000, 3),
    ],
)
def test_usage_amounts_round_half_up_once_per_row(service, quantity, price_micro, amount_minor):
    s = settle_oct([UsageQuantity(service, oct_(2), quantity)], [card(**{service: price_micro})])
    row = row_of(s, service)
    assert (row.quantity, row.unit_price_micro, row.amount_minor) == (
        quantity,
        price_micro,
        amount_minor,
    )


@pytest.mark.parametrize(
    ("service", "count", "price_micro", "amount_minor"),
    [
        ("line", 2, 1_200_000, 240),
        ("line", 1, 5_000, 1),  # half a fen
        ("line", 1, 4_999, 0),
        ("line", 3, 1_666_666, 500),  # 499.9998 fen
        ("number", 10_000, 100_000, 100_000),
        ("number", 1, 15_000, 2),
        ("number", 0, 100_000, 0),
    ],
)
def test_line_and_number_amounts_round_half_up(service, count, price_micro, amount_minor):
    counts = {"lines": count if service == "line" else 0}
    counts["numbers"] = count if service == "number" else 0
    s = settle_oct([], [card(**{service: price_micro})], **counts)
    assert row_of(s, service).amount_minor == amount_minor


def test_rounding_happens_on_the_months_sum_not_per_day():
    # 0.4 fen a day: rounded per day it would be nothing; the month's 0.8 is 1 fen.
    usage = [UsageQuantity("data", oct_(day), MB) for day in (1, 2)]
    s = settle_oct(usage, [card(data=4_000)])
    assert row_of(s, "data").quantity == 2 * MB
    assert row_of(s, "data").amount_minor == 1


def test_records_of_the_same_day_add_up():
    usage = [UsageQuantity("sms", oct_(3), 1), UsageQuantity("sms", oct_(3), 2)]
    assert row_of(settle_oct(usage), "sms").quantity == 3


# -- rate changes ------------------------------------------------------------------------


def test_a_mid_month_price_change_gives_two_rows_each_rounded_once():
    old = card(date(2026, 1, 1))
    new = card(date(2026, 10, 15), data=3_000, line=1_000_000, number=90_000)
    usage = [
        UsageQuantity("data", oct_(2), 10 * MB),  # 2.5 fen at 0.0025
        UsageQuantity("data", oct_(14), 10 * MB),  # also the old card
        UsageQuantity("data", oct_(15), 5 * MB),  # 1.5 fen at 0.0030
        UsageQuantity("data", oct_(31), 1),
        UsageQuantity("voice", oct_(20), 61),
    ]
    s = settle_oct(usage, [new, old], lines=2, numbers=10_000)
    data = [r for r in s.rows if r.service == "data"]
    assert [(r.quantity, r.unit_price_micro, r.amount_minor) for r in data] == [
        (20 * MB, 2_500, 5),
        (5 * MB + 1, 3_000, 2),
    ]
    # voice keeps one row: the new card has the same voice price
    assert [r.service for r in s.rows] == ["data", "data", "voice", "sms", "line", "number"]
    assert row_of(s, "voice").amount_minor == 4
    # sms has no usage: quantity 0 at the price of the month's first day
    assert (row_of(s, "sms").quantity, row_of(s, "sms").unit_price_micro) == (0, 15_000)
    # line and number: the card in force on the month's last day
    assert (row_of(s, "line").unit_price_micro, row_of(s, "line").amount_minor) == (
        1_000_000,
        200,
    )
    assert row_of(s, "number").amount_minor == 90_000
    assert s.total_minor == 5 + 2 + 4 + 0 + 200 + 90_000


def test_a_price_change_after_the_last_usage_day_leaves_one_row():
    cards = [card(date(2026, 1, 1)), card(date(2026, 10, 20), data=9_000)]
    s = settle_oct([UsageQuantity("data", oct_(19), MB)], cards)
    assert [(r.service, r.unit_price_micro) for r in s.rows if r.service == "data"] == [
        ("data", 2_500)
    ]


def test_a_card_that_changes_only_compliance_splits_the_row():
    old = card(date(2026, 1, 1))
    new = Card(date(2026, 10, 10), dict(PRICES), {**RETAIL, "data": 2_500})
    usage = [UsageQuantity("data", oct_(1), MB), UsageQuantity("data", oct_(11), MB)]
    data = [r for r in settle_oct(usage, [old, new]).rows if r.service == "data"]
    assert [(r.quantity, r.compliant) for r in data] == [(MB, True), (MB, False)]


def test_the_compliance_flag_is_the_rows_card():
    greedy = Card(date(2026, 1, 1), dict(PRICES), {**RETAIL, "line": 1_200_000, "sms": 1})
    s = settle_oct([UsageQuantity("sms", oct_(1), 1)], [greedy], lines=1)
    assert {r.service: r.compliant for r in s.rows} == {
        "data": True,
        "voice": True,
        "sms": False,
        "line": False,
        "number": True,
    }


def test_a_host_whose_first_card_starts_mid_month_prices_unused_services_with_it():
    s = settle_oct([UsageQuantity("data", oct_(20), MB)], [card(oct_(15), voice=50_000)])
    assert row_of(s, "voice").unit_price_micro == 50_000
    assert row_of(s, "voice").quantity == 0


# -- refusals ----------------------------------------------------------------------------


def test_usage_on_a_day_without_a_card_is_refused_naming_the_first_such_day():
    usage = [
        UsageQuantity("voice", oct_(9), 60),
        UsageQuantity("data", oct_(3), MB),
        UsageQuantity("data", oct_(20), MB),
    ]
    with pytest.raises(NoRateCard) as caught:
        settle_oct(usage, [card(oct_(10))])
    assert "2026-10-03" in caught.value.message
    assert caught.value.params == {"host": "HOSTA", "day": "2026-10-03"}


def test_a_month_without_any_card_is_refused_on_its_last_day():
    with pytest.raises(NoRateCard) as caught:
        settle_oct([], [card(date(2026, 11, 1))])
    assert caught.value.params["day"] == "2026-10-31"


def test_a_zero_quantity_before_the_first_card_is_not_usage():
    s = settle_oct([UsageQuantity("data", oct_(1), 0)], [card(oct_(10))])
    assert row_of(s, "data").quantity == 0


@pytest.mark.parametrize(
    ("usage", "counts"),
    [
        ([UsageQuantity("line", oct_(1), 1)], {}),
        ([UsageQuantity("fax", oct_(1), 1)], {}),
        ([UsageQuantity("data", date(2026, 9, 30), 1)], {}),
        ([UsageQuantity("data", date(2026, 11, 1), 1)], {}),
        ([UsageQuantity("data", datetime(2026, 10, 1, tzinfo=UTC), 1)], {}),
        ([UsageQuantity("data", oct_(1), -1)], {}),
        ([UsageQuantity("data", oct_(1), True)], {}),
        ([UsageQuantity("data", oct_(1), 1.0)], {}),
        ([], {"lines": -1}),
        ([], {"numbers": 2.5}),
        ([], {"lines": False}),
    ],
)
def test_impossible_quantities_are_programmer_errors(usage, counts):
    with pytest.raises(ValueError):
        settle_oct(usage, **counts)


# -- example and files -------------------------------------------------------------------


def example_card() -> Card:
    """HOSTA's rate card of the example catalog."""
    catalog = tomllib.loads((FIXTURES / "catalog.toml").read_text(encoding="utf-8"))
    (entry,) = [c for c in catalog["rate_cards"] if c["host"] == "HOSTA"]
    prices = {s: parse_micro(entry[PRICE_UNITS[s][0]]) for s in SERVICES}
    retail = {s: parse_micro(entry["host_best_retail"][PRICE_UNITS[s][0]]) for s in SERVICES}
    return Card(date.fromisoformat(entry["effective_from"]), prices, retail)


def example_usage(zone: str = "Asia/Shanghai") -> list[UsageQuantity]:
    """The example CDRs summed by service and local day."""
    totals: dict[tuple[str, date], int] = defaultdict(int)
    start, end = month_bounds(OCT, zone)
    with open(FIXTURES / "cdr.csv", encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            at = datetime.fromisoformat(record["start_time"])
            assert start <= at < end
            totals[(record["service"], at.astimezone(ZoneInfo(zone)).date())] += int(
                record["quantity"]
            )
    return [UsageQuantity(service, day, q) for (service, day), q in sorted(totals.items())]


def example_settlement() -> Settlement:
    return settle_oct(example_usage(), [example_card()], lines=2, numbers=10_000)


def test_the_example_cdrs_reproduce_the_example_invoice():
    invoice = (FIXTURES / "host_invoice.csv").read_text(encoding="utf-8").splitlines()
    ours = settlement_csv(example_settlement()).splitlines()
    assert ours[0] == invoice[0] + ",compliant"
    assert ours[1:] == [line + ",true" for line in invoice[1:]]
    assert example_settlement().total_minor == 100_259


def test_the_settlement_json_has_its_keys_in_order():
    document = json.loads(settlement_json(example_settlement()))
    assert list(document) == ["host", "period", "currency", "rows", "total", "total_minor"]
    assert list(document["rows"][0]) == [
        "service",
        "unit",
        "quantity",
        "unit_price",
        "amount",
        "amount_minor",
        "compliant",
    ]
    assert document["rows"][0] == {
        "service": "data",
        "unit": "bytes",
        "quantity": 53_477_376,
        "unit_price": "0.0025",
        "amount": "0.13",
        "amount_minor": 13,
        "compliant": True,
    }
    assert (document["total"], document["total_minor"]) == ("1002.59", 100_259)


def test_files_are_byte_identical_for_equal_settlements():
    first, second = example_settlement(), example_settlement()
    assert first == second and first is not second
    assert settlement_csv(first) == settlement_csv(second)
    assert settlement_json(first) == settlement_json(second)
    assert "\r" not in settlement_csv(first)
    assert settlement_json(first).endswith("}\n")


def test_write_settlement_writes_both_files_and_rewrites_them_identically(tmp_path):
    out = tmp_path / "out"
    paths = write_settlement(example_settlement(), out)
    assert [p.name for p in paths] == [
        "settlement_HOSTA_2026-10.csv",
        "settlement_HOSTA_2026-10.json",
    ]
    before = [p.read_bytes() for p in paths]
    assert before == [
        settlement_csv(example_settlement()).encode(),
        settlement_json(example_settlement()).encode(),
    ]
    assert write_settlement(example_settlement(), out) == paths
    assert [p.read_bytes() for p in paths] == before
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in paths]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    paths = write_settlement(example_settlement(), tmp_path)
    before = paths[0].read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(settlement_module.os, "replace", broken_replace)
    changed = settle_oct([], [example_card()], lines=3)
    with pytest.raises(OSError, match="disk full"):
        write_settlement(changed, tmp_path)
    assert paths[0].read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)


@pytest.mark.parametrize("host", ["../HOSTA", "HOST/A", "hosta", ".", ""])
def test_a_host_code_that_is_not_a_plain_file_name_is_refused(tmp_path, host):
    s = Settlement(host=host, period=OCT, currency="CNY", rows=())
    with pytest.raises(InvalidInput):
        write_settlement(s, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("micro", "service", "text"),
    [
        (2_500, "data", "0.0025"),
        (40_000, "voice", "0.0400"),
        (15_000, "sms", "0.0150"),
        (0, "sms", "0.0000"),
        (1, "data", "0.000001"),
        (12_345, "sms", "0.012345"),
        (1_234_560, "voice", "1.23456"),
        (1_200_000, "line", "1.20"),
        (100_000, "number", "0.10"),
        (1_205_000, "line", "1.205"),
        (1_234_567, "line", "1.234567"),
        (0, "number", "0.00"),
        (12_000_000, "line", "12.00"),
    ],
)
def test_unit_prices_are_written_with_the_places_they_need(micro, service, text):
    assert format_unit_price(micro, service) == text
    assert parse_micro(text) == micro


# -- property: settle against a slow reference -------------------------------------------


def reference_amount(quantity: int, price_micro: int, service: str) -> int:
    per_price_unit = {"data": MB, "voice": 60}.get(service, 1)
    exact = Fraction(quantity * price_micro, per_price_unit * 10**6) * 100  # in fen
    with localcontext() as context:
        context.prec = 200
        value = Decimal(exact.numerator) / Decimal(exact.denominator)
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def reference_card(cards: list[Card], day: date) -> Card | None:
    candidates = [c for c in cards if c.effective_from <= day]
    return max(candidates, key=lambda c: c.effective_from) if candidates else None


def reference_rows(cards: list[Card], daily: dict[tuple[str, date], int], lines: int, numbers: int):
    first, last = oct_(1), oct_(31)
    rows = []
    for service in ("data", "voice", "sms"):
        groups: dict[tuple[int, bool], int] = {}
        for (s, day), quantity in sorted(daily.items(), key=lambda item: item[0][1]):
            if s == service and quantity:
                c = reference_card(cards, day)
                assert c is not None
                key = (c.price(service), c.compliant(service))
                groups[key] = groups.get(key, 0) + quantity
        if not groups:
            c = reference_card(cards, first) or min(cards, key=lambda c: c.effective_from)
            groups[(c.price(service), c.compliant(service))] = 0
        for (price, ok), quantity in groups.items():
            rows.append((service, quantity, price, reference_amount(quantity, price, service), ok))
    end = reference_card(cards, last)
    assert end is not None
    for service, count in (("line", lines), ("number", numbers)):
        price = end.price(service)
        rows.append(
            (service, count, price, reference_amount(count, price, service), end.compliant(service))
        )
    return rows


prices_micro = st.one_of(
    st.sampled_from([0, 1, 2_500, 5_000, 15_000, 40_000]), st.integers(0, 10**7)
)
cards_strategy = st.lists(
    st.builds(
        Card,
        st.dates(date(2026, 9, 1), date(2026, 10, 31)),
        st.fixed_dictionaries({s: prices_micro for s in SERVICES}),
        st.fixed_dictionaries({s: prices_micro for s in SERVICES}),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda c: c.effective_from,
)
daily_strategy = st.dictionaries(
    st.tuples(st.sampled_from(["data", "voice", "sms"]), st.dates(oct_(1), oct_(31))),
    st.one_of(st.integers(0, 100), st.integers(0, 10**12)),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    cards=cards_strategy,
    daily=daily_strategy,
    lines=st.integers(0, 10**6),
    numbers=st.integers(0, 10**7),
)
def test_settle_agrees_with_a_slow_reference(cards, daily, lines, numbers):
    usage = [UsageQuantity(service, day, q) for (service, day), q in daily.items()]
    needing_a_card = sorted({day for (_s, day), q in daily.items() if q} | {oct_(31)})
    uncovered = [day for day in needing_a_card if reference_card(cards, day) is None]
    if uncovered:
        with pytest.raises(NoRateCard) as caught:
            settle_oct(usage, cards, lines=lines, numbers=numbers)
        assert caught.value.params["day"] == uncovered[0].isoformat()
        return
    s = settle_oct(usage, cards, lines=lines, numbers=numbers)
    got = [(r.service, r.quantity, r.unit_price_micro, r.amount_minor, r.compliant) for r in s.rows]
    assert got == reference_rows(cards, daily, lines, numbers)
    assert s.total_minor == sum(row[3] for row in got)
