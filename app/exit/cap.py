"""The prepayment cap once a market exit is announced (DESIGN §5, §12).

Rule: after the announcement a customer may prepay no more than its lines'
renewals between now and the exit instant will cost — each line renewing
from its period end on its next plan, the last period shortened at the
instant and pro-rated (`app.charging.horizon.renewal_terms_at`) — so
nothing is prepaid past the exit. A balance already above that figure was
prepaid lawfully before the announcement: it stays (it is refunded at the
exit) and takes no further credit, so the cap of such a customer is its
balance (never above the cap before the announcement). Registered with the
ledger by `handlers.py`; before an announcement it is the subscribers' cap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.charging.horizon import exit_horizon, renewal_terms_at
from app.ledger.accounts import in_chunks
from app.ledger.balances import prepaid_balances
from app.ledger.cap import CapTerms
from app.subscribers.cap import prepaid_caps
from app.subscribers.models import FINAL_LINE_STATUSES, Line
from plans.models import Plan


def renewal_costs_minor(
    session: Session, customer_ids: Collection[int], *, until: datetime
) -> dict[int, int]:
    """customer id → what its lines' renewals from their period ends until `until` cost."""
    costs: dict[int, int] = defaultdict(int)
    renewing = func.coalesce(col(Line.next_plan_id), col(Line.plan_id))
    for chunk in in_chunks(sorted(set(customer_ids))):
        rows = session.execute(
            sa_select(
                col(Line.customer_id),
                col(Line.period_end),
                col(Plan.price_minor),
                col(Plan.validity_days),
            )
            .join(Plan, col(Plan.id) == renewing)
            .where(col(Line.customer_id).in_(chunk))
            .where(col(Line.status).not_in(FINAL_LINE_STATUSES))
            .where(col(Line.period_end).is_not(None), col(Line.period_end) < until)
        )
        for customer_id, start, price, validity in rows:
            while (
                terms := renewal_terms_at(
                    price_minor=price, validity_days=validity, start=start, horizon=until
                )
            ) is not None:
                cost, start = terms
                costs[customer_id] += cost
    return dict(costs)


def exit_caps(session: Session, customer_ids: Collection[int], terms: CapTerms) -> dict[int, int]:
    """Each customer's cap: the subscribers' before an exit is announced, after it the rule above.

    A `app.ledger.cap.CapPolicy`; reads only.
    """
    caps = prepaid_caps(session, customer_ids, terms)
    horizon = exit_horizon(session)
    if horizon is None:
        return caps
    costs = renewal_costs_minor(session, customer_ids, until=horizon)
    held: dict[int, int] = defaultdict(int)
    for (customer_id, _currency), balance in prepaid_balances(
        session, customer_ids=list(customer_ids)
    ).items():
        held[customer_id] += max(balance, 0)
    return {
        customer_id: max(costs.get(customer_id, 0), min(held[customer_id], caps[customer_id]))
        for customer_id in customer_ids
    }
