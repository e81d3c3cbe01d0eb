"""Number blocks and golden-tier configuration (numbering/blocks.py, numbering/tiers.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete
from sqlmodel import col, func, select

from app.core.audit import AuditEntry
from app.core.db import Database
from app.core.errors import InvalidInput
from numbering import blocks
from numbering.blocks import add_number_block, list_blocks
from numbering.errors import BlockInvalid, BlockOverlap, HostNotFound, TierNotFound
from numbering.golden import DEFAULT_TIERS, TIER_CODES
from numbering.lifecycle import assign_number, reserve_number
from numbering.models import NUMBER_STATUSES, GoldenTier, NumberBlock, PhoneNumber
from numbering.search import get_number, search_numbers
from numbering.tiers import ensure_default_tiers, list_tiers, set_tier_surcharge
from tests.factories import NOW
from tests.unit.numbering.conftest import STAFF, make_host
from wholesale.models import HostCarrier


def numbers_of(session, block):
    return list(
        session.exec(
            select(PhoneNumber)
            .where(PhoneNumber.block_id == block.id)
            .order_by(col(PhoneNumber.msisdn))
        )
    )


def count_numbers(session):
    return session.exec(select(func.count()).select_from(PhoneNumber)).one()


def audits(session, action):
    return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


# -- loading ----------------------------------------------------------------------------


def test_a_block_loads_one_available_number_per_msisdn(session, host, add_block):
    block = add_block("+8617012340000", "+8617012340099")

    assert (block.first, block.last, block.size, block.host_id) == (
        "+8617012340000",
        "+8617012340099",
        100,
        host.id,
    )
    numbers = numbers_of(session, block)
    assert [n.msisdn for n in numbers] == [f"+86170123400{i:02d}" for i in range(100)]
    assert {n.status for n in numbers} == {"available"}
    assert all(n.msisdn_reversed == n.msisdn[::-1] for n in numbers)
    assert all(n.status_changed_at == NOW for n in numbers)
    assert all(n.reserved_until is None and n.reserved_by is None for n in numbers)


def test_loaded_numbers_carry_their_golden_tier_and_surcharge(session, add_block):
    block = add_block("+8617012348880", "+8617012348889")
    by_msisdn = {n.msisdn: n for n in numbers_of(session, block)}

    assert by_msisdn["+8617012348888"].tier == "aaaa"
    assert by_msisdn["+8617012348888"].surcharge_minor == DEFAULT_TIERS["aaaa"]
    # 1234 and 888 are digits every number of this block shares: not this number's
    assert by_msisdn["+8617012348880"].tier is None
    assert by_msisdn["+8617012348885"].tier is None
    assert all(
        n.surcharge_minor == (DEFAULT_TIERS[n.tier] if n.tier else 0) for n in by_msisdn.values()
    )


def test_a_pattern_in_the_digits_the_whole_block_shares_does_not_count(session, add_block):
    """The demo block +86170123400xx: every number's last eight digits start 123400."""
    block = add_block("+8617012340000", "+8617012340099")
    tiers = {n.msisdn: n.tier for n in numbers_of(session, block)}
    assert tiers["+8617012340001"] is None  # was abcd from the block's 1234
    assert tiers["+8617012340037"] is None
    assert tiers["+8617012340088"] == "aabb"  # 0088: its own last digits
    assert tiers["+8617012340000"] == "aaaa"  # 0000 takes in digits of its own
    golden = sum(1 for tier in tiers.values() if tier)
    assert 0 < golden < 20


def test_ordinary_numbers_have_no_tier_and_no_surcharge(session, add_block):
    block = add_block("+8617020351460", "+8617020351464")
    numbers = numbers_of(session, block)
    assert [(n.tier, n.surcharge_minor) for n in numbers] == [(None, 0)] * 5


def test_a_block_load_is_audited_once(session, host, add_block):
    block = add_block("+8617012340000", "+8617012340999")
    entries = audits(session, "number_block.add")
    assert len(entries) == 1
    assert entries[0].target_id == str(block.id)
    assert entries[0].details == {
        "host": "HOSTA",
        "first": "+8617012340000",
        "last": "+8617012340999",
        "size": 1000,
    }


def test_a_single_number_block_is_allowed(session, add_block):
    block = add_block("+8617012340000", "+8617012340000")
    assert block.size == 1
    assert count_numbers(session) == 1


