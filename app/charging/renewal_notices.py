"""The notices of renewals (outbox rows; one per period through their dedupe keys).

Kinds and data (the mail templates read them):

* `renewal`: msisdn, plan, amount_minor, currency, period_start, period_end,
  periods (the latest period renewed in a run; key `renewal:<line>:<start>`);
* `low_balance`: msisdn, balance_minor, currency, next_renewal_minor,
  period_end, after a renewal when the balance will not cover the next one
  (key `low_balance:<line>:<end>`);
* `suspension` (renewal unpaid) and `renewal_failed` (unpaid while already
  suspended by staff): msisdn, plan, amount_minor, currency, balance_minor,
  reason (`insufficient_balance` | `auto_renew_off`), key
  `<kind>:<line>:<old period end>`;
* `resumed` and `termination`: msisdn.

A batch writes its notices with one multi-row statement (`write_notices`);
one line at a time goes through the notification outbox (`notify`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session

from app.auth.models import SubscriberAccount
from app.charging.renewal_terms import DueLine, PlanTerms, utc_iso
from app.core.db import insert_rows
from app.notifications.models import Notification
from app.subscribers.models import Customer
from app.subscribers.notices import notify_customer

# (customer id, kind, data, dedupe key)
Notice = tuple[int, str, dict[str, Any], str]

_NOTICE = Notification.__table__  # type: ignore[attr-defined]
_CUSTOMER = Customer.__table__  # type: ignore[attr-defined]
_SUBSCRIBER = SubscriberAccount.__table__  # type: ignore[attr-defined]
_CUSTOMERS = (
    sa_select(
        _CUSTOMER.c.id,
        _CUSTOMER.c.email,
        _CUSTOMER.c.subscriber_account_id,
        func.coalesce(_SUBSCRIBER.c.locale, "zh_Hans").label("locale"),
    )
    .select_from(
        _CUSTOMER.outerjoin(_SUBSCRIBER, _SUBSCRIBER.c.id == _CUSTOMER.c.subscriber_account_id)
    )
    .where(_CUSTOMER.c.id.in_(bindparam("ids", expanding=True)))
)


def renewal_notice(
    customer_id: int,
    *,
    line_id: int,
    msisdn: str,
    plan: PlanTerms,
    start: datetime,
    end: datetime,
    periods: int,
    amount_minor: int | None = None,
) -> Notice:
    """The `renewal` notice of the latest period (`start` → `end`) of `periods` renewed;
    `amount_minor` is what it cost (the plan's price unless shortened at an exit)."""
    return (
        customer_id,
        "renewal",
        {
            "msisdn": msisdn,
            "plan": plan.code,
            "amount_minor": plan.price_minor if amount_minor is None else amount_minor,
            "currency": plan.currency,
            "period_start": utc_iso(start),
            "period_end": utc_iso(end),
            "periods": periods,
        },
        f"renewal:{line_id}:{utc_iso(start)}",
    )


def low_balance_notice(
    customer_id: int,
    *,
    line_id: int,
    msisdn: str,
    following: PlanTerms,
    balance_minor: int,
    period_end: datetime,
) -> Notice:
    """The `low_balance` notice: `balance_minor` will not pay the period on `following`."""
    return (
        customer_id,
        "low_balance",
        {
            "msisdn": msisdn,
            "balance_minor": balance_minor,
            "currency": following.currency,
            "next_renewal_minor": following.price_minor,
            "period_end": utc_iso(period_end),
        },
        f"low_balance:{line_id}:{utc_iso(period_end)}",
    )


def unpaid_notice(
    line: DueLine, *, plan: PlanTerms, balance_minor: int, suspended_now: bool
) -> Notice:
    """`suspension` (the renewal suspended the line) or `renewal_failed` (it already was)."""
    kind = "suspension" if suspended_now else "renewal_failed"
    data = {
        "msisdn": line.msisdn,
        "plan": plan.code,
        "amount_minor": plan.price_minor,
        "currency": plan.currency,
        "balance_minor": balance_minor,
        "reason": "insufficient_balance" if line.auto_renew else "auto_renew_off",
    }
    return (line.customer_id, kind, data, f"{kind}:{line.id}:{utc_iso(line.end)}")


def renewal_notices(
    renewed: list[DueLine],
    *,
    account_of: dict[tuple[int, str], int],
    balances: dict[int, int],
    terms: dict[int, PlanTerms],
) -> list[Notice]:
    """The latest renewal of each line of a batch, and a low-balance notice when the
    balance after the batch will not cover the next one."""
    notices: list[Notice] = []
    for line in renewed:
        last = line.periods[-1]
        notices.append(
            renewal_notice(
                line.customer_id,
                line_id=line.id,
                msisdn=line.msisdn,
                plan=last["plan"],
                start=last["start"],
                end=last["end"],
                periods=len(line.periods),
                amount_minor=last["price_minor"],
            )
        )
        following = terms[line.plan_id]
        balance = balances[account_of[(line.customer_id, following.currency)]]
        if balance < following.price_minor:
            notices.append(
                low_balance_notice(
                    line.customer_id,
                    line_id=line.id,
                    msisdn=line.msisdn,
                    following=following,
                    balance_minor=balance,
                    period_end=last["end"],
                )
            )
    return notices


def write_notices(session: Session, notices: list[Notice], *, now: datetime) -> None:
    """Insert notices to customers with an e-mail, one row per dedupe key, in one statement."""
    if not notices:
        return
    connection = session.connection()
    customers = {
        row.id: row
        for row in connection.execute(
            _CUSTOMERS, {"ids": sorted({customer for customer, *_ in notices})}
        )
    }
    rows = [
        {
            "customer_id": customer_id,
            "account_id": customers[customer_id].subscriber_account_id,
            "channel": "email",
            "recipient": customers[customer_id].email,
            "kind": kind,
            "locale": customers[customer_id].locale,
            "data": data,
            "subject": "",
            "body": "",
            "dedupe_key": key,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
        }
        for customer_id, kind, data, key in notices
        if customers[customer_id].email
    ]
    insert_rows(session, _NOTICE, rows, dedupe="dedupe_key")


def notify(session: Session, notice: Notice, *, now: datetime) -> None:
    """Queue one notice through the notification outbox, in the customer's locale.

    Nothing for a customer that does not exist; deduplicated by the notice's key.
    """
    customer_id, kind, data, key = notice
    customer = session.get(Customer, customer_id)
    if customer is None:
        return
    account = (
        session.get(SubscriberAccount, customer.subscriber_account_id)
        if customer.subscriber_account_id is not None
        else None
    )
    notify_customer(
        session,
        customer,
        kind=kind,
        now=now,
        data=data,
        dedupe_key=key,
        locale=account.locale if account is not None else "zh_Hans",
    )
