"""The care jobs and notices: breaches flagged once and told to the supervisors, system
tickets opened once per dispute or dead event, and a reply's notice queued and retried."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

import app.care.jobs as care_jobs
from app.care import conversation, workflow
from app.care.breaches import flag_breaches
from app.care.models import Ticket
from app.care.system_tickets import open_system_tickets
from app.care.tickets import messages_of
from app.core.audit import AuditEntry
from app.core.db import Database
from app.notifications.mailer import MAX_ATTEMPTS, LogMailer, send_pending
from app.notifications.models import Notification
from app.provisioning.models import ProvisioningEvent
from tests.conftest import make_settings
from tests.factories import make_staff
from tests.unit.care.helpers import MONDAY_10, TZ, make_desk, open_complaint
from tests.unit.notifications.helpers import RENDERER, reread
from tests.unit.notifications.test_mailer import Broken, Recorder
from wholesale.models import SettlementDispute, SettlementRun


@pytest.fixture
def desk(session: Session):
    return make_desk(session)


def notices(session: Session, kind: str) -> list[Notification]:
    query = select(Notification).where(Notification.kind == kind).order_by(col(Notification.id))
    return list(session.exec(query))


# -- breaches ---------------------------------------------------------------------------------


def test_a_breach_is_flagged_once_and_told_to_each_active_admin(session, desk):
    boss = make_staff(session, role="admin", email="boss@example.com")
    idle = make_staff(session, role="admin", email="idle@example.com")
    idle.is_active = False
    session.add(idle)
    ticket = open_complaint(session, desk)
    before = flag_breaches(session, now=ticket.first_response_due_at - timedelta(seconds=1))
    assert before.as_dict() == {"first_response": 0, "resolution": 0, "notices": 0}

    report = flag_breaches(session, now=ticket.first_response_due_at)
    assert report.as_dict() == {"first_response": 1, "resolution": 0, "notices": 1}
    assert ticket.first_response_breached_at == ticket.first_response_due_at
    [notice] = notices(session, "sla_breach")
    assert notice.recipient == boss.email and notice.data["ref"] == ticket.ref
    assert notice.data["breach"] == "first_response"

    again = flag_breaches(session, now=ticket.first_response_due_at + timedelta(hours=1))
    assert again.as_dict() == {"first_response": 0, "resolution": 0, "notices": 0}

    later = flag_breaches(session, now=ticket.resolution_due_at)
    assert later.as_dict() == {"first_response": 0, "resolution": 1, "notices": 1}
    assert len(notices(session, "sla_breach")) == 2
    breaches = session.exec(
        select(AuditEntry.details).where(AuditEntry.action == "ticket.breach")
    ).all()
    assert [d["breach"] for d in breaches] == ["first_response", "resolution"]


def test_the_breach_notice_renders_in_both_languages(session, desk):
    make_staff(session, role="admin", email="boss@example.com")
    ticket = open_complaint(session, desk, category="billing_dispute")
    flag_breaches(session, now=ticket.first_response_due_at)
    [notice] = notices(session, "sla_breach")
    subject, body = RENDERER.render(kind="sla_breach", locale="en", data=notice.data)
    assert ticket.ref in subject and "first response" in subject
    assert "billing dispute" in body and "normal" in body
    zh_subject, zh_body = RENDERER.render(kind="sla_breach", locale="zh_Hans", data=notice.data)
    assert ticket.ref in zh_subject and zh_subject != subject and "账单争议" in zh_body


def test_a_ticket_waiting_for_the_customer_or_answered_in_time_does_not_breach(session, desk):
    waiting = open_complaint(session, desk)
    answered = open_complaint(session, desk)
    workflow.change_status(
        session,
        ticket_id=waiting.id,
        status="pending_customer",
        actor=desk.agent_actor,
        now=MONDAY_10 + timedelta(minutes=1),
        timezone=TZ,
    )
    conversation.staff_reply(
        session,
        ticket_id=answered.id,
        body="已处理",
        visibility="customer",
        actor=desk.agent_actor,
        now=MONDAY_10 + timedelta(minutes=1),
    )
    report = flag_breaches(session, now=answered.first_response_due_at + timedelta(hours=1))
    assert report.first_response == 0
    assert waiting.first_response_breached_at is None


def test_the_breach_job_runs_in_its_transaction(session, desk):
    ticket = open_complaint(session, desk)
    result = care_jobs.flag_sla_breaches(session, ticket.resolution_due_at)
    assert result == {"first_response": 1, "resolution": 1, "notices": 0}


# -- system tickets --------------------------------------------------------------------------


def _dispute(session: Session, desk, *, status: str = "open") -> SettlementDispute:
    host_id = desk.world.host.id
    run = SettlementRun(
        host_id=host_id,
        month="2026-11",
        kind="reconcile",
        total_minor=10_000,
        invoice_total_minor=10_650,
        discrepancies=1,
        csv_name="r.csv",
        csv_text="",
        json_name="r.json",
        json_text="",
        created_at=MONDAY_10,
    )
    session.add(run)
    session.flush()
    dispute = SettlementDispute(
        run_id=run.id,
        host_id=host_id,
        month="2026-11",
        service="data",
        our_quantity=1_048_576_000,
        invoice_quantity=1_100_000_000,
        our_amount_minor=10_000,
        invoice_amount_minor=10_650,
        status=status,
        created_at=MONDAY_10,
    )
    session.add(dispute)
    session.flush()
    return dispute


def _dead_event(session: Session, desk) -> ProvisioningEvent:
    event = ProvisioningEvent(
        line_id=desk.line.id,
        host_id=desk.world.host.id,
        action="suspend",
        payload={},
        status="dead",
        attempts=8,
        next_attempt_at=MONDAY_10,
        last_error="HTTP 503: busy",
        created_at=MONDAY_10,
    )
    session.add(event)
    session.flush()
    return event


def test_a_dispute_and_a_dead_event_each_open_one_system_ticket(session, desk):
    dispute = _dispute(session, desk)
    _dispute(session, desk, status="resolved")
    event = _dead_event(session, desk)
    report = open_system_tickets(session, now=MONDAY_10, timezone=TZ)
    assert report.as_dict() == {"disputes": 1, "provisioning": 1}
    again = open_system_tickets(session, now=MONDAY_10 + timedelta(minutes=10), timezone=TZ)
    assert again.as_dict() == {"disputes": 0, "provisioning": 0}

    billing = session.exec(select(Ticket).where(Ticket.source == f"dispute:{dispute.id}")).one()
    assert (billing.category, billing.channel, billing.customer_id) == (
        "billing_dispute",
        "system",
        None,
    )
    [note] = messages_of(session, ticket_id=billing.id)
    assert note.visibility == "internal"
    assert "100.00 CNY" in note.body and "106.50 CNY" in note.body and "6.50 CNY" in note.body
    fault = session.exec(select(Ticket).where(Ticket.source == f"provisioning:{event.id}")).one()
    assert (fault.category, fault.priority) == ("fault", "high")
    assert (fault.customer_id, fault.line_id) == (desk.customer.id, desk.line.id)
    assert "HTTP 503: busy" in messages_of(session, ticket_id=fault.id)[0].body


def test_the_system_ticket_job_opens_its_own_transaction(app, db: Database, session, desk):
    _dead_event(session, desk)
    session.commit()
    settings = make_settings("sqlite://", app.instance_path)
    assert care_jobs.open_system_tickets(db, settings, MONDAY_10) == {
        "disputes": 0,
        "provisioning": 1,
    }
    assert care_jobs.open_system_tickets(db, settings, MONDAY_10) == {
        "disputes": 0,
        "provisioning": 0,
    }


# -- a reply's notice ----------------------------------------------------------------------------


def test_a_reply_is_notified_in_the_tickets_locale_once_and_retried(db: Database, session, desk):
    ticket = open_complaint(session, desk, locale="zh_Hans")
    message = conversation.staff_reply(
        session,
        ticket_id=ticket.id,
        body="我们已重置您的网络设置。",
        visibility="customer",
        actor=desk.agent_actor,
        now=MONDAY_10 + timedelta(minutes=5),
    )
    conversation.staff_reply(
        session,
        ticket_id=ticket.id,
        body="内部备注",
        visibility="internal",
        actor=desk.agent_actor,
        now=MONDAY_10 + timedelta(minutes=6),
    )
    assert not conversation.notify_reply(session, ticket, message, now=MONDAY_10)  # once
    session.commit()
    [notice] = notices(session, "ticket_reply")
    assert (notice.recipient, notice.locale, notice.customer_id) == (
        "kunde@example.com",
        "zh_Hans",
        desk.customer.id,
    )
    assert notice.data["ref"] == ticket.ref and "重置" in notice.data["excerpt"]

    broken = Broken()
    now = MONDAY_10 + timedelta(minutes=5)
    assert send_pending(db, now=now, renderer=RENDERER, mailer=broken).failed == 1
    row = reread(session, notice.id)
    assert row.status == "pending" and row.attempts == 1
    recorder = Recorder()
    report = send_pending(db, now=row.next_attempt_at, renderer=RENDERER, mailer=recorder)
    assert report.sent == 1 and MAX_ATTEMPTS > 1
    [sent] = recorder.sent
    assert ticket.ref in sent.subject and "重置" in sent.body
    assert reread(session, notice.id).status == "sent"


def test_a_customer_without_e_mail_gets_the_reply_by_sms_in_the_log(db, session, tmp_path):
    desk = make_desk(session, code="SMS", email=None)
    ticket = open_complaint(session, desk)
    conversation.staff_reply(
        session,
        ticket_id=ticket.id,
        body="Fixed.",
        visibility="customer",
        actor=desk.agent_actor,
        now=MONDAY_10,
    )
    session.commit()
    [notice] = notices(session, "ticket_reply")
    assert (notice.channel, notice.recipient) == ("sms", desk.line.msisdn)
    email, sms = Recorder(), LogMailer(tmp_path / "outbox.jsonl")
    send_pending(db, now=MONDAY_10, renderer=RENDERER, mailer=email, sms_mailer=sms)
    assert email.sent == [] and desk.line.msisdn in (tmp_path / "outbox.jsonl").read_text()
