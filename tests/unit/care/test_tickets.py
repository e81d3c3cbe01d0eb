"""Tickets: opening with SLA due times, every status change and refusal, pauses,
reopening, replies and first response, assignment, regulator escalation,
satisfaction, lists, SLA targets, and the constraints behind them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.care import conversation, targets, workflow
from app.care.errors import SatisfactionRefused, TicketInvalid, TicketNotFound, TicketState
from app.care.models import STATUSES, Ticket, TicketMessage
from app.care.tickets import (
    TicketFilter,
    TicketSourceTaken,
    get_ticket_by_ref,
    list_tickets,
    messages_of,
    open_ticket,
)
from app.core.audit import Actor, AuditEntry
from app.core.errors import InvalidInput
from app.subscribers import services as subscribers
from tests.factories import make_staff
from tests.unit.care.helpers import MONDAY_10, TZ, make_desk, open_complaint
from tests.unit.care.test_sla import at, local

SYSTEM = Actor.system("test")


@pytest.fixture
def desk(session: Session):
    return make_desk(session)


def audits(session: Session, ticket: Ticket) -> list[str]:
    rows = session.exec(
        select(AuditEntry)
        .where(AuditEntry.target_type == "ticket", AuditEntry.target_id == ticket.ref)
        .order_by(col(AuditEntry.id))
    )
    return [row.action for row in rows]


def set_status(session, desk, ticket, status, now, reason=""):
    return workflow.change_status(
        session,
        ticket_id=ticket.id,
        status=status,
        actor=desk.agent_actor,
        now=now,
        timezone=TZ,
        reason=reason,
    )


def reply(session, desk, ticket, now, visibility="customer", body="您好，我们在处理。"):
    return conversation.staff_reply(
        session,
        ticket_id=ticket.id,
        body=body,
        visibility=visibility,
        actor=desk.agent_actor,
        now=now,
    )


def customer_says(session, desk, ticket, now, body="还是没有信号。"):
    return conversation.customer_reply(
        session,
        ticket_id=ticket.id,
        customer_id=desk.customer.id,
        body=body,
        actor=desk.customer_actor,
        now=now,
        timezone=TZ,
    )


# -- opening -------------------------------------------------------------------------------


def test_a_complaint_opens_with_its_ref_due_times_message_and_audit(session, desk):
    ticket = open_complaint(session, desk)
    assert ticket.ref == f"T-{ticket.id:06d}"
    assert ticket.status == "open" and ticket.priority == "normal"
    # Complaint, normal: 8 working hours, 5 working days, from Monday 10:00.
    assert local(ticket.first_response_due_at) == "Mon 2026-12-07 18:00"
    assert local(ticket.resolution_due_at) == "Mon 2026-12-14 10:00"
    assert not ticket.sla_around_the_clock
    [message] = messages_of(session, ticket_id=ticket.id)
    assert (message.author_kind, message.visibility) == ("customer", "customer")
    assert audits(session, ticket) == ["ticket.open"]
    assert get_ticket_by_ref(session, ticket.ref.lower()).id == ticket.id


def test_an_urgent_ticket_runs_around_the_clock(session, desk):
    friday_evening = at("2026-12-04 17:30")
    ticket = open_complaint(session, desk, now=friday_evening, priority="urgent")
    assert ticket.sla_around_the_clock
    assert local(ticket.first_response_due_at) == "Fri 2026-12-04 18:30"
    assert local(ticket.resolution_due_at) == "Sat 2026-12-05 01:30"


def test_a_ticket_takes_the_target_as_edited_and_keeps_it(session, desk):
    admin = Actor("staff", 1, "admin@example.com")
    targets.update_sla_target(
        session,
        category="inquiry",
        priority="low",
        first_response_minutes=30,
        resolution_minutes=60,
        around_the_clock=True,
        actor=admin,
        now=MONDAY_10,
    )
    ticket = open_complaint(session, desk, category="inquiry", priority="low")
    assert ticket.first_response_due_at == MONDAY_10 + timedelta(minutes=30)
    targets.update_sla_target(
        session,
        category="inquiry",
        priority="low",
        first_response_minutes=600,
        resolution_minutes=6000,
        around_the_clock=False,
        actor=admin,
        now=MONDAY_10,
    )
    session.refresh(ticket)
    assert ticket.first_response_due_at == MONDAY_10 + timedelta(minutes=30)
    actions = session.exec(select(AuditEntry.action).where(AuditEntry.target_type == "sla_target"))
    assert list(actions) == ["sla_target.update", "sla_target.update"]


@pytest.mark.parametrize(
    ("first", "resolution", "field"),
    [
        (0, 60, "first_response_minutes"),
        (60, 30, "resolution_minutes"),
        (60, 30 * 24 * 60 + 1, "resolution_minutes"),
    ],
)
def test_sla_targets_out_of_range_are_refused(session, first, resolution, field):
    with pytest.raises(TicketInvalid) as refused:
        targets.update_sla_target(
            session,
            category="fault",
            priority="high",
            first_response_minutes=first,
            resolution_minutes=resolution,
            around_the_clock=True,
            actor=SYSTEM,
            now=MONDAY_10,
        )
    assert refused.value.field == field


def test_the_seeded_targets_are_the_documented_defaults(session):
    from app.care.models import DEFAULT_SLA_TARGETS

    rows = targets.list_sla_targets(session)
    assert len(rows) == 20
    assert all(row.id is not None for row in rows)
    assert {
        (r.category, r.priority): (
            r.first_response_minutes,
            r.resolution_minutes,
            r.around_the_clock,
        )
        for r in rows
    } == DEFAULT_SLA_TARGETS


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"category": "gossip"}, "category"),
        ({"channel": "fax"}, "channel"),
        ({"priority": "whenever"}, "priority"),
        ({"subject": ""}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"subject": "bad\x07bell"}, "subject"),
        ({"body": "   "}, "body"),
        ({"body": "x" * 10_001}, "body"),
        ({"body": "bad\x00nul"}, "body"),
        ({"customer_id": None, "line_id": None}, "customer"),
    ],
)
def test_bad_tickets_are_refused(session, desk, overrides, field):
    with pytest.raises(InvalidInput) as refused:
        open_complaint(session, desk, **overrides)
    assert refused.value.field == field


def test_a_line_of_another_customer_is_refused(session, desk):
    other = subscribers.create_customer(session, ref="C-OTHER", name="Other", now=MONDAY_10)
    with pytest.raises(TicketInvalid) as refused:
        open_complaint(session, desk, customer_id=other.id)
    assert refused.value.field == "line"


def test_a_body_of_ten_thousand_characters_with_line_ends_is_kept(session, desk):
    body = ("第一行\r\n第二行\t" + "字" * 10_000)[:10_000]
    ticket = open_complaint(session, desk, body=body)
    [message] = messages_of(session, ticket_id=ticket.id)
    assert message.body == body.replace("\r\n", "\n")


def test_one_ticket_per_source(session, desk):
    values = {
        "category": "fault",
        "channel": "system",
        "subject": "Provisioning failed",
        "body": "Dead letter.",
        "actor": SYSTEM,
        "now": MONDAY_10,
        "timezone": TZ,
        "source": "provisioning:1",
    }
    first = open_ticket(session, **values)
    with pytest.raises(TicketSourceTaken):
        open_ticket(session, **values)
    assert session.exec(select(Ticket).where(Ticket.source == "provisioning:1")).all() == [first]
    [message] = messages_of(session, ticket_id=first.id)
    assert (message.author_kind, message.visibility) == ("system", "internal")


# -- status changes --------------------------------------------------------------------------

ALLOWED = {
    ("open", "pending_customer"),
    ("open", "escalated"),
    ("open", "resolved"),
    ("pending_customer", "open"),
    ("pending_customer", "escalated"),
    ("pending_customer", "resolved"),
    ("escalated", "open"),
    ("escalated", "resolved"),
    ("resolved", "closed"),
    ("resolved", "open"),
}
# How to bring a fresh ticket to each status.
PATHS = {
    "open": [],
    "pending_customer": ["pending_customer"],
    "escalated": ["escalated"],
    "resolved": ["resolved"],
    "closed": ["resolved", "closed"],
}


@pytest.mark.parametrize("before", STATUSES)
@pytest.mark.parametrize("after", STATUSES)
def test_every_status_change_is_allowed_or_refused_as_the_table_says(session, desk, before, after):
    ticket = open_complaint(session, desk)
    now = MONDAY_10
    for step in PATHS[before]:
        now += timedelta(minutes=10)
        set_status(session, desk, ticket, step, now)
    now += timedelta(minutes=10)
    if (before, after) in ALLOWED:
        changed = set_status(session, desk, ticket, after, now, reason="asked")
        assert changed.status == after
        assert audits(session, ticket)[-1] == "ticket.status"
    else:
        with pytest.raises(TicketState):
            set_status(session, desk, ticket, after, now)
        session.refresh(ticket)
        assert ticket.status == before


def test_an_unknown_status_is_refused(session, desk):
    ticket = open_complaint(session, desk)
    with pytest.raises(TicketInvalid):
        set_status(session, desk, ticket, "forgotten", MONDAY_10)


def test_waiting_for_the_customer_over_a_weekend_moves_the_due_times(session, desk):
    thursday = at("2026-12-03 16:00")
    ticket = open_complaint(session, desk, now=thursday)
    assert local(ticket.resolution_due_at) == "Thu 2026-12-10 16:00"
    reply(session, desk, ticket, at("2026-12-04 16:30"))
    set_status(session, desk, ticket, "pending_customer", at("2026-12-04 17:00"))
    assert ticket.paused_at is not None
    customer_says(session, desk, ticket, at("2026-12-07 10:00"))
    session.refresh(ticket)
    # Friday 17–18 and Monday 9–10: two working hours paused.
    assert ticket.status == "open" and ticket.paused_at is None
    assert ticket.paused_seconds == 2 * 3600
    assert local(ticket.resolution_due_at) == "Thu 2026-12-10 18:00"
    # The first response was given before the pause: its due time stays.
    assert local(ticket.first_response_due_at) == "Fri 2026-12-04 15:00"


def test_staff_resuming_a_waiting_ticket_moves_unanswered_due_times_too(session, desk):
    ticket = open_complaint(session, desk)
    assert local(ticket.first_response_due_at) == "Mon 2026-12-07 18:00"
    set_status(session, desk, ticket, "pending_customer", MONDAY_10 + timedelta(hours=1))
    set_status(session, desk, ticket, "open", MONDAY_10 + timedelta(hours=3))
    # Two working hours paused: 18:00 moves to Tuesday 11:00.
    assert local(ticket.first_response_due_at) == "Tue 2026-12-08 11:00"


def test_reopening_within_seven_days_is_counted_and_later_refused(session, desk):
    ticket = open_complaint(session, desk)
    resolved = MONDAY_10 + timedelta(hours=2)
    set_status(session, desk, ticket, "resolved", resolved)
    set_status(session, desk, ticket, "open", resolved + timedelta(days=7))
    assert ticket.reopen_count == 1 and ticket.resolved_at is None
    set_status(session, desk, ticket, "resolved", resolved + timedelta(days=8))
    with pytest.raises(TicketState, match="more than 7 days"):
        set_status(session, desk, ticket, "open", resolved + timedelta(days=15, seconds=1))
    with pytest.raises(TicketState):
        customer_says(session, desk, ticket, resolved + timedelta(days=15, seconds=1))


def test_a_customer_reply_reopens_a_recently_resolved_ticket(session, desk):
    ticket = open_complaint(session, desk)
    set_status(session, desk, ticket, "resolved", MONDAY_10 + timedelta(hours=1))
    customer_says(session, desk, ticket, MONDAY_10 + timedelta(days=2))
    assert ticket.status == "open" and ticket.reopen_count == 1


def test_nobody_writes_on_a_closed_ticket(session, desk):
    ticket = open_complaint(session, desk)
    set_status(session, desk, ticket, "resolved", MONDAY_10 + timedelta(hours=1))
    set_status(session, desk, ticket, "closed", MONDAY_10 + timedelta(hours=2))
    with pytest.raises(TicketState, match="closed"):
        reply(session, desk, ticket, MONDAY_10 + timedelta(hours=3))
    with pytest.raises(TicketState, match="closed"):
        customer_says(session, desk, ticket, MONDAY_10 + timedelta(hours=3))


def test_a_late_resolution_is_flagged_once_when_it_happens(session, desk):
    ticket = open_complaint(session, desk)
    late = ticket.resolution_due_at + timedelta(minutes=1)
    set_status(session, desk, ticket, "resolved", late)
    assert ticket.resolution_breached_at == late


# -- replies ------------------------------------------------------------------------------------


def test_the_first_customer_visible_staff_reply_is_the_first_response(session, desk):
    ticket = open_complaint(session, desk)
    reply(session, desk, ticket, MONDAY_10 + timedelta(minutes=5), visibility="internal")
    assert ticket.first_responded_at is None
    answered = MONDAY_10 + timedelta(minutes=20)
    reply(session, desk, ticket, answered)
    reply(session, desk, ticket, answered + timedelta(hours=1))
    assert ticket.first_responded_at == answered
    assert ticket.first_response_breached_at is None
    assert audits(session, ticket) == [
        "ticket.open",
        "ticket.reply",
        "ticket.reply",
        "ticket.reply",
    ]


def test_a_late_first_response_is_flagged(session, desk):
    ticket = open_complaint(session, desk)
    late = ticket.first_response_due_at + timedelta(seconds=1)
    reply(session, desk, ticket, late)
    assert ticket.first_response_breached_at == late


def test_on_a_system_ticket_any_first_staff_message_is_the_first_response(session, desk):
    ticket = open_ticket(
        session,
        category="fault",
        channel="system",
        subject="Provisioning failed",
        body="Dead letter.",
        actor=SYSTEM,
        now=MONDAY_10,
        timezone=TZ,
        source="provisioning:9",
    )
    reply(session, desk, ticket, MONDAY_10 + timedelta(minutes=1), visibility="internal")
    assert ticket.first_responded_at == MONDAY_10 + timedelta(minutes=1)


def test_a_customer_reaches_only_their_own_tickets(session, desk):
    ticket = open_complaint(session, desk)
    other = subscribers.create_customer(session, ref="C-ELSE", name="Else", now=MONDAY_10)
    with pytest.raises(TicketNotFound):
        get_ticket_by_ref(session, ticket.ref, customer_id=other.id)
    with pytest.raises(TicketNotFound):
        conversation.customer_reply(
            session,
            ticket_id=ticket.id,
            customer_id=other.id,
            body="不是我的",
            actor=Actor("subscriber", None, "else"),
            now=MONDAY_10,
            timezone=TZ,
        )
    assert get_ticket_by_ref(session, ticket.ref, customer_id=desk.customer.id).id == ticket.id


def test_a_system_ticket_about_a_customers_line_is_not_theirs_to_see(session, desk):
    ticket = open_ticket(
        session,
        category="fault",
        channel="system",
        subject="Provisioning failed",
        body="Dead letter.",
        actor=SYSTEM,
        now=MONDAY_10,
        timezone=TZ,
        customer_id=desk.customer.id,
        line_id=desk.line.id,
        source="provisioning:10",
    )
    with pytest.raises(TicketNotFound):
        get_ticket_by_ref(session, ticket.ref, customer_id=desk.customer.id)
    mine = TicketFilter(customer_id=desk.customer.id, exclude_system=True)
    assert list_tickets(session, where=mine)[1] == 0


def test_a_customer_cannot_write_an_internal_note(session, desk):
    ticket = open_complaint(session, desk)
    from app.care.tickets import add_message

    with pytest.raises(TicketInvalid):
        add_message(
            session,
            ticket,
            body="x",
            visibility="internal",
            actor=desk.customer_actor,
            now=MONDAY_10,
        )


# -- assignment, escalation, satisfaction -----------------------------------------------------


def test_bulk_assignment_is_audited_per_ticket_and_idempotent(session, desk):
    tickets = [open_complaint(session, desk) for _ in range(3)]
    ids = [t.id for t in tickets]
    assert (
        workflow.assign_tickets(
            session,
            ticket_ids=ids,
            assignee_id=desk.agent.id,
            actor=desk.agent_actor,
            now=MONDAY_10,
        )
        == 3
    )
    assert (
        workflow.assign_tickets(
            session,
            ticket_ids=ids,
            assignee_id=desk.agent.id,
            actor=desk.agent_actor,
            now=MONDAY_10,
        )
        == 0
    )
    assert all(t.assignee_id == desk.agent.id for t in tickets)
    assert audits(session, tickets[0]) == ["ticket.open", "ticket.assign"]
    mine = list_tickets(session, where=TicketFilter(assignee_id=desk.agent.id))
    assert mine[1] == 3 and mine[0][0].assignee_email == desk.agent.email
    assert list_tickets(session, where=TicketFilter(unassigned=True))[1] == 0


@pytest.mark.parametrize("role", ["finance", "wholesale", "auditor"])
def test_tickets_go_only_to_staff_who_may_work_them(session, desk, role):
    ticket = open_complaint(session, desk)
    other = make_staff(session, role=role)
    with pytest.raises(TicketInvalid):
        workflow.assign_tickets(
            session, ticket_ids=[ticket.id], assignee_id=other.id, actor=SYSTEM, now=MONDAY_10
        )


def test_assignment_refuses_no_tickets_and_unknown_ones(session, desk):
    with pytest.raises(TicketInvalid):
        workflow.assign_tickets(
            session, ticket_ids=[], assignee_id=None, actor=SYSTEM, now=MONDAY_10
        )
    with pytest.raises(TicketNotFound):
        workflow.assign_tickets(
            session, ticket_ids=[2**31 - 1], assignee_id=None, actor=SYSTEM, now=MONDAY_10
        )


def test_regulator_escalation_records_reference_and_date(session, desk):
    ticket = open_complaint(session, desk)
    set_status(session, desk, ticket, "pending_customer", MONDAY_10 + timedelta(hours=1))
    workflow.escalate_to_regulator(
        session,
        ticket_id=ticket.id,
        reference="MIIT-2026-0042",
        escalated_on=date(2026, 12, 7),
        actor=desk.agent_actor,
        now=MONDAY_10 + timedelta(hours=2),
        timezone=TZ,
    )
    assert ticket.status == "escalated" and ticket.paused_at is None
    assert (ticket.regulator_ref, ticket.regulator_escalated_on) == (
        "MIIT-2026-0042",
        date(2026, 12, 7),
    )
    assert audits(session, ticket)[-1] == "ticket.escalate"


@pytest.mark.parametrize(
    ("reference", "day", "field"),
    [
        ("", date(2026, 12, 7), "reference"),
        ("R" * 61, date(2026, 12, 7), "reference"),
        ("MIIT-1", date(2026, 12, 8), "date"),
    ],
)
def test_regulator_escalation_refusals(session, desk, reference, day, field):
    ticket = open_complaint(session, desk)
    with pytest.raises(InvalidInput) as refused:
        workflow.escalate_to_regulator(
            session,
            ticket_id=ticket.id,
            reference=reference,
            escalated_on=day,
            actor=desk.agent_actor,
            now=MONDAY_10,
            timezone=TZ,
        )
    assert refused.value.field == field


def rate(session, desk, ticket, score, now=MONDAY_10 + timedelta(hours=3), customer=None):
    return workflow.rate_ticket(
        session,
        ticket_id=ticket.id,
        customer_id=customer or desk.customer.id,
        score=score,
        actor=desk.customer_actor,
        now=now,
    )


def test_satisfaction_only_after_resolution_once_by_the_customer(session, desk):
    ticket = open_complaint(session, desk)
    with pytest.raises(SatisfactionRefused):
        rate(session, desk, ticket, 5)
    set_status(session, desk, ticket, "resolved", MONDAY_10 + timedelta(hours=2))
    other = subscribers.create_customer(session, ref="C-RATE", name="Rater", now=MONDAY_10)
    with pytest.raises(TicketNotFound):
        rate(session, desk, ticket, 5, customer=other.id)
    for bad in (0, 6, True):
        with pytest.raises(TicketInvalid):
            rate(session, desk, ticket, bad)
    rate(session, desk, ticket, 4)
    assert ticket.satisfaction == 4
    with pytest.raises(SatisfactionRefused):
        rate(session, desk, ticket, 5)
    assert audits(session, ticket)[-1] == "ticket.rate"


# -- lists ----------------------------------------------------------------------------------------


def test_lists_filter_and_page(session, desk):
    first = open_complaint(session, desk, category="fault", priority="high")
    second = open_complaint(session, desk, now=MONDAY_10 + timedelta(minutes=1))
    third = open_complaint(session, desk, category="inquiry", now=MONDAY_10 + timedelta(minutes=2))
    set_status(session, desk, third, "resolved", MONDAY_10 + timedelta(hours=1))
    second.resolution_breached_at = MONDAY_10
    session.add(second)
    session.flush()
    mine = TicketFilter(customer_id=desk.customer.id)
    rows, total = list_tickets(session, where=mine)
    assert total == 3 and [r.ticket.id for r in rows] == [third.id, second.id, first.id]
    assert rows[0].customer_ref == desk.customer.ref
    page, total = list_tickets(session, where=mine, limit=2, offset=2)
    assert total == 3 and [r.ticket.id for r in page] == [first.id]
    live = TicketFilter(customer_id=desk.customer.id, statuses=("open",))
    assert [r.ticket.id for r in list_tickets(session, where=live, order="due")[0]] == [
        first.id,
        second.id,
    ]
    faults = TicketFilter(customer_id=desk.customer.id, category="fault")
    assert [r.ticket.id for r in list_tickets(session, where=faults)[0]] == [first.id]
    breached = TicketFilter(customer_id=desk.customer.id, breached=True)
    assert [r.ticket.id for r in list_tickets(session, where=breached)[0]] == [second.id]
    on_time = TicketFilter(customer_id=desk.customer.id, breached=False)
    assert list_tickets(session, where=on_time)[1] == 2


# -- constraints -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("satisfaction", 6),
        ("status", "lost"),
        ("paused_at", datetime(2026, 12, 7, tzinfo=MONDAY_10.tzinfo)),
        ("regulator_ref", "MIIT-1"),
        ("reopen_count", -1),
        ("first_response_due_at", datetime(2027, 1, 1, tzinfo=MONDAY_10.tzinfo)),
    ],
)
def test_the_database_refuses_inconsistent_tickets(session, desk, field, value):
    ticket = open_complaint(session, desk)
    setattr(ticket, field, value)
    if field == "satisfaction":
        ticket.satisfaction_at = MONDAY_10
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(ticket)
        session.flush()


def test_the_database_refuses_an_internal_customer_message(session, desk):
    ticket = open_complaint(session, desk)
    message = TicketMessage(
        ticket_id=ticket.id,
        author_kind="customer",
        body="x",
        visibility="internal",
        created_at=MONDAY_10,
    )
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(message)
        session.flush()
