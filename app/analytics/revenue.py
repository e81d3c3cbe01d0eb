"""Revenue per month by kind and per plan, against the wholesale cost, and the gross
margin (DESIGN §5, §7, §8).

Definitions, in one currency, months in `TIMEZONE`:

* **Revenue** of a month is what the ledger's revenue accounts received in
  it: the postings to `revenue_plans` and `revenue_usage`, by the time of
  their journal entry. It is split into
  - **plans**: plan sales posted to `revenue_plans` — the store order
    (`charge.revenue_plans`, key `order:<id>`: the plan's price and the
    number's golden surcharge) and renewals (`renewal`);
  - **add-ons**: the `revenue_plans` postings of add-on sales
    (`charge.revenue_plans`, key `addon:…`, tag `addon`);
  - **overage**: the `revenue_usage` postings (`charge.revenue_usage`,
    usage beyond the allowances).
  An entry that takes revenue back counts, negative, in its own month.
* **Wholesale cost** of a month is what the hosts are owed for it: per
  host, the total of its latest `export` settlement run of that month (the
  host's calendar month), added over the hosts of the currency. The
  current month is not settled yet: the caller may hand its cost computed
  now by the settlement arithmetic (`current_cost_minor`, source
  "computed"); a past month no run settled has no cost (None, "not
  settled yet").
* **Gross margin** = revenue − wholesale cost, when the cost is known.
* **Revenue per plan**: the plan sales alone (not add-ons, not overage) per
  plan code, all versions together; the plan is the one the entry's tag
  names (`plan:<CODE>`: the store order's plan, the renewed period's plan);
  revenue taken back with no plan named (an exit's refund of unused
  value) is "other".

Every figure reads `ledger_activity` (app/ledger/activity.py), the revenue
accounts' postings summed per quarter-hour and tag in the posting's own
transaction: a few rows per day however many customers post.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.analytics.calendar import (
    DEFAULT_MONTHS,
    Span,
    bucket_bounds,
    last_months,
    span_index,
    within,
)
from app.ledger.activity import ADDON_TAG, plan_of_tag
from app.ledger.models import LedgerAccount, LedgerActivity
from plans.models import Plan
from wholesale.models import HostCarrier, SettlementRun

PLANS_ACCOUNT = "revenue_plans"
USAGE_ACCOUNT = "revenue_usage"
SETTLED, COMPUTED = "settled", "computed"


@dataclass(frozen=True)
class RevenueMonth:
    """One month's revenue by kind and its wholesale cost (None: not settled yet)."""

    month: str
    plans_minor: int
    addons_minor: int
    overage_minor: int
    wholesale_cost_minor: int | None
    cost_source: str | None

    @property
    def revenue_minor(self) -> int:
        """Plans, add-ons and overage together."""
        return self.plans_minor + self.addons_minor + self.overage_minor

    @property
    def margin_minor(self) -> int | None:
        """Revenue − wholesale cost, or None while the cost is not known."""
        if self.wholesale_cost_minor is None:
            return None
        return self.revenue_minor - self.wholesale_cost_minor


@dataclass(frozen=True)
class PlanRevenue:
    """A plan's sales in one month (plan None: an entry no order or period names)."""

    month: str
    plan: str | None
    revenue_minor: int


def _revenue_activity(session: Session, currency: str, spans: list[Span]) -> Select[Any]:
    """The month index (`span`), account kind and tag of each `ledger_activity` row of
    a revenue account of `currency` in the spans, with its amount."""
    buckets = bucket_bounds(spans)
    bucket = col(LedgerActivity.bucket)
    return (
        sa_select(
            span_index(bucket, buckets, dialect=session.get_bind().dialect.name).label("span"),
            col(LedgerAccount.kind).label("kind"),
            col(LedgerActivity.tag).label("tag"),
            col(LedgerActivity.amount_minor).label("amount"),
        )
        .select_from(LedgerActivity)
        .join(LedgerAccount, col(LedgerAccount.id) == col(LedgerActivity.account_id))
        .where(
            col(LedgerAccount.kind).in_((PLANS_ACCOUNT, USAGE_ACCOUNT)),
            col(LedgerAccount.currency) == currency,
            col(LedgerAccount.customer_id).is_(None),
            within(bucket, buckets),
        )
    )


