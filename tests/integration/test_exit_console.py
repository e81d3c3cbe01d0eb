"""The market exit wizard of the console: every step, every refusal, who may do what."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from app.core.audit import AuditEntry
from app.core.money import format_money
from app.exit.models import ExitChoice, MarketExit
from app.subscribers.models import Line
from tests.conftest import csrf_token
from tests.factories import login_staff, make_staff
from tests.integration.exit_world import (
    BALANCE_MINOR,
    CURRENT_MSISDN,
    EARLIEST,
    EXIT_AT,
    EXIT_DATE,
    UNUSED_MINOR,
    empty_folder,
    exit_files,
    exit_world,
    install_clock,
)

PAGE = "/console/exit"
REPORT = f"regulator_report_{EXIT_DATE.isoformat()}.csv"


@pytest.fixture(autouse=True)
def clock(monkeypatch, app):
    empty_folder(app)
    yield install_clock(monkeypatch)
    empty_folder(app)


@pytest.fixture
def world(session):
    return exit_world(session)


def sign_in(client, session, role):
    email = f"exit-{role}@example.com"
    make_staff(session, role=role, email=email)
    login_staff(client, email)
    return client


@pytest.fixture
def admin(client, session):
    return sign_in(client, session, "admin")


def post(client, path, prefix, **fields):
    data = {f"{prefix}-{name}": value for name, value in fields.items()}
    data[f"{prefix}-csrf_token"] = csrf_token(client, PAGE)
    return client.post(path, data=data)


def plan(client, exit_date=EXIT_DATE.isoformat(), notice_days="90"):
    return post(client, "/console/exit/plan", "plan", exit_date=exit_date, notice_days=notice_days)


def announce(client):
    return post(client, "/console/exit/announce", "announce", confirm="y")


def page(client):
    response = client.get(PAGE)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def step(text):
    return re.search(r'data-step="(\w+)"', text).group(1)


def current(session):
    return session.exec(select(MarketExit).order_by(MarketExit.id.desc())).first()


def audits(session, action):
    return session.exec(select(AuditEntry).where(AuditEntry.action == action)).all()


def cny(minor):
    return format_money(minor, "CNY", "en")


def test_the_plan_step_names_the_earliest_date_and_refuses_a_short_notice(admin, session, world):
    text = page(admin)
    assert step(text) == "plan" and f'data-earliest="{EARLIEST}"' in text
    too_soon = plan(admin, exit_date="2027-01-30")
    assert too_soon.status_code == 422
    assert f"the earliest allowed now is {EARLIEST}" in too_soon.get_data(as_text=True)
    short = plan(admin, notice_days="20")
    assert short.status_code == 422
    assert "The notice period is at least 30 days." in short.get_data(as_text=True)
    unreadable = plan(admin, exit_date="next spring")
    assert unreadable.status_code == 422
    assert current(session) is None


def test_review_shows_lines_and_money_before_the_announcement(admin, session, world):
    assert plan(admin).status_code == 302
    text = page(admin)
    assert step(text) == "review"
    assert 'data-count="lines">2<' in text and 'data-count="terminated">2<' in text
    assert 'data-count="none">2<' in text
    owed = BALANCE_MINOR + UNUSED_MINOR
    assert f'data-money="refunds">{cny(owed)}<' in text
    assert f'data-money="liability_before">{cny(owed)}<' in text
    assert 'data-will-happen="announce"' in text
    assert [a.details["exit_date"] for a in audits(session, "exit.plan")] == ["2027-02-15"]


def test_announcing_needs_confirmation_and_writes_the_regulator_report(app, admin, session, world):
    plan(admin)
    unconfirmed = post(admin, "/console/exit/announce", "announce")
    assert unconfirmed.status_code == 422 and current(session).state == "draft"
    assert announce(admin).status_code == 302
    assert current(session).state == "announced"
    text = page(admin)
    assert step(text) == "notice" and "data-report" in text
    assert (exit_files(app) / REPORT).is_file()
    download = admin.get(f"/console/exit/files/{REPORT}")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == f"attachment; filename={REPORT}"
    assert b"exit_date,2027-02-15," in download.data
    assert "disabled" in text.split('id="execute"', 1)[1].split("</section>", 1)[0]


def test_a_choice_given_by_phone_needs_the_agents_note(admin, session, world):
    plan(admin)
    announce(admin)
    refused = post(
        admin, "/console/exit/choices", "choice", msisdn=CURRENT_MSISDN, choice="transfer"
    )
    assert refused.status_code == 422
    assert session.exec(select(ExitChoice)).first() is None
    unknown = post(
        admin,
        "/console/exit/choices",
        "choice",
        msisdn="+8613900000000",
        choice="transfer",
        note="Called in.",
    )
    assert unknown.status_code == 422 and "+8613900000000" in unknown.get_data(as_text=True)
    recorded = post(
        admin,
        "/console/exit/choices",
        "choice",
        msisdn=CURRENT_MSISDN,
        choice="transfer",
        note="Called in, wants to keep the number.",
    )
    assert recorded.status_code == 302
    row = session.exec(select(ExitChoice)).one()
    assert (row.choice, row.given_by) == ("transfer", "staff")
    [audit] = audits(session, "exit.choose")
    assert audit.details["note"] == "Called in, wants to keep the number."
    text = page(admin)
    assert 'data-count="transferred">1<' in text and 'data-count="none">1<' in text


def test_execution_is_refused_before_the_instant_then_completes_with_its_files(
    app, admin, session, world, clock
):
    plan(admin)
    announce(admin)
    early = post(admin, "/console/exit/execute", "execute", confirm="y")
    assert early.status_code == 422
    assert "cannot be executed before its instant" in early.get_data(as_text=True)
    assert current(session).state == "announced"
    clock.now = EXIT_AT
    text = page(admin)
    assert step(text) == "execute" and 'data-will-happen="execute"' in text
    assert f"{cny(BALANCE_MINOR + UNUSED_MINOR)} is refunded" in text
    assert post(admin, "/console/exit/execute", "execute", confirm="y").status_code == 302
    session.expire_all()
    assert current(session).state == "completed"
    assert {line.status for line in session.exec(select(Line)).all()} == {"terminated"}
    text = page(admin)
    assert step(text) == "completed" and 'data-count="lines">2<' in text
    names = [
        f"exit_report_{EXIT_DATE}.csv",
        f"handover_HOSTA_{EXIT_DATE}.csv",
        REPORT,
        f"refunds_{EXIT_DATE}.csv",
    ]
    for name in names:
        assert f'href="/console/exit/files/{name}"' in text
        download = admin.get(f"/console/exit/files/{name}")
        assert download.status_code == 200 and download.mimetype == "text/csv"
        assert download.data == (exit_files(app) / name).read_bytes()
    # After the execution nothing can be cancelled.
    refused = post(admin, "/console/exit/cancel", "cancel", reason="Changed our minds")
    assert refused.status_code == 422
    assert "cannot be cancelled" in refused.get_data(as_text=True)
    assert current(session).state == "completed"


def test_cancelling_during_the_notice_needs_a_reason(admin, session, world):
    plan(admin)
    announce(admin)
    assert post(admin, "/console/exit/cancel", "cancel", reason="").status_code == 422
    assert current(session).state == "announced"
    done = post(admin, "/console/exit/cancel", "cancel", reason="The buyer took the business")
    assert done.status_code == 302
    assert current(session) is None or current(session).state == "cancelled"
    [audit] = audits(session, "exit.cancel")
    assert audit.details == {"from": "announced", "reason": "The buyer took the business"}
    assert step(page(admin)) == "plan"


@pytest.mark.parametrize(
    "name",
    [
        "secret_key",
        "..%2Fsecret_key",
        f"regulator_report_{EXIT_DATE}.txt",
        f"regulator_report_{EXIT_DATE}.csv.bak",
        f"refunds_{EXIT_DATE}.csv",  # a name an exit writes, but no such file yet
        "x" * 300,
    ],
)
def test_a_download_refuses_any_other_name(app, admin, session, world, name):
    (exit_files(app)).mkdir(parents=True, exist_ok=True)
    (exit_files(app) / "secret_key").write_text("not for you", encoding="utf-8")
    response = admin.get(f"/console/exit/files/{name}")
    assert response.status_code == 404
    assert b"not for you" not in response.data


@pytest.mark.parametrize("role", ["care", "finance", "wholesale", "auditor"])
def test_only_an_admin_changes_the_exit(client, session, world, role):
    sign_in(client, session, role)
    token = csrf_token(client, "/console/")
    for path, prefix, fields in [
        ("/console/exit/plan", "plan", {"exit_date": "2027-02-15", "notice_days": "90"}),
        ("/console/exit/announce", "announce", {"confirm": "y"}),
        ("/console/exit/execute", "execute", {"confirm": "y"}),
        ("/console/exit/cancel", "cancel", {"reason": "no"}),
        ("/console/exit/choices", "choice", {"msisdn": CURRENT_MSISDN, "choice": "transfer"}),
    ]:
        data = {f"{prefix}-{k}": v for k, v in fields.items()}
        data[f"{prefix}-csrf_token"] = token
        assert client.post(path, data=data).status_code == 403, (role, path)
    assert current(session) is None
    expected = 200 if role == "auditor" else 403
    assert client.get(PAGE).status_code == expected


def test_an_auditor_reads_the_exit_but_not_the_handover_file(
    app, client, admin, session, world, clock
):
    plan(admin)
    announce(admin)
    clock.now = EXIT_AT
    post(admin, "/console/exit/execute", "execute", confirm="y")
    admin.post("/console/logout", data={"csrf_token": csrf_token(admin, PAGE)})
    sign_in(client, session, "auditor")
    text = page(client)
    assert step(text) == "completed" and "/console/exit/plan" not in text
    assert client.get(f"/console/exit/files/{REPORT}").status_code == 200
    assert client.get(f"/console/exit/files/handover_HOSTA_{EXIT_DATE}.csv").status_code == 403


def test_the_wizard_speaks_chinese_by_default(zh_client, session, world):
    sign_in(zh_client, session, "admin")
    text = page(zh_client)
    assert "Market exit" not in text.split("<main", 1)[1]
