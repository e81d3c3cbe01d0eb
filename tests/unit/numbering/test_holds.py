"""Holds, assignment, quarantine and their expiry (numbering/lifecycle.py)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from app.core.audit import Actor
from app.core.db import Database
from app.core.errors import InvalidInput
from numbering.blocks import add_number_block
from numbering.errors import NumberNotFound, NumberUnavailable
from numbering.jobs import release_expired_numbers
from numbering.lifecycle import (
    assign_number,
    quarantine_number,
    release_expired,
    release_number,
    reserve_number,
)
from numbering.models import GoldenTier, PhoneNumber
from numbering.search import get_number
from numbering.tiers import set_tier_surcharge
from tests.factories import NOW
from tests.unit.numbering.conftest import STAFF

MSISDN = "+8617020351314"
LATER = NOW + timedelta(minutes=5)
EXPIRED = NOW + timedelta(minutes=15)


@pytest.fixture
def block(add_block):
    return add_block("+8617020351310", "+8617020351319")


def test_reserving_holds_the_number_for_fifteen_minutes(session, block):
    number = reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    assert (number.msisdn, number.status, number.reserved_by) == (MSISDN, "reserved", "order-1")
    assert number.reserved_until == NOW + timedelta(minutes=15)
    assert number.status_changed_at == NOW


def test_a_hold_can_be_given_another_length(session, block):
    number = reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW, minutes=30)
    assert number.reserved_until == NOW + timedelta(minutes=30)


def test_reserving_again_by_the_same_holder_extends_the_hold(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    again = reserve_number(session, msisdn=MSISDN, holder="order-1", now=LATER)
    assert (again.status, again.reserved_by) == ("reserved", "order-1")
    assert again.reserved_until == LATER + timedelta(minutes=15)


def test_another_holder_is_refused_while_the_hold_lasts(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    with pytest.raises(NumberUnavailable) as info:
        reserve_number(session, msisdn=MSISDN, holder="order-2", now=LATER)
    assert (info.value.code, info.value.http_status, info.value.field) == (
        "number_unavailable",
        409,
        "msisdn",
    )
    assert get_number(session, MSISDN).reserved_by == "order-1"


def test_an_expired_hold_can_be_taken_by_another_holder(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    number = reserve_number(session, msisdn=MSISDN, holder="order-2", now=EXPIRED)
    assert number.reserved_by == "order-2"
    assert number.reserved_until == EXPIRED + timedelta(minutes=15)


def test_an_assigned_number_cannot_be_reserved(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    assign_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    for holder in ("order-1", "order-2"):
        with pytest.raises(NumberUnavailable):
            reserve_number(session, msisdn=MSISDN, holder=holder, now=EXPIRED)


def test_an_unknown_number_is_not_found(session, block):
    with pytest.raises(NumberNotFound) as info:
        reserve_number(session, msisdn="+8617020359999", holder="order-1", now=NOW)
    assert info.value.http_status == 404


@pytest.mark.parametrize("msisdn", ["", "8617020351314", "+86 170 2035 1314", "+86170abc"])
def test_an_ill_formed_number_is_refused(session, block, msisdn):
    with pytest.raises(InvalidInput) as info:
        reserve_number(session, msisdn=msisdn, holder="order-1", now=NOW)
    assert info.value.field == "msisdn"


@pytest.mark.parametrize("holder", ["", "   ", "x" * 65, "order\x00"])
def test_a_bad_holder_is_refused(session, block, holder):
    with pytest.raises(InvalidInput) as info:
        reserve_number(session, msisdn=MSISDN, holder=holder, now=NOW)
    assert info.value.field == "holder"


@pytest.mark.parametrize("minutes", [0, -5, 24 * 60 + 1, True])
def test_a_bad_hold_length_is_refused(session, block, minutes):
    with pytest.raises(InvalidInput) as info:
        reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW, minutes=minutes)
    assert info.value.field == "minutes"


# -- release ----------------------------------------------------------------------------


def test_the_holder_can_release_its_hold(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    release_number(session, msisdn=MSISDN, holder="order-1", now=LATER)
    number = get_number(session, MSISDN)
    assert (number.status, number.reserved_by, number.reserved_until) == ("available", None, None)
    assert number.status_changed_at == LATER


def test_releasing_twice_is_harmless(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    release_number(session, msisdn=MSISDN, holder="order-1", now=LATER)
    release_number(session, msisdn=MSISDN, holder="order-1", now=LATER)
    assert get_number(session, MSISDN).status == "available"


def test_another_holder_cannot_release_a_hold(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    release_number(session, msisdn=MSISDN, holder="order-2", now=LATER)
    assert get_number(session, MSISDN).reserved_by == "order-1"


def test_releasing_an_unknown_number_is_not_found(session, block):
    with pytest.raises(NumberNotFound):
        release_number(session, msisdn="+8617020359999", holder="order-1", now=NOW)


# -- assignment -------------------------------------------------------------------------


def test_the_holder_can_turn_its_hold_into_an_assignment(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    number = assign_number(session, msisdn=MSISDN, holder="order-1", now=LATER)
    assert (number.status, number.reserved_by, number.reserved_until) == (
        "assigned",
        "order-1",
        None,
    )
    assert number.status_changed_at == LATER


def test_assigning_again_by_the_same_holder_is_idempotent(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    assign_number(session, msisdn=MSISDN, holder="order-1", now=LATER)
    again = assign_number(session, msisdn=MSISDN, holder="order-1", now=EXPIRED)
    assert again.status == "assigned"
    assert again.status_changed_at == LATER


@pytest.mark.parametrize(
    ("reserve_by", "assign_by", "assign_at"),
    [
        (None, "order-1", LATER),  # never reserved
        ("order-1", "order-2", LATER),  # someone else's hold
        ("order-1", "order-1", EXPIRED),  # own hold, expired
    ],
)
def test_assignment_needs_the_holders_own_live_hold(
    session, block, reserve_by, assign_by, assign_at
):
    if reserve_by:
        reserve_number(session, msisdn=MSISDN, holder=reserve_by, now=NOW)
    with pytest.raises(NumberUnavailable):
        assign_number(session, msisdn=MSISDN, holder=assign_by, now=assign_at)
    assert get_number(session, MSISDN).status != "assigned"


def test_another_holder_cannot_assign_an_assigned_number(session, block):
    reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    assign_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    with pytest.raises(NumberUnavailable):
        assign_number(session, msisdn=MSISDN, holder="order-2", now=NOW)


# -- quarantine and expiry --------------------------------------------------------------


def assigned(session, msisdn=MSISDN, holder="order-1"):
    reserve_number(session, msisdn=msisdn, holder=holder, now=NOW)
    return assign_number(session, msisdn=msisdn, holder=holder, now=NOW)


def test_an_assigned_number_is_quarantined_for_the_given_days(session, block):
    assigned(session)
    number = quarantine_number(session, msisdn=MSISDN, now=LATER, days=90)
    assert (number.status, number.reserved_by) == ("quarantined", None)
    assert number.quarantine_until == LATER + timedelta(days=90)


def test_quarantining_again_keeps_the_first_end_date(session, block):
    assigned(session)
    quarantine_number(session, msisdn=MSISDN, now=NOW, days=90)
    again = quarantine_number(session, msisdn=MSISDN, now=LATER, days=90)
    assert again.quarantine_until == NOW + timedelta(days=90)


@pytest.mark.parametrize("hold", [False, True])
def test_only_an_assigned_number_can_be_quarantined(session, block, hold):
    if hold:
        reserve_number(session, msisdn=MSISDN, holder="order-1", now=NOW)
    with pytest.raises(NumberUnavailable, match="only an assigned number"):
        quarantine_number(session, msisdn=MSISDN, now=NOW, days=90)


def test_negative_quarantine_days_are_refused(session, block):
    assigned(session)
    with pytest.raises(InvalidInput):
        quarantine_number(session, msisdn=MSISDN, now=NOW, days=-1)


def test_release_expired_frees_ended_holds_and_quarantines_only(session, block):
    reserve_number(session, msisdn="+8617020351310", holder="a", now=NOW)  # expires
    reserve_number(session, msisdn="+8617020351311", holder="b", now=LATER)  # lives
    assigned(session, "+8617020351312", "c")
    quarantine_number(session, msisdn="+8617020351312", now=NOW, days=0)  # ended
    assigned(session, "+8617020351313", "d")
    quarantine_number(session, msisdn="+8617020351313", now=NOW, days=90)  # lasts
    assigned(session, MSISDN, "e")  # stays assigned

    result = release_expired(session, now=EXPIRED)

    assert result == {"holds_released": 1, "quarantines_ended": 1}
    statuses = {
        n.msisdn: (n.status, n.reserved_by, n.reserved_until, n.quarantine_until)
        for n in session.exec(select(PhoneNumber).where(PhoneNumber.block_id == block.id))
    }
    assert statuses["+8617020351310"] == ("available", None, None, None)
    assert statuses["+8617020351311"][0:2] == ("reserved", "b")
    assert statuses["+8617020351312"] == ("available", None, None, None)
    assert statuses["+8617020351313"][0] == "quarantined"
    assert statuses[MSISDN][0] == "assigned"
    assert release_expired(session, now=EXPIRED) == {
        "holds_released": 0,
        "quarantines_ended": 0,
    }


def test_a_number_back_from_quarantine_costs_the_current_surcharge(session, block):
    assigned(session, "+8617020351314")  # end_1314
    quarantine_number(session, msisdn="+8617020351314", now=NOW, days=1)
    set_tier_surcharge(
        session, code="end_1314", surcharge_minor=13140, enabled=True, actor=STAFF, now=NOW
    )
    assert get_number(session, "+8617020351314").surcharge_minor == 5200

    release_expired_numbers(session, NOW + timedelta(days=1))

    number = get_number(session, "+8617020351314")
    assert (number.status, number.surcharge_minor) == ("available", 13140)
    plain = get_number(session, "+8617020351317")
    assert (plain.tier, plain.surcharge_minor) == (None, 0)


# -- concurrency ------------------------------------------------------------------------

RACE_HOST = "RACEHOST"
RACE_FIRST, RACE_LAST = "+8617099990000", "+8617099990009"
THREADS, ATTEMPTS = 8, 20


def cleanup_race(database: Database, keep_tiers: set[str]) -> None:
    with database.transaction() as session:
        block_ids = [
            row[0]
            for row in session.execute(
                text(
                    "SELECT b.id FROM number_block b JOIN host_carrier h ON h.id = b.host_id"
                    " WHERE h.code = :code"
                ),
                {"code": RACE_HOST},
            )
        ]
        for block_id in block_ids:
            session.execute(text("DELETE FROM phone_number WHERE block_id = :id"), {"id": block_id})
            session.execute(
                text(
                    "DELETE FROM audit_entry WHERE action = 'number_block.add' AND target_id = :id"
                ),
                {"id": str(block_id)},
            )
            session.execute(text("DELETE FROM number_block WHERE id = :id"), {"id": block_id})
        session.execute(text("DELETE FROM host_carrier WHERE code = :code"), {"code": RACE_HOST})
        for tier in session.exec(select(GoldenTier)).all():
            if tier.code not in keep_tiers:
                session.delete(tier)


def test_concurrent_reservations_never_hand_a_number_to_two_holders(app):
    """8 threads × 20 reservations over 10 numbers, each in its own committed transaction."""
    from wholesale.models import HostCarrier

    database = Database(app.extensions["mvno.db"].url, pool_size=THREADS + 2, max_overflow=0)
    with database.transaction() as session:
        keep_tiers = set(session.exec(select(GoldenTier.code)).all())
    cleanup_race(database, keep_tiers)
    try:
        with database.transaction() as session:
            host = HostCarrier(code=RACE_HOST, name="Race host", created_at=NOW)
            session.add(host)
            session.flush()
            add_number_block(
                session,
                host_id=host.id,
                first=RACE_FIRST,
                last=RACE_LAST,
                actor=Actor.system("test"),
                now=NOW,
            )

        successes: list[tuple[str, str]] = []
        conflicts: list[str] = []
        failures: list[BaseException] = []
        lock = threading.Lock()
        gate = threading.Barrier(THREADS)

        def worker(index: int) -> None:
            rng = random.Random(index)
            gate.wait()
            for attempt in range(ATTEMPTS):
                msisdn = f"+86170999900{rng.randrange(10):02d}"
                holder = f"thread-{index}-{attempt}"
                try:
                    with database.transaction() as session:
                        reserve_number(session, msisdn=msisdn, holder=holder, now=NOW)
                    with lock:
                        successes.append((msisdn, holder))
                except NumberUnavailable:
                    with lock:
                        conflicts.append(msisdn)
                except BaseException as exc:
                    with lock:
                        failures.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert failures == []
        assert not any(thread.is_alive() for thread in threads)
        assert len(successes) + len(conflicts) == THREADS * ATTEMPTS
        per_number = Counter(msisdn for msisdn, _ in successes)
        assert max(per_number.values()) == 1, per_number
        with database.transaction(write=False) as session:
            held = {
                n.msisdn: n.reserved_by
                for n in session.exec(
                    select(PhoneNumber).where(
                        PhoneNumber.status == "reserved",
                        PhoneNumber.msisdn >= RACE_FIRST,
                        PhoneNumber.msisdn <= RACE_LAST,
                    )
                )
            }
        assert held == dict(successes)
        assert len(held) == 10  # 160 attempts over 10 numbers take them all
    finally:
        cleanup_race(database, keep_tiers)
        database.dispose()
