"""The dashboard's figures are counted from the rows themselves."""

from __future__ import annotations

from sqlmodel import Session

from app.analytics.dashboard import dashboard_counts
from app.auth.api_keys import revoke_api_key
from app.core.audit import Actor
from tests.factories import NOW, make_api_key, make_staff, make_subscriber
from tests.unit.subscribers.helpers import make_world


def test_the_figures_count_staff_subscribers_keys_numbers_and_plans(session: Session) -> None:
    before = dashboard_counts(session)
    make_staff(session, role="care")
    make_staff(session, role="care")
    make_staff(session, role="finance")
    make_subscriber(session)
    make_api_key(session, role="auditor")
    revoked, _token = make_api_key(session, role="auditor", name="old")
    assert revoked.id is not None
    revoke_api_key(session, key_id=revoked.id, actor=Actor.system("test"), now=NOW)
    make_world(session, code="DASH")

    after = dashboard_counts(session)

    staff_before = before["staff_by_role"]
    assert after["staff_by_role"]["care"] == staff_before.get("care", 0) + 2
    assert after["staff_by_role"]["finance"] == staff_before.get("finance", 0) + 1
    assert after["subscribers"] == before["subscribers"] + 1
    assert after["active_api_keys"] == before["active_api_keys"] + 1
    assert after["audit_entries"] > before["audit_entries"]
    # The world's block holds 200 numbers, all available; it adds two published plans.
    assert after["numbers_available"] == before["numbers_available"] + 200
    assert after["plans_on_sale"] == before["plans_on_sale"] + 2
    assert after["sims_in_stock"] >= before["sims_in_stock"]
