"""Every console page × every role and anonymous: 200, 302 or 403 — never 500."""

from datetime import timedelta
from pathlib import Path

import pytest
from flask import url_for
from sqlmodel import select

from app.auth.permissions import PERMISSIONS, ROLES
from app.catalog import load_catalog
from app.core.audit import Actor
from app.exit.workflow import exit_folder
from app.ledger.movements import adjust_balance
from app.payments.vouchers import create_voucher_batch
from app.subscribers.services import create_customer, open_line
from app.usage.importer import import_usage_file
from app.usage.settlement import export_settlement
from app.web.dashboard import FIGURE_PERMISSIONS
from plans.models import Plan
from tests.factories import NOW, login_staff, make_api_key, make_staff

ANONYMOUS = "anonymous"
PUBLIC = {"console.login"}
# Values for the variable parts of GET routes, from the sample catalog.
ROUTE_VALUES = {
    "console.host_detail": {"code": "HOSTA"},
    "console.plan_edit": {"code": "LITE30"},
    "console.customer": {"ref": "C-0001"},
    # The batch id is filled in by the test: ids are not reused after a rollback.
    "console.voucher_batch": {"batch_id": None},
    # So are the usage file's and the settlement run's.
    "console.usage_import": {"file_id": None},
    "console.settlement_run": {"run_id": None},
    "console.settlement_file": {"run_id": None, "kind": "csv"},
    "console.line_usage": {"msisdn": "+8617012340001"},
    "console.customer_360": {"ref": "C-0001"},
    # A ticket of C-0001 and its attachment, made by the test.
    "console.ticket": {"ref": None},
    "console.ticket_attachment": {"ref": None, "attachment_id": None},
    # A market exit's file, written by the test into the exit folder.
    "console.exit_file": {"name": "regulator_report_2027-02-15.csv"},
}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def console_rules(app):
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.") and "GET" in rule.methods
    ]


def test_every_console_route_declares_a_permission(app):
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint in PUBLIC | {"console.logout"}:
            continue
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "permission", None) in PERMISSIONS, rule.endpoint


def _usage_and_settlement(session, customer_id, tmp_path):
    """A line of the catalog's plan, a usage file of it and a settlement run (their ids)."""
    plan = session.exec(select(Plan).where(Plan.code == "LITE30")).first()
    open_line(session, customer_id=customer_id, msisdn="+8617012340001", plan_id=plan.id, now=NOW)
    path = tmp_path / "usage.csv"
    path.write_text(
        "record_id,msisdn,service,start_time,quantity\n"
        "R1,+8617012340001,sms,2026-10-02T09:05:00+08:00,1\n",
        encoding="utf-8",
    )
    actor = Actor.system("test")
    result = import_usage_file(session, host_code="HOSTA", path=path, actor=actor, now=NOW)
    files = export_settlement(
        session, host_code="HOSTA", month="2026-10", out_dir=tmp_path, actor=actor, now=NOW
    )
    return result.file_id, files.run_id


def _ticket(app, session, customer_id):
    """A ticket of the customer with one attachment: (ref, attachment id)."""
    from app.care.attachments import Upload
    from app.care.models import TicketAttachment
    from app.care.tickets import open_ticket

    ticket = open_ticket(
        session,
        category="complaint",
        channel="phone",
        subject="Route walker's complaint",
        body="Noted on the phone.",
        actor=Actor.system("test"),
        now=NOW,
        timezone="Asia/Shanghai",
        customer_id=customer_id,
        uploads=[Upload("note.txt", b"plain text")],
        storage=app.extensions["mvno.settings"].instance_path / "attachments",
    )
    attachment = session.exec(
        select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)
    ).one()
    return ticket.ref, attachment.id


