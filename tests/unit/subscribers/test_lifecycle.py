"""Every line change of DESIGN §10, allowed or refused, over the full status × action matrix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.audit import AuditEntry
from app.core.db import Database
from app.core.errors import InvalidInput
from app.provisioning.models import ProvisioningEvent
from app.subscribers import lifecycle
from app.subscribers.errors import LineStateError
from app.subscribers.models import LINE_STATUSES, Line
from numbering.models import PhoneNumber, Sim
from tests.factories import NOW
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world

LATER = NOW + timedelta(hours=1)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session)


def _act(action: str, world: World) -> Callable[[Session, Line], Line]:
    def run(session: Session, line: Line) -> Line:
        assert line.id is not None
        common: dict[str, Any] = {"line_id": line.id, "actor": STAFF, "now": LATER}
        if action == "activate":
            return lifecycle.activate_line(session, **common)
        if action == "suspend":
            return lifecycle.suspend_line(session, reason="unpaid", **common)
        if action == "resume":
            return lifecycle.resume_line(session, reason="paid", **common)
        if action == "terminate":
            return lifecycle.terminate_line(
                session, reason="customer asked", quarantine_days=90, **common
            )
        if action == "transfer":
            return lifecycle.transfer_line(session, **common)
        if action == "port_out":
            return lifecycle.port_out_line(session, **common)
        assert action == "change_plan"
        assert world.other_plan.id is not None
        return lifecycle.change_plan(session, plan_id=world.other_plan.id, **common)

    return run


# (action, status) -> status after, "same" for a no-op, or None when refused.
TRANSITIONS: dict[str, dict[str, str | None]] = {
    "activate": {"pending": "active", "active": "same"},
    "suspend": {"active": "suspended", "suspended": "same"},
    "resume": {"suspended": "active", "active": "same"},
    "terminate": {
        "pending": "terminated",
        "active": "terminated",
        "suspended": "terminated",
        "terminated": "same",
    },
    "transfer": {
        "pending": "transferred",
        "active": "transferred",
        "suspended": "transferred",
        "transferred": "same",
    },
    "port_out": {"active": "ported_out", "suspended": "ported_out", "ported_out": "same"},
    "change_plan": {"pending": "pending", "active": "active", "suspended": "suspended"},
}
EVENT_OF = {
    "activate": None,  # the host's acknowledgement of `activate` is the cause, not a command
    "suspend": "suspend",
    "resume": "resume",
    "terminate": "terminate",
    "transfer": "transfer_to_host",
    "port_out": "port_out",
    "change_plan": "change_plan",
}
MATRIX = [(action, status) for action in TRANSITIONS for status in LINE_STATUSES]


def _events(session: Session, line_id: int) -> list[ProvisioningEvent]:
    return list(
        session.exec(
            select(ProvisioningEvent)
            .where(ProvisioningEvent.line_id == line_id)
            .order_by(col(ProvisioningEvent.id))
        )
    )


def _audits(session: Session, line_id: int) -> list[AuditEntry]:
    return list(
        session.exec(
            select(AuditEntry).where(
                AuditEntry.target_type == "line", AuditEntry.target_id == str(line_id)
            )
        )
    )


@pytest.mark.parametrize(("action", "status"), MATRIX)
def test_every_status_and_action(session: Session, world: World, action: str, status: str) -> None:
    line = make_line(session, world, status=status)
    assert line.id is not None
    expected = TRANSITIONS[action].get(status)
    if expected is None:
        with pytest.raises(LineStateError) as refused:
            _act(action, world)(session, line)
        assert refused.value.code == "line_state"
        assert refused.value.http_status == 409
        assert status in refused.value.message
        session.refresh(line)
        assert line.status == status
        assert line.status_changed_at == NOW
        assert _events(session, line.id) == []
        assert _audits(session, line.id) == []
        return
    after = _act(action, world)(session, line)
    if expected == "same":
        assert after.status == status
        assert after.status_changed_at == NOW
        assert _events(session, line.id) == []
        assert _audits(session, line.id) == []
        return
    assert after.status == expected
    audits = _audits(session, line.id)
    assert len(audits) == 1
    events = _events(session, line.id)
    if EVENT_OF[action] is None:
        assert events == []
        assert audits[0].details["provisioning_event"] is None
    else:
        assert [e.action for e in events] == [EVENT_OF[action]]
        event = events[0]
        assert event.status == "pending" and event.attempts == 0
        assert event.next_attempt_at == LATER and event.host_id == world.host.id
        assert event.payload["msisdn"] == line.msisdn
        assert event.payload["iccid"] and event.payload["imsi"]
        assert audits[0].details["provisioning_event"] == event.id
    assert audits[0].action == f"line.{action}"
    if action != "change_plan":
        assert after.status_changed_at == LATER


def test_a_change_and_its_event_and_audit_roll_back_together(db: Database) -> None:
    with db.transaction() as session:
        world = make_world(session, code="HOSTR")
        line_id = make_line(session, world).id
    assert line_id is not None

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.transaction() as session:
        lifecycle.suspend_line(session, line_id=line_id, reason="x", actor=STAFF, now=LATER)
        assert len(_events(session, line_id)) == 1
        raise Boom
    with db.transaction() as session:
        assert session.get(Line, line_id).status == "active"  # type: ignore[union-attr]
        assert _events(session, line_id) == []
        assert _audits(session, line_id) == []


def test_termination_quarantines_the_number_and_retires_the_sim(
    session: Session, world: World
) -> None:
    line = make_line(session, world, status="suspended")
    assert line.id is not None
    lifecycle.terminate_line(
        session,
        line_id=line.id,
        reason="unpaid 90 days",
        quarantine_days=90,
        actor=STAFF,
        now=LATER,
    )
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == line.msisdn)).one()
    assert number.status == "quarantined"
    assert number.quarantine_until == LATER + timedelta(days=90)
    sim = session.get(Sim, line.sim_id)
    assert sim is not None and sim.status == "retired"
    audit = _audits(session, line.id)[0]
    assert audit.details["number"] == "quarantined" and audit.details["sim"] == "retired"
    assert audit.details["reason"] == "unpaid 90 days"


def test_port_out_marks_the_number_ported_out(session: Session, world: World) -> None:
    line = make_line(session, world)
    assert line.id is not None
    lifecycle.port_out_line(session, line_id=line.id, actor=STAFF, now=LATER)
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == line.msisdn)).one()
    assert number.status == "ported_out"
    assert session.get(Sim, line.sim_id).status == "retired"  # type: ignore[union-attr]


def test_transfer_leaves_number_and_sim_to_the_host(session: Session, world: World) -> None:
    line = make_line(session, world)
    assert line.id is not None
    lifecycle.transfer_line(session, line_id=line.id, actor=STAFF, now=LATER)
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == line.msisdn)).one()
    assert number.status == "assigned"
    assert session.get(Sim, line.sim_id).status == "assigned"  # type: ignore[union-attr]


def test_activation_makes_the_sim_active(session: Session, world: World) -> None:
    line = make_line(session, world, status="pending")
    assert line.id is not None
    lifecycle.activate_line(session, line_id=line.id, actor=STAFF, now=LATER)
    assert session.get(Sim, line.sim_id).status == "active"  # type: ignore[union-attr]


def test_request_activation_writes_the_activate_event(session: Session, world: World) -> None:
    line = make_line(session, world, status="pending")
    assert line.id is not None
    lifecycle.request_activation(session, line_id=line.id, actor=STAFF, now=NOW)
    assert [e.action for e in _events(session, line.id)] == ["activate"]
    assert len(_audits(session, line.id)) == 1
    assert line.status == "pending"


@pytest.mark.parametrize("status", [s for s in LINE_STATUSES if s != "pending"])
def test_request_activation_of_a_line_not_pending_is_refused(
    session: Session, world: World, status: str
) -> None:
    line = make_line(session, world, status=status)
    assert line.id is not None
    with pytest.raises(LineStateError):
        lifecycle.request_activation(session, line_id=line.id, actor=STAFF, now=NOW)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "bad\x00"])
def test_suspension_needs_a_reason(session: Session, world: World, reason: str) -> None:
    line = make_line(session, world)
    assert line.id is not None
    with pytest.raises(InvalidInput):
        lifecycle.suspend_line(session, line_id=line.id, reason=reason, actor=STAFF, now=LATER)
    assert _events(session, line.id) == []


def test_plan_change_waits_for_renewal_and_repeats_are_no_ops(
    session: Session, world: World
) -> None:
    line = make_line(session, world)
    assert line.id is not None and world.other_plan.id is not None and world.plan.id is not None
    change = lifecycle.change_plan
    change(session, line_id=line.id, plan_id=world.other_plan.id, actor=STAFF, now=LATER)
    assert line.plan_id == world.plan.id and line.next_plan_id == world.other_plan.id
    change(session, line_id=line.id, plan_id=world.other_plan.id, actor=STAFF, now=LATER)
    assert len(_events(session, line.id)) == 1
    event = _events(session, line.id)[0]
    assert event.payload["next_plan"] == "MAX60" and event.payload["plan"] == "LITE30"
    # Choosing the current plan again cancels the change (and tells the host).
    change(session, line_id=line.id, plan_id=world.plan.id, actor=STAFF, now=LATER)
    assert line.next_plan_id is None
    assert len(_events(session, line.id)) == 2


def test_plan_change_to_an_unknown_plan_is_refused(session: Session, world: World) -> None:
    line = make_line(session, world)
    assert line.id is not None
    with pytest.raises(InvalidInput):
        lifecycle.change_plan(session, line_id=line.id, plan_id=999_999, actor=STAFF, now=LATER)


def test_a_refusal_names_the_current_status(session: Session, world: World) -> None:
    line = make_line(session, world, status="terminated")
    assert line.id is not None
    with pytest.raises(LineStateError, match="is terminated"):
        lifecycle.resume_line(session, line_id=line.id, reason="r", actor=STAFF, now=LATER)


def test_events_count_by_backend(session: Session, world: World) -> None:
    """Suspend, resume, terminate: three events in order, three audit records."""
    line = make_line(session, world)
    assert line.id is not None
    lifecycle.suspend_line(session, line_id=line.id, reason="a", actor=STAFF, now=LATER)
    lifecycle.resume_line(session, line_id=line.id, reason="b", actor=STAFF, now=LATER)
    lifecycle.terminate_line(
        session, line_id=line.id, reason="c", quarantine_days=0, actor=STAFF, now=LATER
    )
    assert [e.action for e in _events(session, line.id)] == ["suspend", "resume", "terminate"]
    total = session.exec(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.target_type == "line")
    ).one()
    assert total == 3
