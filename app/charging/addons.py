"""Add-ons (data packs) bought for the current period of a line (DESIGN §8, §9).

Rules:

* Only a published add-on is for sale, only for an *active* line, and only
  into the period that contains `now` (a pack is used up in the period it
  is bought in; it never carries over).
* Buying debits the add-on's price from the customer's prepaid balance as
  plan revenue (`charge_customer`, `revenue_plans`) and adds `data_mb ×
  1024` KB to the period's `data_kb`, recording a `PeriodAddOn` that points
  at the journal entry — all in the caller's transaction, with an audit
  record.
* Idempotent per key: the ledger key is `addon:<line id>:<key>`; the same
  key again returns the first purchase and charges nothing (a double
  submit of one form). The same key for another add-on is a conflict.
* Locks the line, then the period (usage rating writes the same counters),
  so two purchases for one line are serialised and the second sees the
  first.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from app.charging.models import LinePeriod, PeriodAddOn
from app.charging.periods import period_at
from app.core.audit import Actor, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_, Conflict, InvalidInput, NotFound
from app.core.money import format_plain
from app.ledger.activity import ADDON_TAG
from app.ledger.balances import customer_balance
from app.ledger.errors import IdempotencyConflict, InsufficientBalance
from app.ledger.movements import charge_customer
from app.ledger.posting import find_entry
from app.subscribers.errors import LineNotFound
from app.subscribers.models import Line
from plans.models import AddOn

__all__ = [
    "AddOnNotAllowed",
    "AddOnNotOnSale",
    "NoCurrentPeriod",
    "addons_for_sale",
    "buy_addon",
    "get_addon_by_code",
    "period_addons",
]

MAX_KEY_LENGTH = 100


class AddOnNotOnSale(NotFound):
    code = "addon_not_on_sale"


class AddOnNotAllowed(Conflict):
    """The line may not get an add-on now (its status)."""

    code = "addon_not_allowed"


class NoCurrentPeriod(Conflict):
    code = "no_current_period"


def addons_for_sale(session: Session) -> list[AddOn]:
    """Published add-ons, by code."""
    return list(
        session.exec(select(AddOn).where(AddOn.status == "published").order_by(col(AddOn.code)))
    )


def get_addon_by_code(session: Session, code: str) -> AddOn:
    """The add-on with this code, whatever its status (`buy_addon` checks that it is on sale).

    Reads only.
    :raises AddOnNotOnSale: no add-on has this code.
    """
    addon = session.exec(select(AddOn).where(AddOn.code == code)).first()
    if addon is None or addon.id is None:
        raise AddOnNotOnSale(N_("No add-on on sale with code %(code)s."), field="addon", code=code)
    return addon


def period_addons(session: Session, *, period_id: int) -> list[PeriodAddOn]:
    """The add-ons bought for one period, oldest first."""
    return list(
        session.exec(
            select(PeriodAddOn)
            .where(PeriodAddOn.period_id == period_id)
            .order_by(col(PeriodAddOn.id))
        )
    )


def _check_key(key: str) -> str:
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH or any(ord(ch) < 33 or ord(ch) > 126 for ch in key):
        raise InvalidInput(
            N_("An idempotency key of 1 to %(max)s printable characters is required."),
            field="key",
            max=MAX_KEY_LENGTH,
        )
    return key


def _replayed(session: Session, ledger_key: str, addon_id: int) -> PeriodAddOn | None:
    """The purchase already made under this key, if any."""
    entry = find_entry(session, ledger_key)
    if entry is None:
        return None
    bought = session.exec(select(PeriodAddOn).where(PeriodAddOn.entry_id == entry.id)).first()
    if bought is None or bought.addon_id != addon_id:
        raise IdempotencyConflict(
            N_("The key %(key)s was already used for a different ledger entry."),
            field="key",
            key=ledger_key,
        )
    return bought


def _saleable(
    session: Session, line: Line, *, addon_id: int, now: datetime
) -> tuple[AddOn, LinePeriod]:
    """The add-on on sale and the line's current period (locked), when the balance covers it.

    :raises AddOnNotOnSale, AddOnNotAllowed, NoCurrentPeriod, InsufficientBalance: as `buy_addon`.
    """
    addon = session.get(AddOn, addon_id)
    if addon is None or addon.status != "published" or addon.price_minor <= 0:
        raise AddOnNotOnSale(N_("No add-on on sale with id %(id)s."), field="addon", id=addon_id)
    if line.status != "active":
        raise AddOnNotAllowed(
            N_("Add-ons can be bought only for an active line; line %(msisdn)s is not active."),
            field="line",
            msisdn=line.msisdn,
        )
    assert line.id is not None
    current = period_at(session, line_id=line.id, at=now)
    if current is None or current.id is None:
        raise NoCurrentPeriod(
            N_("Line %(msisdn)s has no current period to add data to."),
            field="line",
            msisdn=line.msisdn,
        )
    period = lock_by_id(session, LinePeriod, current.id)
    assert period is not None and period.id is not None
    balance = customer_balance(session, customer_id=line.customer_id)
    if balance < addon.price_minor:
        raise InsufficientBalance(
            N_("Your balance %(balance)s does not cover %(price)s. Top up first."),
            field="addon",
            balance=format_plain(balance),
            price=format_plain(addon.price_minor),
        )
    return addon, period


def buy_addon(
    session: Session, *, line_id: int, addon_id: int, key: str, actor: Actor, now: datetime
) -> PeriodAddOn:
    """Buy a published add-on for the line's current period, paid from the prepaid balance.

    Locks the line and the period. Idempotent per `key`.
    :raises LineNotFound: no such line.
    :raises AddOnNotOnSale: the add-on does not exist, is not published or has no price.
    :raises AddOnNotAllowed: the line is not active.
    :raises NoCurrentPeriod: no period of the line contains `now`.
    :raises InsufficientBalance: the balance does not cover the price.
    :raises IdempotencyConflict: the key was used for something else.
    """
    key = _check_key(key)
    line = lock_by_id(session, Line, line_id)
    if line is None:
        raise LineNotFound(N_("No line %(id)s."), id=line_id)
    ledger_key = f"addon:{line_id}:{key}"
    replay = _replayed(session, ledger_key, addon_id)
    if replay is not None:
        return replay
    addon, period = _saleable(session, line, addon_id=addon_id, now=now)
    assert period.id is not None
    entry = charge_customer(
        session,
        customer_id=line.customer_id,
        amount_minor=addon.price_minor,
        revenue_kind="revenue_plans",
        idempotency_key=ledger_key,
        actor=actor,
        now=now,
        currency=addon.currency,
        memo=f"add-on {addon.code} for {line.msisdn}",
        tag=ADDON_TAG,
    )
    assert entry.id is not None and addon.id is not None
    data_kb = addon.data_mb * 1024
    period.data_kb += data_kb
    session.add(period)
    bought = PeriodAddOn(
        period_id=period.id,
        addon_id=addon.id,
        data_kb=data_kb,
        price_minor=addon.price_minor,
        entry_id=entry.id,
        created_at=now,
    )
    session.add(bought)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="line.addon",
        now=now,
        target_type="line",
        target_id=line_id,
        details={
            "msisdn": line.msisdn,
            "addon": addon.code,
            "period_id": period.id,
            "data_kb": data_kb,
            "price_minor": addon.price_minor,
            "currency": addon.currency,
            "entry_id": entry.id,
        },
    )
    return bought
