"""Margin and the monthly fee: named roundings, tested at their edges."""

from datetime import date

import pytest

from plans.errors import NoRateCard
from plans.models import Plan
from plans.pricing import (
    PlanMargin,
    margin_with_rate_card,
    micro_to_minor,
    monthly_fee_minor,
    plan_margin,
)
from tests.factories import NOW
from tests.unit.plans.helpers import make_plan
from tests.unit.wholesale.helpers import make_host, make_rate_card

ON = date(2026, 11, 1)


def test_margin_of_lite30_at_hosta_prices_is_2_70(session):
    host = make_host(session)
    card = make_rate_card(session, host=host)
    plan = make_plan(session, host_id=host.id)
    margin = plan_margin(session, plan=plan, on=ON)
    # data 10240 MB × 0.0025 + voice 200 min × 0.04 + sms 100 × 0.015 + line 1.20 = 36.30
    assert margin == PlanMargin(
        price_minor=3900,
        data_cost_minor=2560,
        voice_cost_minor=800,
        sms_cost_minor=150,
        line_fee_minor=120,
        margin_minor=270,
        rate_card_id=card.id,
    )
    assert margin.cost_minor == 3630


def test_margin_without_a_rate_card_on_that_date_cannot_be_computed(session):
    host = make_host(session)
    make_rate_card(session, host=host, effective_from=date(2027, 1, 1))
    plan = make_plan(session, host_id=host.id)
    with pytest.raises(NoRateCard) as info:
        plan_margin(session, plan=plan, on=ON)
    assert info.value.http_status == 409
    assert "LITE30" in info.value.message


def test_margin_uses_the_card_in_force_on_the_date(session):
    host = make_host(session)
    make_rate_card(session, host=host, effective_from=date(2026, 1, 1))
    make_rate_card(session, host=host, effective_from=date(2026, 12, 1), data=3_000)
    plan = make_plan(session, host_id=host.id)
    assert plan_margin(session, plan=plan, on=ON).data_cost_minor == 2560
    assert plan_margin(session, plan=plan, on=date(2026, 12, 1)).data_cost_minor == 3072


def card(**prices_micro: int) -> object:
    from wholesale.models import RateCard

    prices = {"data": 0, "voice": 0, "sms": 0, "line": 0, "number": 0, **prices_micro}
    columns = {
        "data_per_mb_micro": prices["data"],
        "voice_per_min_micro": prices["voice"],
        "sms_per_msg_micro": prices["sms"],
        "line_per_month_micro": prices["line"],
        "number_per_month_micro": prices["number"],
    }
    retail = {f"retail_{name}": 10**7 for name in columns}
    return RateCard(host_id=1, effective_from=ON, created_at=NOW, **columns, **retail)


def plan(**terms: int) -> Plan:
    values = {"price_minor": 0, "validity_days": 30, "data_mb": 0, "voice_min": 0, "sms": 0}
    return Plan(code="EDGE", host_id=1, created_at=NOW, **{**values, **terms})


@pytest.mark.parametrize(
    ("micro", "minor"),
    [(0, 0), (4_999, 0), (5_000, 1), (14_999, 1), (15_000, 2), (25_600_000, 2560)],
)
def test_micro_to_minor_rounds_half_up(micro, minor):
    assert micro_to_minor(micro) == minor


@pytest.mark.parametrize(
    ("data_mb", "price_micro", "cost_minor"),
    [
        (1, 4_999, 0),  # 0.004999 rounds down
        (1, 5_000, 1),  # exactly half a fen rounds up
        (3, 1_666, 0),  # 0.004998
        (3, 1_667, 1),  # 0.005001
        (10240, 2_500, 2560),
    ],
)
def test_each_allowance_cost_is_rounded_half_up_to_minor_units(data_mb, price_micro, cost_minor):
    margin = margin_with_rate_card(plan(data_mb=data_mb), card(data=price_micro))
    assert margin.data_cost_minor == cost_minor


def test_components_are_rounded_separately():
    # Each of data, voice and sms costs half a fen: each rounds up on its own.
    margin = margin_with_rate_card(
        plan(price_minor=100, data_mb=1, voice_min=1, sms=1),
        card(data=5_000, voice=5_000, sms=5_000),
    )
    assert (margin.data_cost_minor, margin.voice_cost_minor, margin.sms_cost_minor) == (1, 1, 1)
    assert margin.margin_minor == 97


@pytest.mark.parametrize(
    ("line_micro", "validity_days", "fee_minor"),
    [
        (1_200_000, 30, 120),
        (1_200_000, 31, 124),  # 1.24 exactly
        (1_200_000, 7, 28),  # 0.28 exactly
        (1_200_000, 365, 1460),
        (1_200_000, 730, 2920),
        (10_000, 15, 1),  # 0.005 exactly: half up
        # 0.0049995: one rounding keeps it below half a fen; rounding to micro-units
        # first would have made it 0.005 and then 1.
        (9_999, 15, 0),
        (1, 1, 0),
    ],
)
def test_the_line_fee_is_pro_rated_by_days_with_one_rounding(line_micro, validity_days, fee_minor):
    margin = margin_with_rate_card(plan(validity_days=validity_days), card(line=line_micro))
    assert margin.line_fee_minor == fee_minor


def test_the_number_price_is_not_part_of_the_margin():
    margin = margin_with_rate_card(plan(price_minor=500), card(number=1_000_000))
    assert margin.margin_minor == 500


@pytest.mark.parametrize(
    ("price_minor", "validity_days", "fee_minor"),
    [
        (3900, 30, 3900),
        (3900, 31, 3774),  # 3774.19…
        (3900, 29, 4034),  # 4034.48…
        (3900, 7, 16714),  # 16714.28…
        (100, 60, 50),
        (1, 60, 1),  # 0.5 exactly: half up
        (1, 61, 0),  # 0.49…
        (5, 12, 13),  # 12.5 exactly: half up
        (3900, 365, 321),  # 320.55…
        (36500, 730, 1500),
        (0, 30, 0),
    ],
)
def test_monthly_fee_is_price_times_30_over_validity_rounded_half_up(
    price_minor, validity_days, fee_minor
):
    assert monthly_fee_minor(plan(price_minor=price_minor, validity_days=validity_days)) == (
        fee_minor
    )