@pytest.mark.parametrize("role", [*ROLES, ANONYMOUS])
def test_console_routes_for_role(app, client, session, role, tmp_path):
    if role != ANONYMOUS:
        make_staff(session, role=role, email=f"{role}@example.com")
        login_staff(client, f"{role}@example.com")
    make_api_key(session)
    load_catalog(
        session,
        text=(FIXTURES / "catalog.toml").read_text(encoding="utf-8"),
        filename="catalog.toml",
        actor=Actor.system("test"),
        now=NOW,
    )
    customer = create_customer(session, ref="C-0001", name="Route walker", now=NOW)
    batch, _pairs = create_voucher_batch(
        session,
        name="Routes",
        value_minor=5000,
        count=1,
        expires_at=NOW + timedelta(days=365),
        currency="CNY",
        actor=Actor.system("test"),
        now=NOW,
    )
    adjust_balance(
        session,
        customer_id=customer.id,
        amount_minor=1000,
        reason="opening balance",
        idempotency_key="routes:adjust",
        actor=Actor.system("test"),
        now=NOW,
        cap_months=24,
        reference_monthly_minor=5000,
        currency="CNY",
    )
    file_id, run_id = _usage_and_settlement(session, customer.id, tmp_path)
    ticket_ref, attachment_id = _ticket(app, session, customer.id)
    exit_file = exit_folder(app.extensions["mvno.settings"]) / "regulator_report_2027-02-15.csv"
    exit_file.parent.mkdir(parents=True, exist_ok=True)
    exit_file.write_text("item,value,currency\n", encoding="utf-8")
    values = {
        **ROUTE_VALUES,
        "console.voucher_batch": {"batch_id": batch.id},
        "console.usage_import": {"file_id": file_id},
        "console.settlement_run": {"run_id": run_id},
        "console.settlement_file": {"run_id": run_id, "kind": "csv"},
        "console.ticket": {"ref": ticket_ref},
        "console.ticket_attachment": {"ref": ticket_ref, "attachment_id": attachment_id},
    }
    rules = console_rules(app)
    assert len(rules) >= 12
    # The dashboard's downloads, one per figure, are walked like every page.
    assert {f"console.dashboard_{name.replace('-', '_')}_csv" for name in FIGURE_PERMISSIONS} <= {
        rule.endpoint for rule in rules
    }
    assert {
        "console.tickets",
        "console.ticket",
        "console.ticket_new",
        "console.ticket_attachment",
        "console.sla_targets",
        "console.customer_360",
    } <= {rule.endpoint for rule in rules}
    for rule in rules:
        with app.test_request_context():
            url = url_for(rule.endpoint, **values.get(rule.endpoint, {}))
        response = client.get(url)
        view = app.view_functions[rule.endpoint]
        permission = getattr(view, "permission", None)
        if rule.endpoint in PUBLIC:
            expected = 302 if role != ANONYMOUS else 200
        elif role == ANONYMOUS:
            expected = 302
        else:
            expected = 200 if role in PERMISSIONS[permission] else 403
        assert response.status_code == expected, f"{role} GET {url}"
        if role == ANONYMOUS and expected == 302:
            assert response.headers["Location"].startswith("/console/login?next=")


@pytest.mark.parametrize("role", ROLES)
def test_navigation_lists_only_what_the_role_may_open(client, session, role):
    make_staff(session, role=role, email=f"nav-{role}@example.com")
    login_staff(client, f"nav-{role}@example.com")
    page = client.get("/console/").get_data(as_text=True)
    for path, permission in [
        ("/console/staff", "staff.view"),
        ("/console/api-keys", "api_keys.manage"),
        ("/console/audit", "audit.view"),
        ("/console/usage", "usage.view"),
        ("/console/settlement", "settlement.view"),
        ("/console/tickets", "tickets.view"),
        ("/console/exit", "exit.view"),
    ]:
        assert (f'href="{path}"' in page) == (role in PERMISSIONS[permission]), path


def test_subscriber_session_does_not_open_the_console(client, session):
    from tests.conftest import csrf_token
    from tests.factories import PASSWORD, make_subscriber

    make_subscriber(session, email="sub@example.com")
    client.post(
        "/login",
        data={
            "email": "sub@example.com",
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    response = client.get("/console/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login")