def test_loading_the_same_block_again_returns_it_and_inserts_nothing(session, add_block):
    block = add_block("+8617012340000", "+8617012340099")
    again = add_block("+8617012340000", "+8617012340099")

    assert again.id == block.id
    assert count_numbers(session) == 100
    assert len(audits(session, "number_block.add")) == 1


def test_the_same_first_number_with_another_last_is_refused(session, add_block):
    add_block("+8617012340000", "+8617012340099")
    with pytest.raises(BlockOverlap, match=r"already has a block from \+8617012340000") as info:
        add_block("+8617012340000", "+8617012340199")
    assert info.value.field == "last"
    assert count_numbers(session) == 100


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("+8617012340050", "+8617012340149"),  # overlaps the end
        ("+8617012339950", "+8617012340000"),  # touches the first number
        ("+8617012340010", "+8617012340020"),  # inside
        ("+8617012339000", "+8617012349999"),  # contains it
        ("+8617012340099", "+8617012340099"),  # the last number alone
    ],
)
def test_overlapping_blocks_are_refused(session, add_block, first, last):
    add_block("+8617012340000", "+8617012340099")
    with pytest.raises(BlockOverlap, match=r"overlaps the block \+8617012340000–\+8617012340099"):
        add_block(first, last)
    assert count_numbers(session) == 100


def test_a_block_of_another_host_may_not_overlap_either(session, add_block):
    add_block("+8617012340000", "+8617012340099")
    other = make_host(session, "HOSTB")
    with pytest.raises(BlockOverlap):
        add_block("+8617012340050", "+8617012340060", host_id=other.id)


def test_adjacent_blocks_are_fine(session, add_block):
    add_block("+8617012340000", "+8617012340099")
    add_block("+8617012340100", "+8617012340199")
    add_block("+8617012339900", "+8617012339999")
    assert count_numbers(session) == 300


def test_blocks_of_other_lengths_never_overlap(session, add_block):
    add_block("+8617012340000", "+8617012340099")
    # A 10-digit US number is numerically far away even though the text sorts between.
    add_block("+14155550100", "+14155550199")
    assert count_numbers(session) == 200


def test_a_reversed_block_is_refused(session, add_block):
    with pytest.raises(BlockInvalid, match="reversed") as info:
        add_block("+8617012340099", "+8617012340000")
    assert info.value.field == "last"
    assert count_numbers(session) == 0


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("8617012340000", "+8617012340099", "first"),  # no plus
        ("+8617012340000", "+86 170 1234 0099", "last"),  # not E.164 text
        ("+86170123400ab", "+8617012340099", "first"),
        ("", "+8617012340099", "first"),
        ("+8617012340000", "+8601701234009", "last"),  # national prefix 0: not canonical
        ("+86138", "+86139", "first"),  # too short to be a number
        ("+8617012340000", "+861701234009999", "last"),  # too long for China
        ("+0617012340000", "+8617012340099", "first"),  # no country code 0
        ("+8617012340000", "+9991234567890", "last"),  # no country calling code 999
        ("+2801234567", "+8617012340099", "first"),  # no country calling code 28
    ],
)
def test_ill_formed_or_invalid_ends_are_refused_naming_the_field(
    session, add_block, first, last, field
):
    with pytest.raises(BlockInvalid) as info:
        add_block(first, last)
    assert info.value.field == field
    assert count_numbers(session) == 0


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("+8617012340000", "+14155550100"),  # other country
        ("+861012345678", "+8617012340000"),  # fixed line (10 digits) to mobile (11)
    ],
)
def test_ends_of_different_shape_are_refused(session, add_block, first, last):
    with pytest.raises(BlockInvalid, match="not numbers of one range"):
        add_block(first, last)


def test_more_than_a_million_numbers_is_refused_before_inserting_anything(session, add_block):
    with pytest.raises(BlockInvalid, match="at most 1,000,000") as info:
        add_block("+8617000000000", "+8617001000000")  # 1,000,001 numbers
    assert "1,000,001" in str(info.value)
    assert session.exec(select(func.count()).select_from(NumberBlock)).one() == 0
    assert count_numbers(session) == 0


def test_an_unknown_host_is_refused(session, add_block):
    with pytest.raises(HostNotFound) as info:
        add_block("+8617012340000", "+8617012340099", host_id=999_999)
    assert info.value.code == "host_not_found"
    assert info.value.http_status == 404


