"""The prepayment cap of a customer's lines (DESIGN §5), the policy the ledger enforces.

Rule: cap = months × monthly fee, where the monthly fee is the sum over the
customer's lines that are not final (terminated, transferred, ported out)
of `round_half_up(plan price × 30 / validity_days)` (`plans.services.
monthly_fee_of`), or the reference monthly fee when the customer has no
such line. The months and the reference fee are the caller's `CapTerms`
(the settings, or a MoneyPolicy). Registered with the ledger by
`app/subscribers/handlers.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlmodel import Session, col, select

from app.ledger.cap import CapTerms
from app.subscribers.models import FINAL_LINE_STATUSES, Line
from plans.models import Plan
from plans.pricing import monthly_fee_of

# Customer ids per query: well inside SQLite's and PostgreSQL's parameter limits.
_CHUNK = 5000


def monthly_fees_minor(session: Session, customer_ids: Collection[int]) -> dict[int, int]:
    """customer id → the monthly fees of its lines that are not final (absent: no such line)."""
    wanted = sorted(set(customer_ids))
    fees: dict[int, int] = defaultdict(int)
    for start in range(0, len(wanted), _CHUNK):
        live = session.exec(
            select(Line.customer_id, Plan.price_minor, Plan.validity_days)
            .join(Plan, col(Plan.id) == col(Line.plan_id))
            .where(col(Line.customer_id).in_(wanted[start : start + _CHUNK]))
            .where(col(Line.status).not_in(FINAL_LINE_STATUSES))
        )
        for customer_id, price_minor, validity_days in live:
            fees[customer_id] += monthly_fee_of(price_minor, validity_days)
    return dict(fees)


def prepaid_caps(
    session: Session, customer_ids: Collection[int], terms: CapTerms
) -> dict[int, int]:
    """Each customer's cap in minor units: months × its lines' monthly fees (or the reference).

    A `app.ledger.cap.CapPolicy`; reads only.
    """
    fees = monthly_fees_minor(session, customer_ids)
    return {
        customer_id: terms.months * fees.get(customer_id, terms.reference_monthly_minor)
        for customer_id in customer_ids
    }
