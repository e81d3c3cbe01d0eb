"""A number has at most one line that is not final; ended lines stay on record."""

from __future__ import annotations

import pytest

from app.subscribers import lifecycle
from app.subscribers import services as subscribers
from app.subscribers.errors import MsisdnTaken
from tests.factories import NOW
from tests.unit.subscribers.helpers import STAFF, make_line, make_world


def _reopen(session, world, msisdn):
    return subscribers.open_line(
        session,
        customer_id=world.customer.id,
        msisdn=msisdn,
        plan_id=world.plan.id,
        status="pending",
        now=NOW,
    )


def test_a_second_live_line_for_a_number_is_refused(session):
    world = make_world(session)
    line = make_line(session, world)
    with pytest.raises(MsisdnTaken):
        _reopen(session, world, line.msisdn)


@pytest.mark.parametrize("end", ["terminate", "port_out", "transfer"])
def test_a_number_whose_line_ended_can_have_a_new_line(session, end):
    world = make_world(session)
    old = make_line(session, world)
    if end == "terminate":
        lifecycle.terminate_line(
            session, line_id=old.id, reason="moved", quarantine_days=0, actor=STAFF, now=NOW
        )
    elif end == "port_out":
        lifecycle.port_out_line(session, line_id=old.id, actor=STAFF, now=NOW)
    else:
        lifecycle.transfer_line(session, line_id=old.id, actor=STAFF, now=NOW)
    new = _reopen(session, world, old.msisdn)
    assert new.id != old.id
    # The number names its live line, not the ended one.
    assert subscribers.get_line_by_msisdn(session, old.msisdn).id == new.id
    with pytest.raises(MsisdnTaken):
        _reopen(session, world, old.msisdn)


def test_an_ended_line_is_still_found_by_its_number(session):
    world = make_world(session)
    old = make_line(session, world)
    lifecycle.terminate_line(
        session, line_id=old.id, reason="moved", quarantine_days=90, actor=STAFF, now=NOW
    )
    assert subscribers.get_line_by_msisdn(session, old.msisdn).id == old.id
