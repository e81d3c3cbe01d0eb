"""Ending one line with its refund from the web: self-care's confirmed termination, the
console's termination and port-out (confirmation pages showing the refund) and the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from app.charging.periods import open_period
from app.ledger.balances import customer_balance
from app.payments.models import Refund
from app.subscribers.models import Line
from numbering.models import PhoneNumber
from tests.conftest import csrf_token
from tests.factories import PASSWORD, login_staff, make_api_key, make_staff, make_subscriber
from tests.unit.charging.helpers import fund
from tests.unit.subscribers.helpers import World, make_line, make_world

CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
REFUND_RE = re.compile(r'data-refund="(\d+)"')


def _now() -> datetime:
    # The pages read the real clock.
    return datetime.now(UTC)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="TERM")


@pytest.fixture
def signed_in(client, session, world):
    account = make_subscriber(session)
    world.customer.subscriber_account_id = account.id
    world.customer.email = account.email
    session.add(world.customer)
    session.commit()
    response = client.post(
        "/login",
        data={
            "email": account.email,
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert response.status_code == 302
    return account


def _line(session: Session, world: World, *, status: str = "active") -> Line:
    now = _now()
    line = make_line(session, world, status=status, now=now - timedelta(days=2))
    if status != "pending":
        open_period(session, line=line, plan=world.plan, start=now - timedelta(days=1), now=now)
    session.commit()
    return line


def _refunds(session: Session, world: World) -> list[Refund]:
    session.expire_all()
    return list(
        session.exec(
            select(Refund)
            .where(Refund.customer_id == world.customer.id, Refund.reason == "termination")
            .order_by(col(Refund.id))
        )
    )


def _fresh(session: Session, line: Line) -> Line:
    session.expire_all()
    found = session.get(Line, line.id)
    assert found is not None
    return found


def _number(session: Session, line: Line) -> str:
    session.expire_all()
    return session.exec(select(PhoneNumber.status).where(PhoneNumber.msisdn == line.msisdn)).one()


# -- self-care ----------------------------------------------------------------------------


def test_a_subscriber_terminates_their_line_after_confirming_the_refund(
    client, session, world, signed_in
):
    line = _line(session, world)
    fund(session, world, 2000, now=_now())
    session.commit()
    detail = client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    assert "data-terminate-link" in detail
    page = client.get(f"/account/lines/{line.id}/terminate")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "data-number-released" in html
    shown = int(REFUND_RE.search(html).group(1))
    assert 2000 + 3700 < shown <= 2000 + 3900  # the balance and about 29 days of 30
    assert _fresh(session, line).status == "active"
    token = CSRF_RE.search(html).group(1)
    done = client.post(
        f"/account/lines/{line.id}/terminate", data={"csrf_token": token, "confirm": "yes"}
    )
    assert done.status_code == 303
    assert _fresh(session, line).status == "terminated"
    assert _number(session, line) == "quarantined"
    refunds = _refunds(session, world)
    assert [r.payment_id for r in refunds] == [None]
    assert shown - 2 <= refunds[0].amount_minor <= shown  # the clock moved on a little
    assert customer_balance(session, customer_id=world.customer.id) == 0
    followed = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "is terminated" in followed and "data-terminate-link" not in followed
    again = client.post(
        f"/account/lines/{line.id}/terminate", data={"csrf_token": token, "confirm": "yes"}
    )
    assert again.status_code == 303
    assert len(_refunds(session, world)) == 1
    assert "already been terminated" in client.get(again.headers["Location"]).get_data(as_text=True)


def test_the_termination_needs_the_confirmation_and_a_csrf_token(client, session, world, signed_in):
    line = _line(session, world)
    path = f"/account/lines/{line.id}/terminate"
    token = CSRF_RE.search(client.get(path).get_data(as_text=True)).group(1)
    assert client.post(path, data={"confirm": "yes"}).status_code in (400, 422)
    assert client.post(path, data={"csrf_token": token, "confirm": "no"}).status_code == 422
    assert client.post(path, data={"csrf_token": token}).status_code == 422
    assert _fresh(session, line).status == "active"


def test_a_subscriber_cannot_terminate_anyone_elses_line(client, session, world, signed_in):
    from app.subscribers.services import create_customer

    other = create_customer(session, ref="C-TERM-OTHER", name="Someone else", now=_now())
    theirs = _line(session, World(world.host, world.plan, world.other_plan, other))
    path = f"/account/lines/{theirs.id}/terminate"
    assert client.get(path).status_code == 404
    token = csrf_token(client, "/account")
    assert client.post(path, data={"csrf_token": token, "confirm": "yes"}).status_code == 404
    assert _fresh(session, theirs).status == "active"


def test_a_pending_line_is_left_to_customer_service(client, session, world, signed_in):
    line = _line(session, world, status="pending")
    path = f"/account/lines/{line.id}/terminate"
    page = client.get(path)
    assert page.status_code == 409 and "data-cannot-terminate" in page.get_data(as_text=True)
    token = csrf_token(client, "/account")
    assert client.post(path, data={"csrf_token": token, "confirm": "yes"}).status_code == 409
    assert _fresh(session, line).status == "pending"


# -- console ------------------------------------------------------------------------------


def _care(client, session) -> str:
    make_staff(session, role="care", email="care-term@example.com")
    session.commit()
    login_staff(client, "care-term@example.com")
    return csrf_token(client, "/console/password")


@pytest.mark.parametrize(
    ("action", "status", "number"),
    [("terminate", "terminated", "quarantined"), ("port-out", "ported_out", "ported_out")],
)
def test_care_sees_the_refund_then_ends_the_line(client, session, world, action, status, number):
    line = _line(session, world)
    fund(session, world, 1500, now=_now())
    session.commit()
    token = _care(client, session)
    path = f"/console/lines/{line.msisdn}/{action}"
    asked = client.post(path, data={"csrf_token": token, "reason": "moving abroad"})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and f'data-confirm="{action}"' in html
    assert int(REFUND_RE.search(html).group(1)) > 1500
    assert _fresh(session, line).status == "active" and _refunds(session, world) == []
    done = client.post(
        path, data={"csrf_token": token, "reason": "moving abroad", "confirm": "yes"}
    )
    assert done.status_code == 302
    assert _fresh(session, line).status == status
    assert _number(session, line) == number
    [refund] = _refunds(session, world)
    assert refund.amount_minor > 1500 and refund.payment_id is None
    flashed = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "for finance to pay by hand" in flashed


def test_the_console_will_not_confirm_ending_a_line_that_has_ended(client, session, world):
    line = _line(session, world, status="terminated")
    token = _care(client, session)
    response = client.post(
        f"/console/lines/{line.msisdn}/port-out", data={"csrf_token": token, "reason": "x"}
    )
    assert response.status_code == 302
    assert "already ended" in client.get(response.headers["Location"]).get_data(as_text=True)


# -- API ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"), [("terminate", "terminated"), ("port-out", "ported_out")]
)
def test_the_api_answers_the_refund_once(client, session, world, action, status):
    line = _line(session, world)
    fund(session, world, 700, now=_now())
    _, secret = make_api_key(session, role="care")
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    path = f"/api/v1/lines/{line.msisdn}/{action}"
    first = client.post(path, json={"reason": "asked"}, headers=headers)
    body = first.get_json()
    assert first.status_code == 200 and body["status"] == status
    [refund] = _refunds(session, world)
    assert body["refund_minor"] == refund.amount_minor > 700
    assert (body["currency"], body["refund_ids"]) == ("CNY", [refund.id])
    again = client.post(path, json={"reason": "asked"}, headers=headers).get_json()
    assert (again["refund_minor"], again["refund_ids"]) == (refund.amount_minor, [refund.id])
    assert len(_refunds(session, world)) == 1
