"""Follow-ups announced from below subscribers: each happens and rolls back with its unit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.auth.resets import request_password_reset
from app.charging.models import LinePeriod
from app.core.events import emit
from app.notifications.models import Notification
from app.provisioning.events import ActivationDelivered
from app.provisioning.models import ProvisioningEvent
from app.subscribers import lifecycle
from app.subscribers.events import LineActivated
from app.subscribers.models import Line
from tests.factories import NOW, make_subscriber
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session)


def _pending_line_with_activation(session: Session, world: World) -> tuple[Line, int]:
    line = make_line(session, world, status="pending")
    assert line.id is not None
    lifecycle.request_activation(session, line_id=line.id, actor=STAFF, now=NOW)
    event = session.exec(
        select(ProvisioningEvent).where(
            ProvisioningEvent.line_id == line.id, ProvisioningEvent.action == "activate"
        )
    ).one()
    assert event.id is not None
    return line, event.id


def test_a_delivered_activation_makes_the_line_active_with_a_first_period(
    session: Session, world: World
) -> None:
    line, event_id = _pending_line_with_activation(session, world)
    later = NOW + timedelta(minutes=2)
    emit(session, ActivationDelivered(line_id=line.id, event_id=event_id, now=later))  # type: ignore[arg-type]
    session.refresh(line)
    assert line.status == "active"
    period = session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).one()
    assert period.start == later
    assert line.period_end == period.end


def test_a_delivered_activation_rolls_back_with_its_unit_of_work(
    session: Session, world: World
) -> None:
    line, event_id = _pending_line_with_activation(session, world)
    unit = session.begin_nested()
    emit(session, ActivationDelivered(line_id=line.id, event_id=event_id, now=NOW))  # type: ignore[arg-type]
    unit.rollback()
    session.expire_all()
    assert session.get(Line, line.id).status == "pending"  # type: ignore[union-attr]
    assert session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).all() == []


def test_line_activated_opens_the_first_period_and_rolls_back_with_it(
    session: Session, world: World
) -> None:
    line = make_line(session, world, status="active")
    assert line.id is not None
    existing = len(session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).all())
    unit = session.begin_nested()
    emit(session, LineActivated(line_id=line.id, now=NOW, entry_id=None))
    opened = session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).all()
    assert len(opened) == existing + 1
    assert opened[-1].price_minor == world.plan.price_minor
    unit.rollback()
    session.expire_all()
    after = session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).all()
    assert len(after) == existing


def _reset(session: Session, email: str) -> bool:
    return request_password_reset(
        session, email=email, ip="203.0.113.9", reset_url=lambda t: f"https://x/r/{t}", now=NOW
    )


def test_a_password_reset_queues_the_notice_filed_under_the_customer(
    session: Session, world: World
) -> None:
    account = make_subscriber(session, email="reset-event@example.com")
    world.customer.subscriber_account_id = account.id
    session.add(world.customer)
    session.flush()
    assert _reset(session, "reset-event@example.com")
    notice = session.exec(select(Notification).where(Notification.kind == "password_reset")).one()
    assert (notice.recipient, notice.account_id) == ("reset-event@example.com", account.id)
    assert notice.customer_id == world.customer.id
    assert notice.data["reset_url"].startswith("https://x/r/")


def test_a_password_reset_notice_rolls_back_with_its_unit_of_work(session: Session) -> None:
    make_subscriber(session, email="reset-rollback@example.com")
    unit = session.begin_nested()
    assert _reset(session, "reset-rollback@example.com")
    unit.rollback()
    assert (
        session.exec(select(Notification).where(Notification.kind == "password_reset")).all() == []
    )
