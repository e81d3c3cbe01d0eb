"""The SLA calendar on the console's SLA targets page: a year's days for everyone who
reads the targets; adding, removing and loading days for admins only; refusals as
messages on the page, never a 500."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, select

from app.care.models import SlaDay
from app.care.sla_calendar import set_sla_day
from app.core.audit import AuditEntry
from tests.integration.test_tickets_web import staff_client, token
from tests.unit.subscribers.helpers import STAFF

PAGE = "/console/sla-targets"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def add(client, csrf, **values):
    data = {"day-csrf_token": csrf, **{f"day-{k}": v for k, v in values.items()}}
    return client.post("/console/sla-calendar/days", data=data, follow_redirects=True)


def test_admins_load_add_and_remove_days(app, session: Session):
    admin = staff_client(app, session, "admin")
    page = admin.get(f"{PAGE}?year=2025").get_data(as_text=True)
    assert 'data-sla-calendar="2025"' in page and "No holidays or make-up working days" in page
    assert "data-load-form" in page and "data-day-form" in page
    csrf = token(admin, PAGE)
    loaded = admin.post(
        "/console/sla-calendar/load",
        data={"load-csrf_token": csrf, "load-year": "2025", "load-country": "CN"},
        follow_redirects=True,
    )
    text = loaded.get_data(as_text=True)
    assert "Public holidays of CN for 2025 loaded: 19 holidays and 5 make-up working days" in text
    assert 'data-day="2025-01-26" data-kind="workday"' in text and "春节" in text

    added = add(admin, csrf, day="2025-01-27", kind="holiday", name="公司调休")
    assert "2025-01-27 saved as holiday (closed)." in added.get_data(as_text=True)
    assert session.get(SlaDay, date(2025, 1, 27)).source == "staff"

    removed = admin.post(
        "/console/sla-calendar/days/2025-01-27/remove",
        data={"csrf_token": csrf},
        follow_redirects=True,
    )
    assert "2025-01-27 removed from the calendar." in removed.get_data(as_text=True)
    session.expire_all()
    assert session.get(SlaDay, date(2025, 1, 27)) is None
    actions = [a.action for a in session.exec(select(AuditEntry)) if a.action.startswith("sla_")]
    assert {"sla_day.load", "sla_day.set", "sla_day.remove"} == set(actions)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"day": "2025-02-30", "kind": "holiday", "name": "x"}, "Not a valid date value"),
        ({"day": "", "kind": "holiday", "name": "x"}, "YYYY-MM-DD"),
        ({"day": "2025-01-06", "kind": "workday", "name": "x"}, "Saturday or a Sunday"),
        ({"day": "2025-01-04", "kind": "closed", "name": "x"}, "Not a valid choice"),
        ({"day": "2025-01-04", "kind": "workday", "name": "x" * 101}, "at most 100 characters"),
        ({"day": "2025-01-04", "kind": "workday", "name": ""}, "Give the day a name."),
        ({"day": "1999-01-02", "kind": "workday", "name": "x"}, "from 2000 to 2099"),
    ],
)
def test_a_refused_day_is_a_message(app, session, values, message):
    admin = staff_client(app, session, "admin")
    response = add(admin, token(admin, PAGE), **values)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert session.exec(select(SlaDay)).all() == []


@pytest.mark.parametrize(
    ("year", "country", "message"),
    [
        ("1999", "CN", "from 2000 to 2099"),
        ("2100", "CN", "from 2000 to 2099"),
        ("next", "CN", "Not a valid integer value"),
        ("2025", "ZZ", "No public holidays are known for ZZ."),
    ],
)
def test_a_refused_load_is_a_message(app, session, year, country, message):
    admin = staff_client(app, session, "admin")
    response = admin.post(
        "/console/sla-calendar/load",
        data={"load-csrf_token": token(admin, PAGE), "load-year": year, "load-country": country},
        follow_redirects=True,
    )
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert session.exec(select(SlaDay)).all() == []


def test_removing_a_day_not_in_the_calendar_is_a_message(app, session):
    admin = staff_client(app, session, "admin")
    csrf = token(admin, PAGE)
    for day, message in [
        ("2025-01-04", "2025-01-04 is not in the SLA calendar."),
        ("2025-13-04", "YYYY-MM-DD"),
        ("soon", "YYYY-MM-DD"),
    ]:
        response = admin.post(
            f"/console/sla-calendar/days/{day}/remove",
            data={"csrf_token": csrf},
            follow_redirects=True,
        )
        assert response.status_code == 200 and message in response.get_data(as_text=True), day


@pytest.mark.parametrize("role", ["care", "auditor"])
def test_care_and_auditors_read_the_calendar_and_change_nothing(app, session, role):
    set_sla_day(session, day=date(2026, 10, 1), kind="holiday", name="国庆节", actor=STAFF, now=NOW)
    session.commit()
    client = staff_client(app, session, role)
    page = client.get(f"{PAGE}?year=2026").get_data(as_text=True)
    assert 'data-day="2026-10-01"' in page and "国庆节" in page
    assert "data-day-form" not in page and "data-load-form" not in page
    assert "data-remove-day" not in page
    csrf = token(client, PAGE)
    posts = [
        ("/console/sla-calendar/days", {"day-day": "2026-10-02", "day-kind": "holiday"}),
        ("/console/sla-calendar/days/2026-10-01/remove", {}),
        ("/console/sla-calendar/load", {"load-year": "2026", "load-country": "CN"}),
    ]
    for url, data in posts:
        response = client.post(url, data={"csrf_token": csrf, **data})
        assert response.status_code == 403, url
    assert [d.day for d in session.exec(select(SlaDay))] == [date(2026, 10, 1)]


def test_the_page_shows_this_year_by_default_and_ignores_a_bad_year(app, session):
    client = staff_client(app, session, "auditor")
    this_year = datetime.now(UTC).year
    for query in ("", "?year=1999", "?year=abc", "?year=20255"):
        page = client.get(f"{PAGE}{query}")
        assert page.status_code == 200
        assert f'data-sla-calendar="{this_year}"' in page.get_data(as_text=True) or (
            f'data-sla-calendar="{this_year + 1}"' in page.get_data(as_text=True)
        )


def test_the_page_is_in_chinese_by_default(app, session):
    client = staff_client(app, session, "admin")
    client.set_cookie("mvno_lang", "zh_Hans")
    page = client.get(f"{PAGE}?year=2026").get_data(as_text=True)
    assert "节假日与调休上班日" in page and "导入法定节假日" in page
