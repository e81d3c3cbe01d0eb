"""The market exit as subscribers see it: the store's notice and sales freeze (web and
API), and the self-care page where each subscriber chooses transfer or termination for
their own lines until the exit instant (DESIGN §10, §12)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from app.charging.periods import open_period
from app.charging.unused_value import unused_value_minor
from app.core.audit import Actor, AuditEntry
from app.exit.models import ExitChoice, MarketExit
from app.exit.schedule import announce_exit, cancel_exit, plan_exit
from app.payments.models import Payment
from app.subscribers.models import Customer, Line
from app.subscribers.services import create_customer
from numbering.models import PhoneNumber
from tests.factories import PASSWORD, make_api_key, make_subscriber
from tests.integration.test_purchase_web import (
    add_sims,
    buy_until_order,
    choose_number,
    free_msisdn,
    order_row,
    page_token,
    post,
)
from tests.unit.charging.helpers import fund
from tests.unit.subscribers.helpers import World, make_line, make_world

CHOICE_RE = re.compile(r'data-line="(\+\d+)" data-choice="([a-z]*)"')


def real_now() -> datetime:
    # The pages read the real clock.
    return datetime.now(UTC)


@pytest.fixture
def world(session: Session) -> World:
    world = make_world(session, code="EXIT")
    session.commit()
    return world


def announce(app: Any, session: Session, *, days: int = 100) -> MarketExit:
    """Plan an exit `days` from today and announce it, as of now."""
    zone = app.extensions["mvno.settings"].timezone
    today = real_now().astimezone(ZoneInfo(zone)).date()
    actor = Actor.cli()
    plan_exit(
        session,
        exit_date=today + timedelta(days=days),
        notice_days=None,
        timezone=zone,
        actor=actor,
        now=real_now(),
    )
    found = announce_exit(session, timezone=zone, actor=actor, now=real_now())
    session.commit()
    return found


def sign_in(client: Any, email: str) -> None:
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": page_token(client, "/login")},
    )
    assert response.status_code == 302


def subscriber_of(session: Session, world: World) -> str:
    """A store login for the world's customer; its e-mail."""
    account = make_subscriber(session)
    world.customer.subscriber_account_id = account.id
    world.customer.email = account.email
    session.add(world.customer)
    session.commit()
    return account.email


def live_line(session: Session, world: World, *, start: datetime | None = None) -> Line:
    """An active line with a current period from `start` (default: yesterday)."""
    now = real_now()
    line = make_line(session, world, now=now - timedelta(days=2))
    open_period(
        session, line=line, plan=world.plan, start=start or now - timedelta(days=1), now=now
    )
    session.commit()
    return line


def choice_row(session: Session, line: Line) -> ExitChoice | None:
    session.expire_all()
    return session.exec(select(ExitChoice).where(ExitChoice.line_id == line.id)).first()


def choose_on_page(client: Any, line: Line, choice: str, *, consent: bool = False) -> Any:
    prefix = f"line{line.id}"
    data = {f"{prefix}-choice": choice}
    if consent:
        data[f"{prefix}-consent"] = "y"
    return post(client, f"/exit/lines/{line.id}", "/exit", prefix=prefix, **data)


# -- the notice -----------------------------------------------------------------------------


def test_every_store_page_shows_the_notice_once_an_exit_is_announced(
    app, client, zh_client, session, world
) -> None:
    assert "data-exit-notice" not in client.get("/").get_data(as_text=True)
    assert f'data-buy="{world.plan.code}"' in client.get("/").get_data(as_text=True)
    found = announce(app, session)
    day = found.exit_date.isoformat()

    index = client.get("/").get_data(as_text=True)
    assert "data-exit-notice" in index and day in index
    assert "is leaving the market on" in index and "No new lines are sold" in index
    assert 'href="/exit"' in index
    # The plans stay on show, without their buy buttons.
    assert f'data-plan="{world.plan.code}"' in index and "data-buy=" not in index

    zh = zh_client.get("/login").get_data(as_text=True)
    assert "data-exit-notice" in zh and day in zh
    assert "退出市场" in zh and "已停止销售新号码" in zh and 'href="/exit"' in zh


