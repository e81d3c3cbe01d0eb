"""Self-care lines: usage bars on the account page, add-ons (double submit charges
once), plan change at the next renewal and its cancellation, the auto-renew switch —
each subscriber only on their own lines — and the staff API equivalents."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from app.charging.models import LinePeriod, PeriodAddOn
from app.charging.periods import open_period
from app.core.audit import AuditEntry
from app.ledger.balances import customer_balance
from app.provisioning.models import ProvisioningEvent
from app.subscribers.errors import LineStateError
from app.subscribers.models import Line
from app.subscribers.services import create_customer, set_auto_renew
from plans.addons import upsert_addon
from plans.models import AddOn
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_api_key, make_subscriber
from tests.unit.charging.helpers import fund
from tests.unit.plans.helpers import make_plan, publish
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world
from tests.unit.wholesale.helpers import make_host, make_rate_card

TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def _now() -> datetime:
    # The pages read the real clock.
    return datetime.now(UTC)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="SELF")


@pytest.fixture
def account(session: Session, world: World):
    account = make_subscriber(session)
    world.customer.subscriber_account_id = account.id
    world.customer.email = account.email
    session.add(world.customer)
    session.commit()
    return account


@pytest.fixture
def signed_in(client, account):
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


def _line(session: Session, world: World, *, status: str = "active") -> tuple[Line, LinePeriod]:
    now = _now()
    line = make_line(session, world, status=status, now=now - timedelta(days=2))
    period = open_period(
        session, line=line, plan=world.plan, start=now - timedelta(days=1), now=now
    )
    session.commit()
    return line, period


def _fund(session: Session, world: World, amount: int) -> None:
    fund(session, world, amount, now=_now())
    session.commit()


def _addon(session: Session, *, code: str = "DATA5G", price: int = 1500) -> AddOn:
    addon = upsert_addon(
        session,
        code=code,
        names={"zh_Hans": "5GB 流量包", "en": "5 GB pack"},
        price_minor=price,
        data_mb=5120,
        status="published",
        actor=STAFF,
        now=_now(),
    )
    session.commit()
    return addon


def _balance(session: Session, world: World) -> int:
    assert world.customer.id is not None
    session.expire_all()
    return customer_balance(session, customer_id=world.customer.id)


def _fresh(session: Session, model, row_id):
    session.expire_all()
    return session.get(model, row_id)


# -- the account page -----------------------------------------------------------------------


def test_account_page_shows_each_line_with_usage_bars(client, session, world, signed_in) -> None:
    line, period = _line(session, world)
    period.data_kb_used = 3 * 1024 * 1024
    period.voice_s_used = 90
    period.sms_used = 5
    session.add(period)
    session.commit()
    _fund(session, world, 4321)

    page = client.get("/account")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-line="{line.msisdn}"' in text
    assert "Lite" in text and "active" in text
    assert "43.21" in text  # the balance
    assert 'progress id="meter-' in text
    assert f'max="{10240 * 1024}" value="{3 * 1024 * 1024}"' in text
    assert "3.00 GB of 10.00 GB used, 7.00 GB left" in text
    assert "1.5 min of 200 min used, 198.5 min left" in text
    assert "5 of 100 used, 95 left" in text
    assert "Current period:" in text
    assert f"/account/lines/{line.id}/addons" in text


def test_account_page_in_chinese_by_default(zh_client, session, world, account) -> None:
    _line(session, world)
    zh_client.post(
        "/login",
        data={
            "email": account.email,
            "password": PASSWORD,
            "csrf_token": csrf_token(zh_client, "/login"),
        },
    )
    page = zh_client.get("/account")
    assert page.status_code == 200
    assert "轻享套餐" in page.get_data(as_text=True)  # the plan's Chinese name


def test_a_line_without_periods_and_no_lines(client, session, world, signed_in) -> None:
    assert "You have no lines yet." in client.get("/account").get_data(as_text=True)
    make_line(session, world)
    session.commit()
    assert "No period has started yet." in client.get("/account").get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    ["/account/lines/1", "/account/lines/1/addons"],
)
def test_line_pages_require_a_signed_in_subscriber(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_someone_elses_line_is_a_404(client, session, world, signed_in) -> None:
    stranger = create_customer(session, ref="C-OTHER", now=_now())
    other_world = World(world.host, world.plan, world.other_plan, stranger)
    line = make_line(session, other_world)
    session.commit()
    token = csrf_token(client, "/account/topup")
    assert client.get(f"/account/lines/{line.id}").status_code == 404
    assert client.get(f"/account/lines/{line.id}/addons").status_code == 404
    for path, data in [
        (f"/account/lines/{line.id}/plan", {"plan_id": str(other_world.other_plan.id)}),
        (f"/account/lines/{line.id}/auto-renew", {"on": "0"}),
        (f"/account/lines/{line.id}/addons", {"addon_id": "1", "token": "x" * 22}),
    ]:
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 404
    assert _fresh(session, Line, line.id).auto_renew is True
    assert client.get("/account/lines/999999").status_code == 404


# -- add-ons --------------------------------------------------------------------------------


def _addon_form(client, line: Line, addon: AddOn) -> dict[str, str]:
    page = client.get(f"/account/lines/{line.id}/addons").get_data(as_text=True)
    block = page[page.index(f'data-addon="{addon.code}"') :]
    return {
        "csrf_token": CSRF_RE.search(block).group(1),  # type: ignore[union-attr]
        "token": TOKEN_RE.search(block).group(1),  # type: ignore[union-attr]
        "addon_id": str(addon.id),
    }


def test_buying_an_addon_twice_from_one_page_charges_once(
    client, session, world, signed_in
) -> None:
    line, period = _line(session, world)
    addon = _addon(session)
    _fund(session, world, 5000)
    form = _addon_form(client, line, addon)

    first = client.post(f"/account/lines/{line.id}/addons", data=form)
    again = client.post(f"/account/lines/{line.id}/addons", data=form)

    assert first.status_code == 303 and again.status_code == 303
    assert first.headers["Location"].endswith(f"/account/lines/{line.id}")
    assert _balance(session, world) == 3500
    assert _fresh(session, LinePeriod, period.id).data_kb == (10240 + 5120) * 1024
    assert session.exec(select(func.count()).select_from(PeriodAddOn)).one() == 1
    detail = client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    assert "5 GB pack" in detail and "15.00 GB" in detail
    # A fresh page is a new purchase.
    client.post(f"/account/lines/{line.id}/addons", data=_addon_form(client, line, addon))
    assert _balance(session, world) == 2000


def test_too_low_a_balance_offers_a_top_up(client, session, world, signed_in) -> None:
    line, period = _line(session, world)
    addon = _addon(session)
    _fund(session, world, 1000)
    response = client.post(
        f"/account/lines/{line.id}/addons", data=_addon_form(client, line, addon)
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "data-offer-topup" in text and "/account/topup" in text
    assert "does not cover" in text
    assert _balance(session, world) == 1000
    assert _fresh(session, LinePeriod, period.id).data_kb == 10240 * 1024


def test_a_suspended_line_cannot_buy_and_is_told_why(client, session, world, signed_in) -> None:
    line, _period = _line(session, world, status="suspended")
    addon = _addon(session)
    _fund(session, world, 5000)
    page = client.get(f"/account/lines/{line.id}/addons").get_data(as_text=True)
    assert "only while the line is active" in page
    response = client.post(
        f"/account/lines/{line.id}/addons", data=_addon_form(client, line, addon)
    )
    assert response.status_code == 409
    assert _balance(session, world) == 5000


def test_a_forged_addon_form_is_refused(client, session, world, signed_in) -> None:
    line, _period = _line(session, world)
    addon = _addon(session)
    _fund(session, world, 5000)
    form = _addon_form(client, line, addon)
    no_csrf = client.post(f"/account/lines/{line.id}/addons", data={**form, "csrf_token": ""})
    short_token = client.post(f"/account/lines/{line.id}/addons", data={**form, "token": "abc"})
    unknown = client.post(f"/account/lines/{line.id}/addons", data={**form, "addon_id": "99999"})
    not_a_number = client.post(f"/account/lines/{line.id}/addons", data={**form, "addon_id": "x"})
    assert no_csrf.status_code in (400, 422)
    assert short_token.status_code == 422
    assert unknown.status_code == 404
    assert not_a_number.status_code == 422
    assert _balance(session, world) == 5000


# -- plan change ----------------------------------------------------------------------------


def test_plan_change_at_next_renewal_and_its_cancellation(
    client, session, world, signed_in
) -> None:
    line, _period = _line(session, world)
    page = client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    assert "Lite (current plan)" in page and "69.00" in page  # MAX60 is offered

    token = csrf_token(client, f"/account/lines/{line.id}")
    changed = client.post(
        f"/account/lines/{line.id}/plan",
        data={"plan_id": str(world.other_plan.id), "csrf_token": token},
    )
    assert changed.status_code == 303
    assert _fresh(session, Line, line.id).next_plan_id == world.other_plan.id
    detail = client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    assert "data-next-plan" in detail and "Changes to" in detail
    assert "data-cancel-change" in detail
    assert "Changes to" in client.get("/account").get_data(as_text=True)

    cancelled = client.post(
        f"/account/lines/{line.id}/plan",
        data={"plan_id": str(world.plan.id), "csrf_token": token},
    )
    assert cancelled.status_code == 303
    assert _fresh(session, Line, line.id).next_plan_id is None
    assert "data-next-plan" not in client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    events = session.exec(
        select(ProvisioningEvent.action).where(ProvisioningEvent.line_id == line.id)
    ).all()
    assert list(events).count("change_plan") == 2


def test_a_plan_of_another_host_is_not_offered_or_accepted(
    client, session, world, signed_in
) -> None:
    line, _period = _line(session, world)
    host = make_host(session, code="ELSE")
    make_rate_card(session, host=host)
    assert host.id is not None
    foreign = publish(session, make_plan(session, host_id=host.id, code="ELSE30"))
    session.commit()
    page = client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    assert f'value="{foreign.id}"' not in page
    token = csrf_token(client, f"/account/lines/{line.id}")
    response = client.post(
        f"/account/lines/{line.id}/plan",
        data={"plan_id": str(foreign.id), "csrf_token": token},
    )
    assert response.status_code == 422
    assert _fresh(session, Line, line.id).next_plan_id is None


# -- auto-renew -----------------------------------------------------------------------------


def test_auto_renew_switch(client, session, world, signed_in) -> None:
    line, _period = _line(session, world)
    token = csrf_token(client, f"/account/lines/{line.id}")
    off = client.post(f"/account/lines/{line.id}/auto-renew", data={"on": "0", "csrf_token": token})
    assert off.status_code == 303
    assert _fresh(session, Line, line.id).auto_renew is False
    assert "Turn auto-renew on" in client.get(f"/account/lines/{line.id}").get_data(as_text=True)
    on = client.post(f"/account/lines/{line.id}/auto-renew", data={"on": "1", "csrf_token": token})
    assert on.status_code == 303
    assert _fresh(session, Line, line.id).auto_renew is True
    audits = session.exec(select(AuditEntry).where(AuditEntry.action == "line.auto_renew")).all()
    assert [a.details["auto_renew"] for a in audits] == [False, True]
    assert all(a.actor_kind == "subscriber" for a in audits)
    bad = client.post(
        f"/account/lines/{line.id}/auto-renew", data={"on": "maybe", "csrf_token": token}
    )
    assert bad.status_code == 422
    no_events = session.exec(
        select(func.count())
        .select_from(ProvisioningEvent)
        .where(ProvisioningEvent.line_id == line.id)
    ).one()
    assert no_events == 0


def test_set_auto_renew_is_idempotent_and_refused_on_an_ended_line(session, world) -> None:
    line = make_line(session, world)
    assert line.id is not None
    set_auto_renew(session, line_id=line.id, on=True, actor=STAFF, now=_now())
    assert (
        session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "line.auto_renew")
        ).one()
        == 0
    )
    ended = make_line(session, world, status="terminated")
    assert ended.id is not None
    with pytest.raises(LineStateError):
        set_auto_renew(session, line_id=ended.id, on=False, actor=STAFF, now=_now())


# -- API --------------------------------------------------------------------------------------


def _auth(session: Session, role: str) -> dict[str, str]:
    _key, token = make_api_key(session, role=role)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_api_buys_an_addon_once_per_key(client, session, world) -> None:
    line, _period = _line(session, world)
    _addon(session)
    _fund(session, world, 5000)
    headers = _auth(session, "care")
    body = {"addon": "DATA5G", "idempotency_key": "crm-4711"}
    first = client.post(f"/api/v1/lines/{line.msisdn}/addons", json=body, headers=headers)
    assert first.status_code == 200, first.get_json()
    data = first.get_json()
    assert data["data_kb"] == 5120 * 1024 and data["price_minor"] == 1500
    assert data["balance"] == 3500 and data["period_data_kb"] == (10240 + 5120) * 1024
    again = client.post(f"/api/v1/lines/{line.msisdn}/addons", json=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == data["id"]
    assert _balance(session, world) == 3500
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "line.addon")).one()
    assert audit.actor_kind == "api_key"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"addon": "NOPE", "idempotency_key": "k1"}, 404, "addon_not_on_sale"),
        ({"addon": "DATA5G"}, 422, "invalid_input"),
        ({"addon": "DATA5G", "idempotency_key": "has space"}, 422, "invalid_input"),
        ({"addon": "lower", "idempotency_key": "k1"}, 422, "invalid_input"),
        ({"addon": "DATA5G", "idempotency_key": "k1", "extra": 1}, 422, "invalid_input"),
    ],
)
def test_api_addon_bad_input(client, session, world, body, status, code) -> None:
    line, _period = _line(session, world)
    _addon(session)
    _fund(session, world, 5000)
    response = client.post(
        f"/api/v1/lines/{line.msisdn}/addons", json=body, headers=_auth(session, "care")
    )
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert _balance(session, world) == 5000


def test_api_addon_refusals(client, session, world) -> None:
    line, _period = _line(session, world)
    _addon(session, price=9000)
    _fund(session, world, 5000)
    headers = _auth(session, "care")
    poor = client.post(
        f"/api/v1/lines/{line.msisdn}/addons",
        json={"addon": "DATA5G", "idempotency_key": "k1"},
        headers=headers,
    )
    assert poor.status_code == 409 and poor.get_json()["error"]["code"] == "insufficient_balance"
    missing = client.post(
        "/api/v1/lines/+8600000000/addons",
        json={"addon": "DATA5G", "idempotency_key": "k1"},
        headers=headers,
    )
    assert missing.status_code == 404
    denied = client.post(
        f"/api/v1/lines/{line.msisdn}/addons",
        json={"addon": "DATA5G", "idempotency_key": "k1"},
        headers=_auth(session, "finance"),
    )
    assert denied.status_code == 403


def test_api_auto_renew(client, session, world) -> None:
    line, _period = _line(session, world)
    headers = _auth(session, "care")
    off = client.post(
        f"/api/v1/lines/{line.msisdn}/auto-renew", json={"auto_renew": False}, headers=headers
    )
    assert off.status_code == 200 and off.get_json() == {
        "msisdn": line.msisdn,
        "status": "active",
        "auto_renew": False,
    }
    assert _fresh(session, Line, line.id).auto_renew is False
    not_bool = client.post(
        f"/api/v1/lines/{line.msisdn}/auto-renew", json={"auto_renew": 0}, headers=headers
    )
    assert not_bool.status_code == 422
    denied = client.post(
        f"/api/v1/lines/{line.msisdn}/auto-renew",
        json={"auto_renew": True},
        headers=_auth(session, "auditor"),
    )
    assert denied.status_code == 403
    assert _fresh(session, Line, line.id).auto_renew is False
