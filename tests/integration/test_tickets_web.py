"""Tickets in the console and in self-care: the queue with filters, countdowns and
bulk assignment, a ticket's page and its forms, attachments up and down, the SLA
targets, the 360° view — and who may do what: care works tickets, the auditor reads
everything and changes nothing, finance and wholesale see no tickets, and a
subscriber sees only their own."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.auth.models import SubscriberAccount
from app.care import conversation, workflow
from app.care.attachments import Upload
from app.care.models import Ticket, TicketAttachment
from app.care.tickets import messages_of, open_ticket
from app.charging.periods import open_period
from app.core.audit import Actor, AuditEntry
from app.notifications.models import Notification
from app.subscribers.models import Customer, Line
from app.subscribers.services import create_customer
from tests.conftest import csrf_token
from tests.factories import PASSWORD, login_staff, make_staff, make_subscriber
from tests.unit.care.test_attachments import HTML, PNG, TEXT
from tests.unit.subscribers.helpers import World, make_line, make_world

TZ = "Asia/Shanghai"
SYSTEM = Actor.system("test")


def now() -> datetime:
    # The pages read the real clock.
    return datetime.now(UTC)


@dataclass
class Shop:
    world: World
    customer: Customer
    line: Line
    account: SubscriberAccount


@pytest.fixture
def shop(session: Session) -> Shop:
    world = make_world(session, code="TKT")
    account = make_subscriber(session, email="zhang@example.com")
    customer = world.customer
    customer.subscriber_account_id = account.id
    customer.email = account.email
    session.add(customer)
    line = make_line(session, world, now=now() - timedelta(days=2))
    open_period(session, line=line, plan=world.plan, start=now() - timedelta(days=1), now=now())
    session.commit()
    return Shop(world, customer, line, account)


def staff_client(app: Any, session: Session, role: str) -> Any:
    client = app.test_client()
    client.set_cookie("mvno_lang", "en")
    make_staff(session, role=role, email=f"{role}-tickets@example.com")
    session.commit()
    login_staff(client, f"{role}-tickets@example.com")
    return client


def subscriber_login(client: Any, email: str) -> None:
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(client, "/login")},
    )
    assert response.status_code == 302


def complaint(session: Session, shop: Shop, **overrides: Any) -> Ticket:
    values: dict[str, Any] = {
        "category": "complaint",
        "channel": "self_care",
        "subject": "信号很差",
        "body": "家里没有信号。",
        "actor": Actor("subscriber", shop.account.id, shop.account.email),
        "now": now(),
        "timezone": TZ,
        "customer_id": shop.customer.id,
        "line_id": shop.line.id,
        **overrides,
    }
    ticket = open_ticket(session, **values)
    session.commit()
    return ticket


def token(client: Any, path: str) -> str:
    return csrf_token(client, path)


# -- the console ---------------------------------------------------------------------------


def test_care_opens_a_ticket_for_a_phone_call_by_the_customers_number(app, session, shop):
    care = staff_client(app, session, "care")
    page = care.get("/console/tickets/new")
    assert page.status_code == 200 and 'maxlength="200"' in page.get_data(as_text=True)
    response = care.post(
        "/console/tickets/new",
        data={
            "csrf_token": token(care, "/console/tickets/new"),
            "customer": shop.line.msisdn,
            "channel": "phone",
            "category": "fault",
            "priority": "high",
            "subject": "No data since this morning",
            "body": "Customer called: no data on the line.",
            "attachments": (io.BytesIO(PNG), "screen.png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    ticket = session.exec(select(Ticket).order_by(col(Ticket.id).desc())).first()
    assert (ticket.channel, ticket.line_id, ticket.customer_id) == (
        "phone",
        shop.line.id,
        shop.customer.id,
    )
    assert ticket.sla_around_the_clock  # a high-priority fault runs around the clock
    page = care.get(response.headers["Location"]).get_data(as_text=True)
    assert "No data since this morning" in page and "screen.png" in page


def test_an_unknown_customer_is_refused_beside_the_field(app, session, shop):
    care = staff_client(app, session, "care")
    response = care.post(
        "/console/tickets/new",
        data={
            "csrf_token": token(care, "/console/tickets/new"),
            "customer": "C-NOPE",
            "channel": "phone",
            "category": "inquiry",
            "priority": "normal",
            "subject": "x",
            "body": "y",
        },
    )
    assert response.status_code == 404
    assert "No customer C-NOPE." in response.get_data(as_text=True)


def test_the_queue_filters_counts_down_and_assigns_in_bulk(app, session, shop):
    first = complaint(session, shop)
    second = complaint(session, shop, category="fault", subject="断网")
    resolved = complaint(session, shop, subject="已解决的")
    workflow.change_status(
        session, ticket_id=resolved.id, status="resolved", actor=SYSTEM, now=now(), timezone=TZ
    )
    overdue = complaint(session, shop, subject="过期的", now=now() - timedelta(days=10))
    session.commit()
    care = staff_client(app, session, "care")
    page = care.get("/console/tickets").get_data(as_text=True)
    assert first.ref in page and second.ref in page and resolved.ref not in page
    assert re.search(r'data-sla="overdue">overdue by \d+ d', page)
    assert re.search(r'data-sla="running">\d+ h \d+ min left|data-sla="running">\d+ d', page)
    faults = care.get("/console/tickets?category=fault").get_data(as_text=True)
    assert second.ref in faults and first.ref not in faults
    everything = care.get("/console/tickets?status=all").get_data(as_text=True)
    assert resolved.ref in everything

    response = care.post(
        "/console/tickets/assign",
        data={
            "csrf_token": token(care, "/console/tickets"),
            "ticket": [str(first.id), str(second.id)],
            "assignee": str(_staff_id(session, "care-tickets@example.com")),
            "next": "/console/tickets?category=fault",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("category=fault")
    session.expire_all()
    assert session.get(Ticket, first.id).assignee_id == session.get(Ticket, second.id).assignee_id
    mine = care.get("/console/tickets?assignee=me").get_data(as_text=True)
    assert first.ref in mine and overdue.ref not in mine
    nobody = care.get("/console/tickets?assignee=none").get_data(as_text=True)
    assert overdue.ref in nobody and first.ref not in nobody
    assigns = session.exec(select(AuditEntry).where(AuditEntry.action == "ticket.assign")).all()
    assert len(assigns) == 2


def _staff_id(session: Session, email: str) -> int:
    from app.auth.models import StaffUser

    return session.exec(select(StaffUser.id).where(StaffUser.email == email)).one()


def test_breached_filter(app, session, shop):
    late = complaint(session, shop, now=now() - timedelta(days=10))
    fresh = complaint(session, shop)
    from app.care.breaches import flag_breaches

    flag_breaches(session, now=now())
    session.commit()
    care = staff_client(app, session, "care")
    breached = care.get("/console/tickets?breach=yes").get_data(as_text=True)
    assert late.ref in breached and fresh.ref not in breached
    fine = care.get("/console/tickets?breach=no").get_data(as_text=True)
    assert fresh.ref in fine and late.ref not in fine


def test_a_reply_with_an_attachment_is_sent_notified_and_downloadable(app, session, shop):
    ticket = complaint(session, shop)
    care = staff_client(app, session, "care")
    path = f"/console/tickets/{ticket.ref}"
    response = care.post(
        f"{path}/reply",
        data={
            "csrf_token": token(care, path),
            "visibility": "customer",
            "body": "请重启手机后再试。",
            "attachments": [(io.BytesIO(TEXT), "steps.txt"), (io.BytesIO(b""), "")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    [attachment] = session.exec(select(TicketAttachment)).all()
    download = care.get(f"{path}/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data == TEXT
    assert download.mimetype == "text/plain"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    [notice] = session.exec(select(Notification).where(Notification.kind == "ticket_reply")).all()
    assert notice.recipient == shop.account.email and notice.locale == "zh_Hans"
    session.expire_all()
    assert session.get(Ticket, ticket.id).first_responded_at is not None


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([(HTML, "evil.png")], "evil.png is not a PDF, PNG, JPEG or plain text file."),
        ([(PNG, f"p{n}.png") for n in range(6)], "At most 5 files"),
        ([(PNG + b"\x00" * (5 * 1024 * 1024), "big.png")], "larger than 5 MiB"),
    ],
)
def test_bad_attachments_are_refused_and_nothing_is_kept(app, session, shop, files, words):
    ticket = complaint(session, shop)
    care = staff_client(app, session, "care")
    path = f"/console/tickets/{ticket.ref}"
    response = care.post(
        f"{path}/reply",
        data={
            "csrf_token": token(care, path),
            "visibility": "customer",
            "body": "See attached.",
            "attachments": [(io.BytesIO(content), name) for content, name in files],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert words in response.get_data(as_text=True)
    session.expire_all()
    assert session.exec(select(TicketAttachment)).all() == []
    # The reply was not recorded either.
    assert len(messages_of(session, ticket_id=ticket.id)) == 1


def test_a_reply_over_ten_thousand_characters_is_refused_with_its_message(app, session, shop):
    ticket = complaint(session, shop)
    care = staff_client(app, session, "care")
    path = f"/console/tickets/{ticket.ref}"
    response = care.post(
        f"{path}/reply",
        data={"csrf_token": token(care, path), "visibility": "internal", "body": "x" * 10_001},
    )
    assert response.status_code == 422
    assert "A message of at most 10000 characters." in response.get_data(as_text=True)


def test_status_buttons_escalation_and_refusals(app, session, shop):
    ticket = complaint(session, shop)
    care = staff_client(app, session, "care")
    path = f"/console/tickets/{ticket.ref}"
    page = care.get(path).get_data(as_text=True)
    assert 'value="pending_customer"' in page and 'value="closed"' not in page
    care.post(
        f"{path}/status", data={"csrf_token": token(care, path), "status": "pending_customer"}
    )
    session.expire_all()
    assert session.get(Ticket, ticket.id).status == "pending_customer"
    refused = care.post(
        f"{path}/status",
        data={"csrf_token": token(care, path), "status": "closed"},
        follow_redirects=True,
    )
    assert "cannot go from pending_customer to closed" in refused.get_data(as_text=True)
    today = now().astimezone().date().isoformat()
    care.post(
        f"{path}/escalate",
        data={"csrf_token": token(care, path), "reference": "MIIT-2026-7", "date": today},
    )
    session.expire_all()
    escalated = session.get(Ticket, ticket.id)
    assert (escalated.status, escalated.regulator_ref) == ("escalated", "MIIT-2026-7")
    page = care.get(path).get_data(as_text=True)
    assert "MIIT-2026-7" in page and "ticket.escalate" in page


def test_the_auditor_reads_everything_and_changes_nothing(app, session, shop):
    ticket = complaint(session, shop)
    conversation.staff_reply(
        session, ticket_id=ticket.id, body="内部", visibility="internal", actor=SYSTEM, now=now()
    )
    session.commit()
    auditor = staff_client(app, session, "auditor")
    path = f"/console/tickets/{ticket.ref}"
    for url in (
        "/console/tickets",
        path,
        "/console/sla-targets",
        f"/console/customers/{shop.customer.ref}/360",
    ):
        assert auditor.get(url).status_code == 200, url
    page = auditor.get(path).get_data(as_text=True)
    assert "内部" in page and "data-reply-form" not in page and "data-status-form" not in page
    queue = auditor.get("/console/tickets").get_data(as_text=True)
    assert "data-bulk-assign" not in queue
    csrf = token(auditor, "/console/tickets")
    posts = [
        (f"{path}/reply", {"visibility": "customer", "body": "hi"}),
        (f"{path}/status", {"status": "resolved"}),
        (f"{path}/assign", {"assignee": ""}),
        (f"{path}/escalate", {"reference": "R", "date": "2026-01-01"}),
        ("/console/tickets/assign", {"ticket": str(ticket.id)}),
        ("/console/tickets/new", {}),
        (
            "/console/sla-targets/complaint/normal",
            {"first_response_minutes": "1", "resolution_minutes": "2"},
        ),
    ]
    for url, data in posts:
        assert auditor.post(url, data={"csrf_token": csrf, **data}).status_code == 403, url
    assert auditor.get("/console/tickets/new").status_code == 403
    session.expire_all()
    assert session.get(Ticket, ticket.id).status == "open"


@pytest.mark.parametrize("role", ["finance", "wholesale"])
def test_finance_and_wholesale_see_no_tickets(app, session, shop, role):
    ticket = complaint(session, shop)
    client = staff_client(app, session, role)
    for url in ("/console/tickets", f"/console/tickets/{ticket.ref}", "/console/sla-targets"):
        assert client.get(url).status_code == 403, url
    assert 'href="/console/tickets"' not in client.get("/console/").get_data(as_text=True)


def test_care_cannot_reach_finance_only_actions(app, session, shop):
    care = staff_client(app, session, "care")
    csrf = token(care, "/console/tickets")
    ref = shop.customer.ref
    for url in ("/console/refunds", "/console/vouchers"):
        assert care.get(url).status_code == 403, url
    for url, data in [
        (f"/console/customers/{ref}/adjust", {"adjust-amount": "10.00", "adjust-reason": "x"}),
        (f"/console/customers/{ref}/refunds", {"refund-amount": "10.00"}),
        (f"/console/customers/{ref}/payments", {"payment-amount": "10.00"}),
        ("/console/refunds/1/send", {}),
        ("/console/settlement/exports", {}),
        ("/console/settlement/disputes/1/resolve", {}),
        ("/console/sla-targets/complaint/normal", {"first_response_minutes": "1"}),
    ]:
        assert care.post(url, data={"csrf_token": csrf, **data}).status_code == 403, url


def test_admins_edit_the_sla_targets(app, session):
    admin = staff_client(app, session, "admin")
    page = admin.get("/console/sla-targets").get_data(as_text=True)
    assert 'data-target="complaint:normal"' in page and 'value="480"' in page
    csrf = token(admin, "/console/sla-targets")
    response = admin.post(
        "/console/sla-targets/complaint/normal",
        data={
            "csrf_token": csrf,
            "first_response_minutes": "240",
            "resolution_minutes": "2160",
            "around_the_clock": "0",
        },
        follow_redirects=True,
    )
    assert "Target for complaint, normal saved." in response.get_data(as_text=True)
    refused = admin.post(
        "/console/sla-targets/complaint/normal",
        data={"csrf_token": csrf, "first_response_minutes": "240", "resolution_minutes": "60"},
        follow_redirects=True,
    )
    assert "Resolution cannot be due before the first response." in refused.get_data(as_text=True)
    from app.care.targets import target_terms

    session.expire_all()
    assert (
        target_terms(session, category="complaint", priority="normal").first_response_minutes == 240
    )


def test_the_360_view_shows_every_section_paged(app, session, shop):
    for n in range(21):
        complaint(session, shop, subject=f"第{n}个")
    other = create_customer(session, ref="C-OTHER360", name="Other", now=now())
    session.commit()
    open_ticket(
        session,
        category="inquiry",
        channel="phone",
        subject="别人的",
        body="x",
        actor=SYSTEM,
        now=now(),
        timezone=TZ,
        customer_id=other.id,
    )
    session.commit()
    care = staff_client(app, session, "care")
    url = f"/console/customers/{shop.customer.ref}/360"
    page = care.get(url).get_data(as_text=True)
    for section in ("lines", "ledger", "tickets", "notifications", "events", "audit"):
        assert f'id="{section}"' in page, section
    assert f'data-line="{shop.line.msisdn}"' in page and 'data-usage="data"' in page
    assert page.count('<tr data-ticket="') == 20 and "第20个" in page and "别人的" not in page
    assert "tickets_page=2" in page
    second = care.get(f"{url}?tickets_page=2").get_data(as_text=True)
    assert second.count('<tr data-ticket="') == 1 and "第0个" in second
    assert 'data-audit="ticket.open"' in page
    customer_page = care.get(f"/console/customers/{shop.customer.ref}").get_data(as_text=True)
    assert f'href="{url}"' in customer_page


# -- self-care ---------------------------------------------------------------------------------


def test_a_subscriber_opens_a_complaint_in_chinese(zh_client, session, shop):
    subscriber_login(zh_client, shop.account.email)
    form = zh_client.get("/account/tickets/new").get_data(as_text=True)
    assert "投诉" in form and shop.line.msisdn in form
    response = zh_client.post(
        "/account/tickets/new",
        data={
            "csrf_token": token(zh_client, "/account/tickets/new"),
            "category": "complaint",
            "line_id": str(shop.line.id),
            "subject": "网速太慢",
            "body": "晚上网速特别慢。",
            "attachments": (io.BytesIO(PNG), "截图.png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    ticket = session.exec(select(Ticket).where(Ticket.subject == "网速太慢")).one()
    assert (ticket.channel, ticket.locale, ticket.line_id) == ("self_care", "zh_Hans", shop.line.id)
    page = zh_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "晚上网速特别慢。" in page and "截图.png" in page and "已升级" not in page
    listing = zh_client.get("/account/tickets").get_data(as_text=True)
    assert ticket.ref in listing and "我的工单" in listing


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subject", "长" * 201, "A subject of at most 200 characters."),
        ("body", "长" * 10_001, "A message of at most 10000 characters."),
        ("subject", "", "A subject of at most 200 characters."),
    ],
)
def test_self_care_field_limits_are_told(client, session, shop, field, value, message):
    subscriber_login(client, shop.account.email)
    data = {
        "csrf_token": token(client, "/account/tickets/new"),
        "category": "inquiry",
        "line_id": "0",
        "subject": "Question",
        "body": "Hello",
        field: value,
    }
    response = client.post("/account/tickets/new", data=data)
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_subscribers_see_only_their_own_tickets_and_only_what_is_for_them(client, session, shop):
    mine = complaint(session, shop)
    conversation.staff_reply(
        session,
        ticket_id=mine.id,
        body="内部备注：用户很急",
        visibility="internal",
        actor=SYSTEM,
        now=now(),
        uploads=[Upload("note.png", PNG)],
        storage=_storage(client),
    )
    conversation.staff_reply(
        session,
        ticket_id=mine.id,
        body="我们正在处理。",
        visibility="customer",
        actor=SYSTEM,
        now=now(),
    )
    system = open_ticket(
        session,
        category="fault",
        channel="system",
        subject="Provisioning failed",
        body="dead",
        actor=SYSTEM,
        now=now(),
        timezone=TZ,
        customer_id=shop.customer.id,
        line_id=shop.line.id,
        source="provisioning:999",
    )
    stranger = make_subscriber(session, email="stranger@example.com")
    other = create_customer(session, ref="C-STRANGE", name="Stranger", now=now())
    other.subscriber_account_id = stranger.id
    session.add(other)
    theirs = open_ticket(
        session,
        category="inquiry",
        channel="self_care",
        subject="别人的问题",
        body="x",
        actor=Actor("subscriber", stranger.id, stranger.email),
        now=now(),
        timezone=TZ,
        customer_id=other.id,
    )
    session.commit()
    subscriber_login(client, shop.account.email)
    listing = client.get("/account/tickets").get_data(as_text=True)
    assert mine.ref in listing and system.ref not in listing and theirs.ref not in listing
    page = client.get(f"/account/tickets/{mine.ref}").get_data(as_text=True)
    assert "我们正在处理。" in page and "内部备注" not in page and "note.png" not in page
    [internal_file] = session.exec(select(TicketAttachment)).all()
    assert (
        client.get(f"/account/tickets/{mine.ref}/attachments/{internal_file.id}").status_code == 404
    )
    for ref in (system.ref, theirs.ref, "T-999999"):
        assert client.get(f"/account/tickets/{ref}").status_code == 404, ref
        csrf = token(client, f"/account/tickets/{mine.ref}")
        assert (
            client.post(
                f"/account/tickets/{ref}/reply", data={"csrf_token": csrf, "body": "x"}
            ).status_code
            == 404
        )
    assert client.get("/console/tickets").status_code == 302


def _storage(client: Any) -> Any:
    return client.application.extensions["mvno.settings"].instance_path / "attachments"


def test_a_reply_reopens_a_waiting_ticket_and_a_resolved_one_can_be_rated(client, session, shop):
    ticket = complaint(session, shop)
    workflow.change_status(
        session,
        ticket_id=ticket.id,
        status="pending_customer",
        actor=SYSTEM,
        now=now(),
        timezone=TZ,
    )
    session.commit()
    subscriber_login(client, shop.account.email)
    path = f"/account/tickets/{ticket.ref}"
    assert "data-rating-form" not in client.get(path).get_data(as_text=True)
    client.post(
        f"{path}/reply", data={"csrf_token": token(client, path), "body": "重启后还是不行。"}
    )
    session.expire_all()
    assert session.get(Ticket, ticket.id).status == "open"
    refused = client.post(
        f"{path}/rate",
        data={"csrf_token": token(client, path), "score": "5"},
        follow_redirects=True,
    )
    assert "can be rated once it is resolved" in refused.get_data(as_text=True)
    workflow.change_status(
        session, ticket_id=ticket.id, status="resolved", actor=SYSTEM, now=now(), timezone=TZ
    )
    session.commit()
    page = client.get(path).get_data(as_text=True)
    assert "data-rating-form" in page
    client.post(f"{path}/rate", data={"csrf_token": token(client, path), "score": "4"})
    session.expire_all()
    assert session.get(Ticket, ticket.id).satisfaction == 4
    assert 'data-satisfaction="4"' in client.get(path).get_data(as_text=True)


def test_the_360_view_reads_the_same_number_of_queries_however_much_there_is(app, session, shop):
    from sqlalchemy import event

    from app.notifications.services import notify
    from app.provisioning.services import enqueue_event

    care = staff_client(app, session, "care")
    url = f"/console/customers/{shop.customer.ref}/360"
    engine = app.extensions["mvno.db"].engine

    def count_queries() -> int:
        statements: list[str] = []

        def seen(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert care.get(url).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    complaint(session, shop)
    before = count_queries()
    for n in range(6):
        line = make_line(session, shop.world, now=now())
        open_period(session, line=line, plan=shop.world.plan, start=now(), now=now())
        enqueue_event(
            session,
            line_id=line.id,
            host_id=shop.world.host.id,
            action="activate",
            payload={},
            now=now(),
        )
        notify(
            session,
            kind="renewal",
            recipient="zhang@example.com",
            now=now(),
            customer_id=shop.customer.id,
        )
        complaint(session, shop, subject=f"more {n}", line_id=line.id)
    session.commit()
    assert count_queries() == before


def test_a_system_ticket_without_a_customer_has_its_page_and_queue_row(app, session):
    ticket = open_ticket(
        session,
        category="billing_dispute",
        channel="system",
        subject="Settlement dispute HOSTA 2026-11 data",
        body="Our amount: 100.00 CNY; invoice amount: 106.50 CNY.",
        actor=SYSTEM,
        now=now(),
        timezone=TZ,
        source="dispute:77",
    )
    session.commit()
    care = staff_client(app, session, "care")
    page = care.get(f"/console/tickets/{ticket.ref}").get_data(as_text=True)
    assert "None (a system ticket)" in page and "106.50 CNY" in page
    assert 'data-visibility="internal"' in page
    row = care.get("/console/tickets?category=billing_dispute").get_data(as_text=True)
    assert f'data-ticket="{ticket.ref}"' in row
