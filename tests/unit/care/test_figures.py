"""Ticket figures checked against counts made by hand on a small set of tickets."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session

from app.care import conversation, workflow
from app.care.figures import open_tickets_by_status, sla_attainment, tickets_opened_per_day
from tests.unit.care.helpers import MONDAY_10, TZ, make_desk, open_complaint
from tests.unit.care.test_sla import at


def test_volume_open_tickets_and_attainment(session: Session):
    desk = make_desk(session)
    # Monday: three tickets; Tuesday 23:30 local (15:30 UTC): one; Wednesday none.
    on_time = open_complaint(session, desk)
    late = open_complaint(session, desk, now=MONDAY_10 + timedelta(minutes=1))
    open_complaint(session, desk, now=MONDAY_10 + timedelta(minutes=2))  # young
    waiting = open_complaint(session, desk, now=at("2026-12-08 23:30"))

    def answer(ticket, when):
        conversation.staff_reply(
            session,
            ticket_id=ticket.id,
            body="好的",
            visibility="customer",
            actor=desk.agent_actor,
            now=when,
        )

    answer(on_time, MONDAY_10 + timedelta(hours=1))
    workflow.change_status(
        session,
        ticket_id=on_time.id,
        status="resolved",
        actor=desk.agent_actor,
        now=MONDAY_10 + timedelta(hours=2),
        timezone=TZ,
    )
    answer(late, late.first_response_due_at + timedelta(minutes=1))
    workflow.change_status(
        session,
        ticket_id=waiting.id,
        status="pending_customer",
        actor=desk.agent_actor,
        now=at("2026-12-09 09:00"),
        timezone=TZ,
    )

    days = tickets_opened_per_day(
        session, first=date(2026, 12, 7), last=date(2026, 12, 9), timezone=TZ
    )
    assert days == [(date(2026, 12, 7), 3), (date(2026, 12, 8), 1), (date(2026, 12, 9), 0)]
    assert open_tickets_by_status(session) == {"open": 2, "pending_customer": 1, "escalated": 0}

    # Wednesday noon: `young`'s first response (due Monday 18:00) is missed; its
    # resolution is not due yet. `waiting` is paused: neither counts.
    now = at("2026-12-09 12:00")
    figures = sla_attainment(
        session, first=date(2026, 12, 7), last=date(2026, 12, 9), timezone=TZ, now=now
    )
    assert figures.as_dict() == {
        "first_response_met": 1,  # on_time
        "first_response_total": 3,  # on_time, late, young
        "resolution_met": 1,  # on_time
        "resolution_total": 1,
        "both_met": 1,
        "both_total": 1,
    }
    assert figures.share(1, 3) == 1 / 3 and figures.share(0, 0) is None
    tuesday = sla_attainment(
        session, first=date(2026, 12, 8), last=date(2026, 12, 8), timezone=TZ, now=now
    )
    assert tuesday.first_response_total == 0