def revenue_by_kind(
    session: Session, *, spans: list[Span], currency: str
) -> list[tuple[int, int, int]]:
    """(plans, add-ons, overage) in minor units for each of the consecutive `spans`.

    Reads only: the revenue accounts' `ledger_activity`, a few rows per day.
    """
    inner = _revenue_activity(session, currency, spans).subquery()
    kind = case(
        (inner.c.kind == USAGE_ACCOUNT, 2),
        (inner.c.tag == ADDON_TAG, 1),
        else_=0,
    ).label("kind_index")
    rows = session.execute(
        sa_select(inner.c.span, kind, func.sum(inner.c.amount)).group_by(inner.c.span, kind)
    ).all()
    totals = [[0, 0, 0] for _ in spans]
    for span, kind_index, amount in rows:
        if span is not None:
            totals[int(span)][int(kind_index)] += int(amount or 0)
    return [(plans, addons, overage) for plans, addons, overage in totals]


def settled_wholesale_costs(
    session: Session, *, months: list[str], currency: str
) -> dict[str, int]:
    """Per month: the total of each host's latest `export` run of it, over the hosts
    of `currency`. Months no run settled are left out.

    Reads only.
    """
    if not months:
        return {}
    latest = (
        sa_select(func.max(col(SettlementRun.id)).label("id"))
        .join(HostCarrier, col(HostCarrier.id) == col(SettlementRun.host_id))
        .where(
            col(SettlementRun.kind) == "export",
            col(SettlementRun.month).in_(months),
            col(HostCarrier.currency) == currency,
        )
        .group_by(col(SettlementRun.host_id), col(SettlementRun.month))
        .subquery()
    )
    rows = session.execute(
        sa_select(col(SettlementRun.month), func.sum(col(SettlementRun.total_minor)))
        .join(latest, latest.c.id == col(SettlementRun.id))
        .group_by(col(SettlementRun.month))
    ).all()
    return {month: int(total or 0) for month, total in rows}


def monthly_revenue(
    session: Session,
    *,
    now: datetime,
    timezone: str,
    currency: str,
    months: int = DEFAULT_MONTHS,
    current_cost_minor: int | None = None,
    revenue: list[tuple[int, int, int]] | None = None,
) -> list[RevenueMonth]:
    """Revenue by kind, wholesale cost and margin for the last `months` months (the
    current one included, oldest first), in `currency`.

    `current_cost_minor` is the current month's wholesale cost computed by the
    caller (the month is not settled yet); None leaves it to a settled run, if any.
    `revenue` is `revenue_by_kind` of the same months when the caller has read it.
    Reads only. :raises InvalidInput: `months` outside 1 to 36 (field ``months``).
    """
    spans = last_months(now=now, timezone=timezone, months=months)
    if revenue is None:
        revenue = revenue_by_kind(session, spans=spans, currency=currency)
    settled = settled_wholesale_costs(
        session, months=[span.label for span in spans], currency=currency
    )
    out = []
    for index, (span, (plans, addons, overage)) in enumerate(zip(spans, revenue, strict=True)):
        cost, source = settled.get(span.label), SETTLED if span.label in settled else None
        if index == len(spans) - 1 and current_cost_minor is not None:
            cost, source = current_cost_minor, COMPUTED
        out.append(RevenueMonth(span.label, plans, addons, overage, cost, source))
    return out


def revenue_per_plan(
    session: Session,
    *,
    now: datetime,
    timezone: str,
    currency: str,
    months: int = DEFAULT_MONTHS,
) -> list[PlanRevenue]:
    """Plan sales per month and plan code for the last `months` months, oldest first,
    plans by code within a month; months and plans with no sales are left out.

    Reads only. :raises InvalidInput: `months` outside 1 to 36 (field ``months``).
    """
    spans = last_months(now=now, timezone=timezone, months=months)
    inner = _revenue_activity(session, currency, spans).subquery()
    rows = session.execute(
        sa_select(inner.c.span, inner.c.tag, func.sum(inner.c.amount))
        .where(inner.c.kind == PLANS_ACCOUNT, inner.c.tag != ADDON_TAG)
        .group_by(inner.c.span, inner.c.tag)
    ).all()
    totals: dict[tuple[int, str | None], int] = defaultdict(int)
    for span, tag, amount in rows:
        if span is not None:
            totals[(int(span), plan_of_tag(tag))] += int(amount or 0)
    return [
        PlanRevenue(spans[span].label, code, amount)
        for (span, code), amount in sorted(
            totals.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        )
        if amount
    ]


def plan_names(session: Session, codes: list[str]) -> dict[str, dict[str, str]]:
    """Each plan code's names by locale, from its newest version."""
    if not codes:
        return {}
    newest = (
        sa_select(func.max(col(Plan.id)).label("id"))
        .where(col(Plan.code).in_(codes))
        .group_by(col(Plan.code))
        .subquery()
    )
    rows = session.execute(
        sa_select(col(Plan.code), col(Plan.names)).join(newest, newest.c.id == col(Plan.id))
    ).all()
    return {code: dict(names or {}) for code, names in rows}