def test_a_large_block_loads_in_bulk_and_is_searchable(session, add_block):
    block = add_block("+8617012300000", "+8617012319999")  # 20,000: several batches, ANALYZE
    assert count_numbers(session) == 20_000
    page = search_numbers(session, pattern="8888", now=NOW)
    assert [n.msisdn for n in page.items] == ["+8617012308888", "+8617012318888"]
    assert all(n.block_id == block.id for n in page.items)


# -- listing ----------------------------------------------------------------------------


def test_blocks_are_listed_with_their_host_and_counts_per_status(session, host, add_block):
    first = add_block("+8617012340000", "+8617012340009")
    other = make_host(session, "HOSTB")
    second = add_block("+8617012350000", "+8617012350004", host_id=other.id)
    reserve_number(session, msisdn="+8617012340001", holder="order-1", now=NOW)
    reserve_number(session, msisdn="+8617012340002", holder="order-2", now=NOW)
    assign_number(session, msisdn="+8617012340002", holder="order-2", now=NOW)

    summaries = list_blocks(session)

    assert [(s.id, s.host_code) for s in summaries] == [(first.id, "HOSTA"), (second.id, "HOSTB")]
    assert summaries[0].counts == {
        "available": 8,
        "reserved": 1,
        "assigned": 1,
        "quarantined": 0,
        "ported_out": 0,
        "returned": 0,
    }
    assert summaries[1].counts["available"] == 5
    assert (summaries[0].first, summaries[0].last, summaries[0].size) == (
        "+8617012340000",
        "+8617012340009",
        10,
    )
    assert summaries[0].received_at == NOW
    for status in NUMBER_STATUSES:
        total = sum(summary.counts[status] for summary in summaries)
        assert blocks.count_numbers(session, status=status) == total, status


def test_no_blocks_list_empty(session):
    assert list_blocks(session) == []


# -- golden tiers -----------------------------------------------------------------------


def test_default_tiers_are_inserted_once(session):
    ensure_default_tiers(session, now=NOW)
    ensure_default_tiers(session, now=NOW + timedelta(days=1))

    tiers = list_tiers(session)
    assert [t.code for t in tiers] == list(TIER_CODES)
    assert {t.code: t.surcharge_minor for t in tiers} == DEFAULT_TIERS
    assert all(t.enabled and t.updated_at == NOW for t in tiers)


def test_ensuring_defaults_keeps_a_configured_surcharge(session):
    set_tier_surcharge(
        session, code="aaaa", surcharge_minor=100, enabled=True, actor=STAFF, now=NOW
    )
    ensure_default_tiers(session, now=NOW)
    assert session.get(GoldenTier, "aaaa").surcharge_minor == 100


def test_a_new_surcharge_reprices_the_numbers_buyers_can_take(session, add_block):
    add_block("+8617012348880", "+8617012348889")
    add_block("+8617020356660", "+8617020356669")  # +86 170 2035 6666: aaaa too
    add_block("+8617020351230", "+8617020351239")  # +86 170 2035 1234: abcd
    reserve_number(session, msisdn="+8617020356666", holder="order-1", now=NOW)

    tier = set_tier_surcharge(
        session, code="aaaa", surcharge_minor=50000, enabled=True, actor=STAFF, now=NOW
    )

    assert (tier.surcharge_minor, tier.enabled, tier.updated_at) == (50000, True, NOW)
    assert get_number(session, "+8617012348888").surcharge_minor == 50000
    # A live hold keeps the price its buyer saw.
    held = get_number(session, "+8617020356666")
    assert held.surcharge_minor == DEFAULT_TIERS["aaaa"]
    # Other tiers are untouched.
    assert get_number(session, "+8617020351234").surcharge_minor == DEFAULT_TIERS["abcd"]


def test_an_expired_hold_is_repriced_like_an_available_number(session, add_block):
    add_block("+8617012348888", "+8617012348888")
    reserve_number(session, msisdn="+8617012348888", holder="order-1", now=NOW)
    later = NOW + timedelta(minutes=30)
    set_tier_surcharge(
        session, code="aaaa", surcharge_minor=1, enabled=True, actor=STAFF, now=later
    )
    assert get_number(session, "+8617012348888").surcharge_minor == 1


def test_a_disabled_tier_keeps_its_numbers_tier_and_charges_nothing(session, add_block):
    add_block("+8617012348888", "+8617012348888")
    set_tier_surcharge(
        session, code="aaaa", surcharge_minor=28800, enabled=False, actor=STAFF, now=NOW
    )
    number = get_number(session, "+8617012348888")
    assert (number.tier, number.surcharge_minor) == ("aaaa", 0)

    set_tier_surcharge(
        session, code="aaaa", surcharge_minor=30000, enabled=True, actor=STAFF, now=NOW
    )
    assert get_number(session, "+8617012348888").surcharge_minor == 30000


