"""`ledger_activity`: system accounts' postings per quarter-hour and tag, kept by posting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from app.core.audit import Actor
from app.core.errors import InvalidInput
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.activity import (
    ADDON_TAG,
    MAX_TAG,
    bucket_of,
    plan_of_tag,
    plan_tag,
)
from app.ledger.checks import check_ledger
from app.ledger.models import JournalEntry, LedgerActivity
from app.ledger.posting import BulkEntry, post_entries, post_entry
from tests.unit.ledger.helpers import MONTHS, REFERENCE, make_customer

ACTOR = Actor.system("test")
T0 = datetime(2026, 3, 1, 8, 7, 30, tzinfo=UTC)


def _rows(session):
    rows = session.exec(select(LedgerActivity)).all()
    return {(r.account_id, r.bucket, r.tag): (r.amount_minor, r.postings) for r in rows}


def _accounts(session, n=2):
    customers = [make_customer(session, ref=f"C-ACT{i}") for i in range(n)]
    ids = customer_account_ids(session, customer_ids=[c.id for c in customers], currency="CNY")
    return [ids[c.id] for c in customers]


@pytest.mark.parametrize(
    ("at", "bucket"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 14, 59, 999_999, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 15, tzinfo=UTC), 1),
        (datetime(2026, 3, 1, 8, 0, tzinfo=UTC), 1_969_280),
    ],
)
def test_bucket_is_the_quarter_hour_since_the_epoch(at, bucket):
    assert bucket_of(at) == bucket


def test_bucket_refuses_a_naive_instant():
    with pytest.raises(ValueError, match="naive"):
        bucket_of(datetime(2026, 3, 1))


def test_plan_tags_round_trip_and_other_tags_name_no_plan():
    assert plan_of_tag(plan_tag("LITE30")) == "LITE30"
    assert plan_of_tag(ADDON_TAG) is None and plan_of_tag("") is None
    assert len(plan_tag("X" * 100)) == MAX_TAG


def test_system_postings_are_summed_per_quarter_hour_and_tag(session):
    a, b = _accounts(session)
    cash = system_account_id(session, kind="cash_offline", currency="CNY")
    revenue = system_account_id(session, kind="revenue_plans", currency="CNY")
    post_entries(
        session,
        entries=[
            BulkEntry("credit.offline", "in-a", ((cash, -10_000), (a, 10_000))),
            BulkEntry("credit.offline", "in-b", ((cash, -5_000), (b, 5_000))),
        ],
        actor=ACTOR,
        now=T0,
    )
    sale = BulkEntry("renewal", "r-a", ((a, -3900), (revenue, 3900)), tag=plan_tag("LITE30"))
    post_entries(session, entries=[sale], actor=ACTOR, now=T0 + timedelta(minutes=5))
    post_entry(
        session,
        kind="charge.revenue_plans",
        idempotency_key="addon-b",
        postings=[(b, -500), (revenue, 500)],
        actor=ACTOR,
        now=T0 + timedelta(minutes=8),  # 08:15:30: the next quarter-hour
        tag=ADDON_TAG,
    )
    first = bucket_of(T0)
    assert _rows(session) == {
        (cash, first, ""): (-15_000, 2),
        (revenue, first, "plan:LITE30"): (3900, 1),
        (revenue, first + 1, "addon"): (500, 1),
    }
    entry = session.exec(select(JournalEntry).where(JournalEntry.idempotency_key == "r-a")).one()
    assert entry.tag == "plan:LITE30"
    check = check_ledger(session, cap_months=MONTHS, reference_monthly_minor=REFERENCE)
    assert check.ok, check.problems


def test_a_replay_and_a_refusal_add_nothing(session):
    (a,) = _accounts(session, 1)
    cash = system_account_id(session, kind="cash_offline", currency="CNY")
    revenue = system_account_id(session, kind="revenue_plans", currency="CNY")
    credit = BulkEntry("credit.offline", "in", ((cash, -1000), (a, 1000)))
    post_entries(session, entries=[credit], actor=ACTOR, now=T0)
    before = _rows(session)
    result = post_entries(
        session,
        entries=[credit, BulkEntry("renewal", "too-much", ((a, -5000), (revenue, 5000)))],
        actor=ACTOR,
        now=T0,
    )
    assert result.replayed and result.refused
    assert _rows(session) == before


def test_a_tag_over_the_limit_is_refused_and_nothing_is_posted(session):
    (a,) = _accounts(session, 1)
    cash = system_account_id(session, kind="cash_offline", currency="CNY")
    with pytest.raises(InvalidInput):
        post_entry(
            session,
            kind="credit.offline",
            idempotency_key="long-tag",
            postings=[(cash, -100), (a, 100)],
            actor=ACTOR,
            now=T0,
            tag="x" * (MAX_TAG + 1),
        )
    assert _rows(session) == {}


def test_the_check_finds_sums_that_differ_from_the_postings(session):
    (a,) = _accounts(session, 1)
    cash = system_account_id(session, kind="cash_offline", currency="CNY")
    post_entries(
        session,
        entries=[BulkEntry("credit.offline", "in", ((cash, -1000), (a, 1000)))],
        actor=ACTOR,
        now=T0,
    )
    session.connection().execute(text("UPDATE ledger_activity SET amount_minor = -999"))
    check = check_ledger(session, cap_months=MONTHS, reference_monthly_minor=REFERENCE)
    assert not check.ok
    assert any("activity of account" in p and "(-999, 1)" in p for p in check.problems)
    session.connection().execute(text("DELETE FROM ledger_activity"))
    check = check_ledger(session, cap_months=MONTHS, reference_monthly_minor=REFERENCE)
    assert any("kept (0, 0) but postings give (-1000, 1)" in p for p in check.problems)
