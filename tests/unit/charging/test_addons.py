"""Buying add-ons: the debit, the allowance, idempotency, and every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from app.charging.addons import (
    AddOnNotAllowed,
    AddOnNotOnSale,
    NoCurrentPeriod,
    addons_for_sale,
    buy_addon,
    get_addon_by_code,
)
from app.charging.models import LinePeriod, PeriodAddOn
from app.charging.periods import open_period
from app.core.audit import Actor, AuditEntry
from app.core.errors import InvalidInput
from app.ledger.accounts import system_balance
from app.ledger.balances import customer_balance
from app.ledger.errors import IdempotencyConflict, InsufficientBalance
from app.ledger.models import JournalEntry
from app.subscribers.errors import LineNotFound
from app.subscribers.models import Line
from plans.addons import upsert_addon
from plans.models import AddOn
from tests.factories import NOW
from tests.unit.charging.helpers import fund
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world

SOON = NOW + timedelta(hours=2)
SUBSCRIBER = Actor("subscriber", 7, "sub@example.com")


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="ADDH")


def _addon(
    session: Session,
    *,
    code: str = "DATA5G",
    price: int = 1500,
    mb: int = 5120,
    status: str = "published",
) -> AddOn:
    return upsert_addon(
        session,
        code=code,
        names={"zh_Hans": "5GB 流量包", "en": "5 GB pack"},
        price_minor=price,
        data_mb=mb,
        status=status,
        actor=STAFF,
        now=NOW,
    )


def _line_with_period(
    session: Session, world: World, *, status: str = "active"
) -> tuple[Line, LinePeriod]:
    line = make_line(session, world, status=status)
    period = open_period(session, line=line, plan=world.plan, start=NOW, now=NOW)
    return line, period


def _balance(session: Session, world: World) -> int:
    assert world.customer.id is not None
    return customer_balance(session, customer_id=world.customer.id)


def _buy(session: Session, line: Line, addon: AddOn, key: str = "k" * 22, now=SOON) -> PeriodAddOn:
    assert line.id is not None and addon.id is not None
    return buy_addon(
        session, line_id=line.id, addon_id=addon.id, key=key, actor=SUBSCRIBER, now=now
    )


def test_buying_debits_the_price_and_adds_the_data_to_the_current_period(session, world) -> None:
    line, period = _line_with_period(session, world)
    addon = _addon(session)
    fund(session, world, 2000)
    before_kb = period.data_kb

    bought = _buy(session, line, addon)

    session.refresh(period)
    assert period.data_kb == before_kb + 5120 * 1024
    assert bought.period_id == period.id and bought.data_kb == 5120 * 1024
    assert bought.price_minor == 1500
    assert _balance(session, world) == 500
    entry = session.get(JournalEntry, bought.entry_id)
    assert entry is not None and entry.kind == "charge.revenue_plans"
    assert system_balance(session, kind="revenue_plans", currency="CNY") == 1500
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "line.addon")).one()
    assert audit.details["addon"] == "DATA5G" and audit.details["price_minor"] == 1500
    assert audit.actor_kind == "subscriber"


def test_the_same_key_twice_charges_once(session, world) -> None:
    line, period = _line_with_period(session, world)
    addon = _addon(session)
    fund(session, world, 5000)

    first = _buy(session, line, addon, key="double-submit-token-1")
    again = _buy(session, line, addon, key="double-submit-token-1")

    assert again.id == first.id
    assert _balance(session, world) == 3500
    session.refresh(period)
    assert period.data_kb == world.plan.data_mb * 1024 + 5120 * 1024
    assert session.exec(select(func.count()).select_from(PeriodAddOn)).one() == 1
    # A new key is a new purchase.
    _buy(session, line, addon, key="double-submit-token-2")
    assert _balance(session, world) == 2000


def test_the_same_key_for_another_addon_is_a_conflict(session, world) -> None:
    line, _period = _line_with_period(session, world)
    first = _addon(session)
    other = _addon(session, code="DATA1G", price=1500, mb=1024)
    fund(session, world, 5000)
    _buy(session, line, first, key="same-key-0000000000")
    with pytest.raises(IdempotencyConflict):
        _buy(session, line, other, key="same-key-0000000000")
    assert _balance(session, world) == 3500


def test_a_balance_that_does_not_cover_the_price_is_refused_and_nothing_changes(
    session, world
) -> None:
    line, period = _line_with_period(session, world)
    addon = _addon(session, price=1500)
    fund(session, world, 1499)
    with pytest.raises(InsufficientBalance) as refused:
        _buy(session, line, addon)
    assert "Top up" in refused.value.message
    session.refresh(period)
    assert period.data_kb == world.plan.data_mb * 1024
    assert _balance(session, world) == 1499
    assert session.exec(select(func.count()).select_from(PeriodAddOn)).one() == 0


def test_exactly_enough_balance_is_accepted(session, world) -> None:
    line, _period = _line_with_period(session, world)
    addon = _addon(session, price=1500)
    fund(session, world, 1500)
    _buy(session, line, addon)
    assert _balance(session, world) == 0


@pytest.mark.parametrize("status", ["suspended", "pending", "terminated"])
def test_only_an_active_line_gets_an_addon(session, world, status) -> None:
    line, _period = _line_with_period(session, world, status=status)
    addon = _addon(session)
    fund(session, world, 5000)
    with pytest.raises(AddOnNotAllowed):
        _buy(session, line, addon)
    assert _balance(session, world) == 5000


def test_no_current_period_is_refused(session, world) -> None:
    line, period = _line_with_period(session, world)
    addon = _addon(session)
    fund(session, world, 5000)
    with pytest.raises(NoCurrentPeriod):
        _buy(session, line, addon, now=period.end)  # the end is outside the period
    with pytest.raises(NoCurrentPeriod):
        _buy(session, line, addon, now=NOW - timedelta(seconds=1))
    bare = make_line(session, world)
    with pytest.raises(NoCurrentPeriod):
        _buy(session, bare, addon)
    assert _balance(session, world) == 5000


def test_the_last_second_of_a_period_still_counts(session, world) -> None:
    line, period = _line_with_period(session, world)
    addon = _addon(session)
    fund(session, world, 5000)
    bought = _buy(session, line, addon, now=period.end - timedelta(seconds=1))
    assert bought.period_id == period.id


@pytest.mark.parametrize("status", ["draft", "retired"])
def test_an_addon_not_published_is_not_on_sale(session, world, status) -> None:
    line, _period = _line_with_period(session, world)
    addon = _addon(session, status=status)
    fund(session, world, 5000)
    with pytest.raises(AddOnNotOnSale):
        _buy(session, line, addon)
    assert addons_for_sale(session) == []


def test_a_free_addon_is_not_sold(session, world) -> None:
    line, _period = _line_with_period(session, world)
    addon = _addon(session, price=0)
    with pytest.raises(AddOnNotOnSale):
        _buy(session, line, addon)


def test_unknown_line_and_addon(session, world) -> None:
    line, _period = _line_with_period(session, world)
    addon = _addon(session)
    assert addon.id is not None and line.id is not None
    with pytest.raises(LineNotFound):
        buy_addon(session, line_id=999_999, addon_id=addon.id, key="abc", actor=STAFF, now=SOON)
    with pytest.raises(AddOnNotOnSale):
        buy_addon(session, line_id=line.id, addon_id=999_999, key="abc", actor=STAFF, now=SOON)


@pytest.mark.parametrize("key", ["", "   ", "a b", "x" * 101, "tab\tkey"])
def test_a_bad_key_is_refused(session, world, key) -> None:
    line, _period = _line_with_period(session, world)
    addon = _addon(session)
    with pytest.raises(InvalidInput):
        _buy(session, line, addon, key=key)


def test_addons_for_sale_lists_published_ones_by_code(session, world) -> None:
    _addon(session, code="ZED")
    _addon(session, code="ALPHA")
    _addon(session, code="DRAFTY", status="draft")
    assert [a.code for a in addons_for_sale(session)] == ["ALPHA", "ZED"]


def test_an_addon_is_found_by_its_code_and_an_unknown_code_is_not_on_sale(session) -> None:
    addon = _addon(session)
    assert get_addon_by_code(session, addon.code).id == addon.id
    with pytest.raises(AddOnNotOnSale):
        get_addon_by_code(session, "NO-SUCH-PACK")