def test_a_block_loaded_while_a_tier_is_disabled_charges_nothing_for_it(session, add_block):
    set_tier_surcharge(
        session, code="end_88", surcharge_minor=880, enabled=False, actor=STAFF, now=NOW
    )
    add_block("+8617020351488", "+8617020351488")
    number = get_number(session, "+8617020351488")
    assert (number.tier, number.surcharge_minor) == ("end_88", 0)


def test_a_tier_change_is_audited_and_a_repeat_changes_nothing(session, add_block):
    add_block("+8617012348888", "+8617012348888")
    for _ in range(2):
        set_tier_surcharge(
            session, code="aaaa", surcharge_minor=100, enabled=True, actor=STAFF, now=NOW
        )
    entries = audits(session, "golden_tier.update")
    assert len(entries) == 1
    assert entries[0].target_id == "aaaa"
    assert entries[0].actor_id == STAFF.id
    assert entries[0].details == {
        "before": {"surcharge_minor": DEFAULT_TIERS["aaaa"], "enabled": True},
        "after": {"surcharge_minor": 100, "enabled": True},
        "numbers_repriced": 1,
    }


def test_an_unknown_tier_is_refused(session):
    with pytest.raises(TierNotFound):
        set_tier_surcharge(
            session, code="lucky7", surcharge_minor=1, enabled=True, actor=STAFF, now=NOW
        )


@pytest.mark.parametrize("surcharge", [-1, 100_000_001, True, 1.5, "100"])
def test_a_bad_surcharge_is_refused(session, surcharge):
    with pytest.raises(InvalidInput) as info:
        set_tier_surcharge(
            session, code="aaaa", surcharge_minor=surcharge, enabled=True, actor=STAFF, now=NOW
        )
    assert info.value.field == "surcharge_minor"


# -- concurrency ------------------------------------------------------------------------

RACE_HOST = "BLOCKRACE"


def _cleanup_block_race(database, keep_tiers):
    with database.transaction() as session:
        host = session.exec(select(HostCarrier).where(HostCarrier.code == RACE_HOST)).first()
        if host is not None:
            for block in session.exec(select(NumberBlock).where(NumberBlock.host_id == host.id)):
                session.execute(delete(PhoneNumber).where(PhoneNumber.block_id == block.id))
                session.execute(
                    delete(AuditEntry).where(
                        AuditEntry.action == "number_block.add",
                        AuditEntry.target_id == str(block.id),
                    )
                )
                session.delete(block)
            session.flush()
            session.delete(host)
        for tier in session.exec(select(GoldenTier)).all():
            if tier.code not in keep_tiers:
                session.delete(tier)


def test_concurrent_overlapping_block_loads_let_exactly_one_through(app):
    """Four committed loads of overlapping ranges race; the overlap check is serialised."""
    database = Database(app.extensions["mvno.db"].url)
    with database.transaction() as session:
        keep_tiers = set(session.exec(select(GoldenTier.code)).all())
    _cleanup_block_race(database, keep_tiers)
    try:
        with database.transaction() as session:
            host = HostCarrier(code=RACE_HOST, name="Race host", created_at=NOW)
            session.add(host)
            session.flush()
            host_id = host.id
        outcomes: list[str] = []
        gate = threading.Barrier(4)

        def load(shift: int) -> None:
            gate.wait()
            try:
                with database.transaction() as session:
                    add_number_block(
                        session,
                        host_id=host_id,
                        first=f"+86170999{8000 + shift:05d}",
                        last=f"+86170999{8099 + shift:05d}",
                        actor=STAFF,
                        now=NOW,
                    )
                outcomes.append("loaded")
            except BlockOverlap:
                outcomes.append("overlap")
            except BaseException as exc:
                outcomes.append(repr(exc))

        threads = [threading.Thread(target=load, args=(i * 10,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert sorted(outcomes) == ["loaded", "overlap", "overlap", "overlap"]
        with database.transaction(write=False) as session:
            numbers = session.exec(
                select(func.count())
                .select_from(PhoneNumber)
                .join(NumberBlock, NumberBlock.id == PhoneNumber.block_id)
                .where(NumberBlock.host_id == host_id)
            ).one()
        assert numbers == 100
    finally:
        _cleanup_block_race(database, keep_tiers)
        database.dispose()
