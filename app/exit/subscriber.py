"""One subscriber's market exit, as their self-care page shows it (DESIGN §10, §12).

* While the exit is announced and its instant has not come, each of the
  customer's lines not ended can be chosen for (`open`); the page shows
  the latest choice and when and by whom it was made.
* The money is estimated with `owed.settle`, the arithmetic the execution
  uses, at the exit instant with today's balance and the choices made so
  far: refund = max(balance, 0) + unused value of the periods past the
  instant (counted once per currency, whatever the number of lines); under
  `EXIT_BALANCE_POLICY=carry` what a transferred line takes to the host is
  carried, not refunded. Renewals until the exit are paid from the balance,
  so the final refund may be lower than the estimate.
* Once the exit is executed, the lines and money are what the execution
  kept (`ExitLine`, `ExitCustomer`), read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from app.charging.unused_value import unused_periods
from app.exit.choices import choice_of_lines
from app.exit.models import ExitChoice, ExitCustomer, ExitLine, MarketExit
from app.exit.owed import CustomerOwed, live_lines, settle
from app.exit.schedule import current_exit
from app.ledger.balances import prepaid_balances


@dataclass(frozen=True)
class LineAtExit:
    """One of the customer's lines at the exit: its choice, or the execution's outcome."""

    line_id: int
    msisdn: str
    plan_code: str
    currency: str
    unused_minor: int
    choice: ExitChoice | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class MoneyAtExit:
    """The customer's money in one currency at the exit: estimated, or as executed."""

    currency: str
    balance_minor: int
    unused_minor: int
    refund_minor: int
    carried_minor: int
    written_off_minor: int


@dataclass
class SubscriberExit:
    """What the subscriber's exit page shows."""

    found: MarketExit | None
    open: bool = False
    executed: bool = False
    carry: bool = False
    lines: list[LineAtExit] = field(default_factory=list)
    money: list[MoneyAtExit] = field(default_factory=list)


def _money(owed: CustomerOwed) -> MoneyAtExit:
    return MoneyAtExit(
        currency=owed.currency,
        balance_minor=owed.balance_minor,
        unused_minor=owed.unused_minor,
        refund_minor=owed.refund_minor,
        carried_minor=owed.carried_minor,
        written_off_minor=owed.written_off_minor,
    )


def _estimate(
    session: Session, found: MarketExit, *, customer_id: int, carry: bool
) -> SubscriberExit:
    assert found.id is not None
    lines = live_lines(session, customer_ids=[customer_id])
    ids = [line.line_id for line in lines]
    choices = choice_of_lines(session, exit_id=found.id, line_ids=ids)
    unused: dict[int, int] = {}
    for period in unused_periods(session, at=found.exit_at, line_ids=ids) if ids else []:
        unused[period.line_id] = unused.get(period.line_id, 0) + period.value_minor
    for line in lines:
        line.unused_minor = unused.get(line.line_id, 0)
        chosen = choices.get(line.line_id)
        line.outcome = "transferred" if chosen and chosen.choice == "transfer" else "terminated"
    balances = prepaid_balances(session, customer_ids=[customer_id])
    breakdown = settle(lines, balances, carry=carry, at=found.exit_at)
    return SubscriberExit(
        found=found,
        carry=carry,
        lines=[
            LineAtExit(
                line_id=line.line_id,
                msisdn=line.msisdn,
                plan_code=line.plan_code,
                currency=line.currency,
                unused_minor=line.unused_minor,
                choice=choices.get(line.line_id),
            )
            for line in lines
        ],
        money=[_money(owed) for owed in breakdown.customers],
    )


def _executed(session: Session, found: MarketExit, *, customer_id: int) -> SubscriberExit:
    assert found.id is not None
    rows = list(
        session.exec(
            select(ExitLine)
            .where(ExitLine.exit_id == found.id, ExitLine.customer_id == customer_id)
            .order_by(col(ExitLine.line_id))
        )
    )
    choices = choice_of_lines(session, exit_id=found.id, line_ids=[r.line_id for r in rows])
    money = session.exec(
        select(ExitCustomer)
        .where(ExitCustomer.exit_id == found.id, ExitCustomer.customer_id == customer_id)
        .order_by(col(ExitCustomer.currency))
    )
    return SubscriberExit(
        found=found,
        executed=True,
        carry=found.balance_policy == "carry",
        lines=[
            LineAtExit(
                line_id=row.line_id,
                msisdn=row.msisdn,
                plan_code=row.plan_code,
                currency=row.currency,
                unused_minor=row.unused_minor,
                choice=choices.get(row.line_id),
                outcome=row.outcome,
            )
            for row in rows
        ],
        money=[
            MoneyAtExit(
                currency=m.currency,
                balance_minor=m.balance_minor,
                unused_minor=m.unused_minor,
                refund_minor=m.refund_minor,
                carried_minor=m.carried_minor,
                written_off_minor=m.written_off_minor,
            )
            for m in money
        ],
    )


def subscriber_exit(
    session: Session, *, customer_id: int | None, policy: str, now: datetime
) -> SubscriberExit:
    """The market exit as it concerns one customer's lines and money, at `now`.

    Reads only. No exit, or one not yet announced, gives `found=None`; a
    customer not yet created (`customer_id=None`) has no lines.
    `policy` is `EXIT_BALANCE_POLICY`, for the estimate before execution.
    """
    found = current_exit(session)
    if found is None or found.state == "draft":
        return SubscriberExit(found=None)
    if customer_id is None:
        return SubscriberExit(found=found, open=found.state == "announced" and now < found.exit_at)
    if found.state in ("executed", "completed"):
        return _executed(session, found, customer_id=customer_id)
    view = _estimate(session, found, customer_id=customer_id, carry=policy == "carry")
    view.open = now < found.exit_at
    return view