def test_a_cancelled_exit_takes_the_notice_down_and_reopens_sales(
    app, client, session, world
) -> None:
    announce(app, session)
    cancel_exit(session, reason="staying", actor=Actor.cli(), now=real_now())
    session.commit()
    index = client.get("/").get_data(as_text=True)
    assert "data-exit-notice" not in index and f'data-buy="{world.plan.code}"' in index
    assert "data-sales-closed" not in client.get(f"/buy/{world.plan.code}").get_data(as_text=True)


def test_the_account_page_links_to_the_choice(app, client, session, world) -> None:
    sign_in(client, subscriber_of(session, world))
    assert "data-exit-choice-link" not in client.get("/account").get_data(as_text=True)
    announce(app, session)
    assert "data-exit-choice-link" in client.get("/account").get_data(as_text=True)


# -- the sales freeze -----------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh_Hans"])
def test_the_purchase_pages_refuse_instead_of_showing_a_form(
    app, client, zh_client, session, world, lang
) -> None:
    browser = zh_client if lang == "zh_Hans" else client
    msisdn = free_msisdn()
    token = page_token(browser, f"/buy/{world.plan.code}")
    announce(app, session)

    page = browser.get(f"/buy/{world.plan.code}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "data-sales-closed" in text
    assert "/hold" not in text and 'name="msisdn"' not in text
    expected = "no longer sell new lines" if lang == "en" else "已停止销售新号码"
    assert expected in text
    assert "data-sales-closed" in browser.get("/buy/checkout").get_data(as_text=True)

    held = browser.post(
        f"/buy/{world.plan.code}/hold", data={"msisdn": msisdn, "csrf_token": token}
    )
    assert held.status_code == 409 and "data-sales-closed" in held.get_data(as_text=True)
    session.expire_all()
    number = session.exec(select(PhoneNumber).where(PhoneNumber.msisdn == msisdn)).one()
    assert number.status == "available"
    placed = browser.post("/buy/place", data={"sim_kind": "esim", "csrf_token": token})
    assert placed.status_code == 409


def test_an_order_placed_before_the_announcement_can_no_longer_be_paid(
    app, client, session, world
) -> None:
    add_sims(session, world, "esim")
    _msisdn, ref = buy_until_order(client, world)
    order = order_row(session, ref)
    buyer = session.get(Customer, order.customer_id)
    fund(session, replace(world, customer=buyer), order.total_minor, now=real_now())
    session.commit()
    announce(app, session)

    page = client.get(f"/orders/{ref}").get_data(as_text=True)
    assert "data-sales-closed" in page and "data-pay-balance" not in page and "data-cancel" in page
    paid = post(client, f"/orders/{ref}/pay-balance", f"/orders/{ref}")
    assert paid.status_code == 303
    assert "no longer sell new lines" in client.get(f"/orders/{ref}").get_data(as_text=True)
    assert order_row(session, ref).status == "awaiting_payment"
    # Cancelling still works and lets the number go.
    cancelled = post(client, f"/orders/{ref}/cancel", f"/orders/{ref}")
    assert cancelled.status_code == 303 and order_row(session, ref).status == "cancelled"


def test_the_orders_api_refuses_with_sales_closed(app, client, session, world) -> None:
    add_sims(session, world, "physical")
    _msisdn, ref = buy_until_order(client, world, kind="physical")
    _key, token = make_api_key(session, role="finance")
    session.commit()
    announce(app, session)
    api = {"Authorization": f"Bearer {token}"}

    for path, body in (
        (f"/api/v1/orders/{ref}/store-payment", {"method": "cash", "reference": "R-EXIT"}),
        (f"/api/v1/orders/{ref}/complete", None),
    ):
        refused = client.post(path, json=body, headers=api)
        assert refused.status_code == 409, refused.get_json()
        error = refused.get_json()["error"]
        assert error["code"] == "sales_closed" and "no longer sell new lines" in error["message"]
    assert order_row(session, ref).status == "awaiting_payment"
    assert session.exec(select(Payment).where(Payment.reference == "R-EXIT")).first() is None


def test_choosing_a_number_after_the_announcement_in_the_same_cart_is_refused(
    app, client, session, world
) -> None:
    msisdn = choose_number(client, world)
    announce(app, session)
    page = client.get("/buy/checkout")
    assert page.status_code == 200 and "data-sales-closed" in page.get_data(as_text=True)
    assert msisdn not in page.get_data(as_text=True)


# -- the choice page ------------------------------------------------------------------------


def test_the_page_says_so_when_no_exit_is_announced(client, session, world) -> None:
    sign_in(client, subscriber_of(session, world))
    page = client.get("/exit")
    assert page.status_code == 200 and "data-no-exit" in page.get_data(as_text=True)
    assert client.get("/exit", follow_redirects=False).status_code == 200


def test_the_page_needs_a_signed_in_subscriber(client) -> None:
    response = client.get("/exit")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_subscriber_chooses_transfer_with_consent_and_changes_to_terminate(
    app, client, session, world
) -> None:
    sign_in(client, subscriber_of(session, world))
    line = live_line(session, world)
    found = announce(app, session)

    page = client.get("/exit").get_data(as_text=True)
    assert CHOICE_RE.findall(page) == [(line.msisdn, "")]
    assert "number, SIM, name and ID number" in page and "No choice yet" in page

    refused = choose_on_page(client, line, "transfer")
    assert refused.status_code == 422
    assert "tick the box" in refused.get_data(as_text=True)
    assert choice_row(session, line) is None

    chosen = choose_on_page(client, line, "transfer", consent=True)
    assert chosen.status_code == 303 and chosen.headers["Location"].endswith("/exit")
    row = choice_row(session, line)
    assert row is not None and (row.choice, row.given_by, row.exit_id) == (
        "transfer",
        "customer",
        found.id,
    )
    page = client.get("/exit").get_data(as_text=True)
    assert CHOICE_RE.findall(page) == [(line.msisdn, "transfer")]
    assert "Your choice: transfer to the host, made by you on" in page

    changed = choose_on_page(client, line, "terminate")
    assert changed.status_code == 303
    row = choice_row(session, line)
    assert row is not None and row.choice == "terminate"
    audits = session.exec(select(AuditEntry).where(AuditEntry.action == "exit.choose")).all()
    assert [(a.details["from"], a.details["to"]) for a in audits] == [
        (None, "transfer"),
        ("transfer", "terminate"),
    ]
    assert {a.actor_kind for a in audits} == {"subscriber"}


def test_a_choice_without_the_form_token_is_refused(app, client, session, world) -> None:
    sign_in(client, subscriber_of(session, world))
    line = live_line(session, world)
    announce(app, session)
    response = client.post(f"/exit/lines/{line.id}", data={f"line{line.id}-choice": "terminate"})
    assert response.status_code == 400 and choice_row(session, line) is None


@pytest.mark.parametrize("choice", ["", "keep", "x" * 500])
def test_an_unknown_choice_is_a_form_error(app, client, session, world, choice) -> None:
    sign_in(client, subscriber_of(session, world))
    line = live_line(session, world)
    announce(app, session)
    response = choose_on_page(client, line, choice, consent=True)
    assert response.status_code == 422 and choice_row(session, line) is None


def test_another_customers_line_is_not_found(app, client, session, world) -> None:
    sign_in(client, subscriber_of(session, world))
    other = replace(
        world, customer=create_customer(session, ref="C-OTHER", name="Other", now=real_now())
    )
    theirs = live_line(session, other)
    announce(app, session)
    assert theirs.msisdn not in client.get("/exit").get_data(as_text=True)
    response = choose_on_page(client, theirs, "terminate")
    assert response.status_code == 404 and choice_row(session, theirs) is None
    assert client.post("/exit/lines/999999", data={}).status_code in (400, 404)


def test_the_estimate_is_balance_plus_unused_value_at_the_exit_instant(
    app, client, session, world
) -> None:
    sign_in(client, subscriber_of(session, world))
    fund(session, world, 5000, now=real_now())
    session.commit()
    found = announce(app, session)
    # A period that runs 20 days past the exit instant.
    start = found.exit_at - timedelta(days=10)
    line = live_line(session, world, start=start)
    unused = unused_value_minor(
        price_minor=world.plan.price_minor,
        validity_days=world.plan.validity_days,
        period_end=start + timedelta(days=world.plan.validity_days),
        at=found.exit_at,
    )
    assert unused > 0
    page = client.get("/exit").get_data(as_text=True)
    assert 'data-balance="5000"' in page
    assert f'data-unused="{unused}"' in page
    assert f'data-refund="{5000 + unused}"' in page
    assert line.msisdn in page


def test_after_the_exit_instant_the_page_is_read_only_and_choices_are_refused(
    app, client, session, world, monkeypatch
) -> None:
    sign_in(client, subscriber_of(session, world))
    line = live_line(session, world)
    found = announce(app, session)
    assert choose_on_page(client, line, "transfer", consent=True).status_code == 303

    from app.web.store import market_exit

    monkeypatch.setattr(market_exit, "utcnow", lambda: found.exit_at + timedelta(minutes=1))
    page = client.get("/exit").get_data(as_text=True)
    assert "data-choices-closed" in page and "data-exit-form" not in page
    assert CHOICE_RE.findall(page) == [(line.msisdn, "transfer")]
    assert "left the market on" in page

    refused = choose_on_page(client, line, "terminate")
    assert refused.status_code == 409
    assert "choices can no longer be changed" in refused.get_data(as_text=True)
    row = choice_row(session, line)
    assert row is not None and row.choice == "transfer"


def test_the_choice_page_in_chinese(app, zh_client, session, world) -> None:
    sign_in(zh_client, subscriber_of(session, world))
    line = live_line(session, world)
    announce(app, session)
    page = zh_client.get("/exit").get_data(as_text=True)
    assert "转交主运营商" in page and "销户并退款" in page and line.msisdn in page
    refused = choose_on_page(zh_client, line, "transfer")
    assert refused.status_code == 422 and "请勾选同意" in refused.get_data(as_text=True)
    assert choose_on_page(zh_client, line, "transfer", consent=True).status_code == 303
    assert "由您本人于" in zh_client.get("/exit").get_data(as_text=True)


def test_once_executed_the_page_shows_each_lines_outcome_and_the_refund(
    app, client, session, world, monkeypatch
) -> None:
    from app.exit.execute import execute_exit
    from app.web.store import market_exit

    sign_in(client, subscriber_of(session, world))
    fund(session, world, 3000, now=real_now())
    session.commit()
    kept, ended = live_line(session, world), live_line(session, world)
    found = announce(app, session)
    assert choose_on_page(client, kept, "transfer", consent=True).status_code == 303
    after = found.exit_at + timedelta(minutes=5)
    execute_exit(session, policy="refund", actor=Actor.cli(), now=after)
    session.commit()

    monkeypatch.setattr(market_exit, "utcnow", lambda: after)
    page = client.get("/exit").get_data(as_text=True)
    assert f'data-line="{kept.msisdn}" data-choice="transfer" data-outcome="transferred"' in page
    assert f'data-line="{ended.msisdn}" data-choice="" data-outcome="terminated"' in page
    assert 'data-refund="3000"' in page and "Your refund at the exit" in page
    assert "data-exit-form" not in page
    refused = choose_on_page(client, kept, "terminate")
    assert refused.status_code == 409
