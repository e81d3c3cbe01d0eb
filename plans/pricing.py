"""A plan's margin against wholesale prices, and its monthly fee (DESIGN §8, §5).

* Margin = price − wholesale cost of the full allowances of one period −
  line fee, against the host's rate card in force (`plan_margin`).
* Money: plan amounts are minor units; rate card prices micro-units. Each
  cost component is computed exactly in micro-units and converted once,
  round-half-up (`micro_to_minor`); the line fee is pro-rated by days over a
  30-day month inside that one rounding.
* The §5 prepaid cap uses `monthly_fee_minor` = round_half_up(price × 30 /
  validity_days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from app.core.errors import N_
from app.core.money import round_half_up
from plans.errors import NoRateCard
from plans.models import Plan
from wholesale.models import RateCard
from wholesale.services import get_host, rate_card_on

MICRO_PER_MINOR = 10_000
DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class PlanMargin:
    """One period of a plan against the wholesale prices of `rate_card_id`, in minor units."""

    price_minor: int
    data_cost_minor: int
    voice_cost_minor: int
    sms_cost_minor: int
    line_fee_minor: int
    margin_minor: int
    rate_card_id: int | None

    @property
    def cost_minor(self) -> int:
        """The four cost components together."""
        return (
            self.data_cost_minor + self.voice_cost_minor + self.sms_cost_minor + self.line_fee_minor
        )


def micro_to_minor(amount_micro: int) -> int:
    """Micro-units to minor units, round-half-up (10,000 micro-units to the fen/cent)."""
    return round_half_up(amount_micro, MICRO_PER_MINOR)


def margin_with_rate_card(plan: Plan, card: RateCard) -> PlanMargin:
    """The margin of one period of `plan` at the prices of `card`. Pure.

    Each component is the exact micro-unit cost of the full allowance,
    rounded half-up to minor units on its own; the line fee is the monthly
    line price pro-rated by days, ``line × validity_days / 30``, inside that
    one rounding. Margin = price − the four rounded components.
    """
    data_cost = micro_to_minor(plan.data_mb * card.price("data"))
    voice_cost = micro_to_minor(plan.voice_min * card.price("voice"))
    sms_cost = micro_to_minor(plan.sms * card.price("sms"))
    line_fee = round_half_up(
        card.price("line") * plan.validity_days, DAYS_PER_MONTH * MICRO_PER_MINOR
    )
    return PlanMargin(
        price_minor=plan.price_minor,
        data_cost_minor=data_cost,
        voice_cost_minor=voice_cost,
        sms_cost_minor=sms_cost,
        line_fee_minor=line_fee,
        margin_minor=plan.price_minor - data_cost - voice_cost - sms_cost - line_fee,
        rate_card_id=card.id,
    )


def plan_margin(session: Session, *, plan: Plan, on: date) -> PlanMargin:
    """The margin of one period of `plan` at the host's rate card in force on `on`.

    :raises NoRateCard: the host has no card in force that day.
    """
    card = rate_card_on(session, host_id=plan.host_id, on=on)
    if card is None:
        host = get_host(session, plan.host_id)
        raise NoRateCard(
            N_(
                "Host %(host)s has no rate card in force on %(date)s, so the margin of "
                "plan %(plan)s cannot be computed. Add a rate card first."
            ),
            host=host.code,
            date=on.isoformat(),
            plan=plan.code,
        )
    return margin_with_rate_card(plan, card)


def monthly_fee_minor(plan: Plan) -> int:
    """A plan's fee for 30 days, round-half-up: price × 30 / validity_days (the §5 cap)."""
    return monthly_fee_of(plan.price_minor, plan.validity_days)


def monthly_fee_of(price_minor: int, validity_days: int) -> int:
    """`monthly_fee_minor` from a plan's price and validity."""
    return round_half_up(price_minor * DAYS_PER_MONTH, validity_days)
