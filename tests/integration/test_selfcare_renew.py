"""Self-care "renew now": pays the next period from the balance, once per page, refuses
clearly when the balance is short, and lifts an unpaid renewal's suspension."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from app.charging.models import LinePeriod
from app.charging.renewals import run_renewals
from app.subscribers.models import Line
from tests.conftest import csrf_token
from tests.integration import test_selfcare_web as selfcare
from tests.unit.subscribers.helpers import World

_balance, _fresh, _fund, _line = selfcare._balance, selfcare._fresh, selfcare._fund, selfcare._line
# The self-care fixtures: a world, a store login owning its customer, signed in.
world = selfcare.world
account = selfcare.account
signed_in = selfcare.signed_in

PERIOD_END_RE = re.compile(r'name="period_end"[^>]*value="([^"]+)"')
CSRF_RE = re.compile(r'id="renew-csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*id="renew-csrf"')


def _form(client, line_id: int) -> dict[str, str]:
    page = client.get(f"/account/lines/{line_id}").get_data(as_text=True)
    assert "data-renew-now" in page
    match = CSRF_RE.search(page)
    assert match is not None
    end = PERIOD_END_RE.search(page)
    assert end is not None
    return {"csrf_token": match.group(1) or match.group(2), "period_end": end.group(1)}


def _periods(session: Session, line_id: int) -> int:
    session.expire_all()
    return session.exec(
        select(func.count()).select_from(LinePeriod).where(LinePeriod.line_id == line_id)
    ).one()


def test_renew_now_pays_the_next_period_once(client, session, world: World, signed_in):
    line, period = _line(session, world)
    _fund(session, world, 10_000)
    form = _form(client, line.id)
    first = client.post(f"/account/lines/{line.id}/renew", data=form)
    assert first.status_code == 303
    # The same page submitted again (a double click) charges nothing more.
    again = client.post(f"/account/lines/{line.id}/renew", data=form)
    assert again.status_code == 303
    assert _periods(session, line.id) == 2
    assert _balance(session, world) == 10_000 - world.plan.price_minor
    renewed = _fresh(session, Line, line.id)
    assert renewed.period_end == period.end + timedelta(days=world.plan.validity_days)


def test_renew_now_with_a_short_balance_is_refused_and_charges_nothing(
    client, session, world: World, signed_in
):
    line, _period = _line(session, world)
    _fund(session, world, world.plan.price_minor - 1)
    response = client.post(f"/account/lines/{line.id}/renew", data=_form(client, line.id))
    assert response.status_code == 409
    assert "Top up" in response.get_data(as_text=True)
    assert _periods(session, line.id) == 1
    assert _balance(session, world) == world.plan.price_minor - 1


def test_renew_now_resumes_a_line_suspended_for_an_unpaid_renewal(
    client, db, session, world: World, signed_in
):
    line, period = _line(session, world)
    line = _fresh(session, Line, line.id)
    line.auto_renew = False  # so the renewal job suspends it and a credit does not renew it
    session.add(line)
    session.commit()
    run_renewals(db, now=period.end + timedelta(minutes=1), quarantine_days=90)
    assert _fresh(session, Line, line.id).status == "suspended"
    _fund(session, world, 10_000)
    assert _fresh(session, Line, line.id).status == "suspended"
    page = client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    assert "resumes the line" in page
    response = client.post(f"/account/lines/{line.id}/renew", data=_form(client, line.id))
    assert response.status_code == 303
    resumed = _fresh(session, Line, line.id)
    assert resumed.status == "active"
    assert resumed.period_end > datetime.now(UTC)
    assert _balance(session, world) == 10_000 - world.plan.price_minor


@pytest.mark.parametrize("period_end", ["", "yesterday", "2026-11-01T00:00:00"])
def test_a_tampered_form_is_refused(client, session, world: World, signed_in, period_end):
    line, _period = _line(session, world)
    form = _form(client, line.id)
    form["period_end"] = period_end
    response = client.post(f"/account/lines/{line.id}/renew", data=form)
    assert response.status_code == 422
    assert _periods(session, line.id) == 1


def test_someone_elses_line_is_not_found(client, session, world: World, signed_in):
    other = World(world.host, world.plan, world.other_plan, world.customer)
    line, _period = _line(session, other)
    line = _fresh(session, Line, line.id)
    line.customer_id = _other_customer(session)
    session.add(line)
    session.commit()
    token = csrf_token(client, "/account")
    response = client.post(
        f"/account/lines/{line.id}/renew",
        data={"csrf_token": token, "period_end": line.period_end.isoformat()},
    )
    assert response.status_code == 404


def _other_customer(session: Session) -> int:
    from app.subscribers.services import create_customer

    customer = create_customer(session, ref="C-OTHER", name="Other", now=datetime.now(UTC))
    assert customer.id is not None
    return customer.id
