"""What `mvno line show` tells about a line (DESIGN §13).

The period shown is the one containing `now` — or the latest period when
none does (a suspended line after its last period, a line whose first
period starts later) — and, when `at` is given, the one containing `at`
(none when no period does: the line did not run then). Remaining allowances
are the shown period's, in billable units; the balance is the customer's
current prepaid balance (the ledger holds money per customer, not per
line); the plan is the shown period's plan, else the line's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.charging.models import LinePeriod
from app.charging.periods import period_at, period_for_display
from app.ledger.balances import customer_balance
from app.subscribers.services import get_line_by_msisdn
from plans.models import Plan


@dataclass(frozen=True)
class LineSummary:
    msisdn: str
    status: str
    plan: str
    period_start: datetime | None
    period_end: datetime | None
    data_kb: int | None
    voice_s: int | None
    sms: int | None
    balance_minor: int


def line_summary(
    session: Session, *, msisdn: str, now: datetime, at: datetime | None = None
) -> LineSummary:
    """The line of `msisdn` with the period in force at `now` (or at `at`).

    :raises LineNotFound: no line has this number.
    """
    line = get_line_by_msisdn(session, msisdn.strip())
    assert line.id is not None
    period: LinePeriod | None
    if at is None:
        period = period_for_display(session, line_id=line.id, at=now)
    else:
        period = period_at(session, line_id=line.id, at=at)
    plan = session.get(Plan, period.plan_id if period is not None else line.plan_id)
    assert plan is not None
    return LineSummary(
        msisdn=line.msisdn,
        status=line.status,
        plan=plan.code,
        period_start=period.start if period else None,
        period_end=period.end if period else None,
        data_kb=period.data_kb_left if period else None,
        voice_s=period.voice_s_left if period else None,
        sms=period.sms_left if period else None,
        balance_minor=customer_balance(session, customer_id=line.customer_id),
    )
