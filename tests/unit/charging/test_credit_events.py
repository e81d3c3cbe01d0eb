"""A credit announces CustomerCredited; charging's handler renews the renewal-suspended
lines in the same unit of work, so a rolled-back credit leaves no renewal behind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.charging import handlers
from app.charging.models import LinePeriod
from app.charging.periods import open_period
from app.charging.renewal_terms import ENTRY_KIND
from app.charging.renewals import run_renewals
from app.core.audit import Actor
from app.core.db import Database
from app.core.events import handlers_of
from app.ledger.balances import customer_balance
from app.ledger.events import CustomerCredited
from app.ledger.models import JournalEntry
from app.payments.models import Payment
from app.payments.services import MoneyPolicy, record_offline_payment
from app.payments.vouchers import VoucherPolicy, create_voucher_batch, redeem_voucher
from app.subscribers.models import Line
from tests.factories import NOW
from tests.unit.subscribers.helpers import STAFF, make_line, make_world

PERIOD = timedelta(days=30)
PRICE = 3900  # LITE30
END = NOW + PERIOD
CREDIT_AT = END + timedelta(days=2)
POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)


class Boom(Exception):
    pass


def _suspended_line(db: Database, code: str) -> tuple[int, int]:
    """(customer id, line id) of a line its unpaid renewal suspended at END."""
    with db.transaction() as session:
        world = make_world(session, code=code)
        line = make_line(session, world)
        open_period(session, line=line, plan=world.plan, start=NOW, now=NOW)
        session.flush()
        run_renewals(session, now=END, quarantine_days=90)
        session.refresh(line)
        assert line.status == "suspended" and line.renewal_failed_at == END
        assert world.customer.id is not None and line.id is not None
        return world.customer.id, line.id


def _renewals(session: Session) -> list[JournalEntry]:
    return list(session.exec(select(JournalEntry).where(JournalEntry.kind == ENTRY_KIND)))


def _periods(session: Session, line_id: int) -> list[LinePeriod]:
    return list(
        session.exec(
            select(LinePeriod).where(LinePeriod.line_id == line_id).order_by(col(LinePeriod.start))
        )
    )


@pytest.fixture
def renewals_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Actor, datetime]]:
    """The renewals charging's CustomerCredited handler runs (it still runs them)."""
    seen: list[tuple[int, Actor, datetime]] = []
    renew = handlers.renew_suspended_lines

    def spy(session: Session, *, customer_id: int, actor: Actor, now: datetime) -> Any:
        seen.append((customer_id, actor, now))
        return renew(session, customer_id=customer_id, actor=actor, now=now)

    monkeypatch.setattr(handlers, "renew_suspended_lines", spy)
    return seen


def test_charging_listens_to_customer_credited() -> None:
    assert handlers.renew_lines_after_credit in handlers_of(CustomerCredited)


def test_a_voucher_redemption_renews_a_renewal_suspended_line_through_the_event(
    db: Database, renewals_seen: list[tuple[int, Actor, datetime]]
) -> None:
    customer_id, line_id = _suspended_line(db, "CREDITV")
    with db.transaction() as session:
        _, [(serial, pin)] = create_voucher_batch(
            session,
            name="Renew 50",
            value_minor=5000,
            count=1,
            expires_at=NOW + timedelta(days=365),
            currency="CNY",
            actor=STAFF,
            now=NOW,
        )
        redeem_voucher(
            session,
            customer_id=customer_id,
            serial=serial,
            pin=pin,
            ip="198.51.100.7",
            actor=STAFF,
            now=CREDIT_AT,
            cap_months=24,
            reference_monthly_minor=5000,
            policy=VoucherPolicy(),
        )

    assert renewals_seen == [(customer_id, STAFF, CREDIT_AT)]
    with db.transaction() as session:
        line = session.get(Line, line_id)
        assert line is not None
        assert line.status == "active" and line.renewal_failed_at is None
        # The new period starts at the credit, not at the unpaid period's end.
        assert line.period_end == CREDIT_AT + PERIOD
        assert [(p.start, p.end) for p in _periods(session, line_id)][-1] == (
            CREDIT_AT,
            CREDIT_AT + PERIOD,
        )
        assert len(_renewals(session)) == 1
        assert customer_balance(session, customer_id=customer_id) == 5000 - PRICE


def test_a_staff_payment_rolled_back_after_the_credit_leaves_no_credit_and_no_renewal(
    db: Database, renewals_seen: list[tuple[int, Actor, datetime]]
) -> None:
    customer_id, line_id = _suspended_line(db, "CREDITR")

    with pytest.raises(Boom), db.transaction() as session:
        record_offline_payment(
            session,
            customer_id=customer_id,
            amount_minor=PRICE,
            method="cash",
            reference="CASH-ROLLBACK",
            actor=STAFF,
            now=CREDIT_AT,
            policy=POLICY,
        )
        # Inside the unit of work the credit has renewed and resumed the line ...
        assert session.get(Line, line_id).status == "active"  # type: ignore[union-attr]
        assert len(_renewals(session)) == 1
        raise Boom

    # ... and the rollback takes both away.
    assert renewals_seen == [(customer_id, STAFF, CREDIT_AT)]
    with db.transaction() as session:
        line = session.get(Line, line_id)
        assert line is not None
        assert line.status == "suspended" and line.renewal_failed_at == END
        assert line.period_end == END
        assert len(_periods(session, line_id)) == 1
        assert _renewals(session) == []
        assert customer_balance(session, customer_id=customer_id) == 0
        assert session.exec(select(Payment).where(Payment.reference == "CASH-ROLLBACK")).all() == []
