"""Executing a market exit (DESIGN §12): refunds at the boundaries, policies, the invariant."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.audit import AuditEntry
from app.core.pii import PiiCipher
from app.exit import execute as execute_module
from app.exit.choices import choose
from app.exit.errors import ExitInvariantBroken, ExitRefused
from app.exit.execute import execute_exit
from app.exit.files import exit_files
from app.exit.models import ExitCustomer, ExitLine
from app.exit.schedule import get_current_exit
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.balances import customer_balance
from app.ledger.checks import check_ledger
from app.ledger.models import LedgerAccount
from app.payments.models import Refund
from app.provisioning.models import ProvisioningEvent
from app.subscribers.models import Line
from numbering.models import PhoneNumber, Sim
from tests.unit.exit.helpers import (
    ADMIN,
    ANNOUNCED,
    DAY,
    EXIT_AT,
    announced,
    arrears,
    card_payment,
    customer,
    line,
)
from tests.unit.subscribers.helpers import World, make_world

AFTER = EXIT_AT + timedelta(hours=1)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def _refunds(session: Session, customer_id: int) -> list[tuple[int | None, int]]:
    rows = session.exec(
        select(Refund)
        .where(Refund.customer_id == customer_id, Refund.reason == "exit")
        .order_by(col(Refund.id))
    )
    return [(r.payment_id, r.amount_minor) for r in rows]


def _kept(session: Session, customer_id: int) -> ExitCustomer:
    row = session.exec(select(ExitCustomer).where(ExitCustomer.customer_id == customer_id)).one()
    return row


def test_execution_is_refused_before_the_exit_instant(session: Session, world: World) -> None:
    announced(session)
    with pytest.raises(ExitRefused, match="before its instant"):
        execute_exit(session, policy="refund", actor=ADMIN, now=EXIT_AT - timedelta(seconds=1))


def test_a_draft_exit_cannot_be_executed(session: Session, world: World) -> None:
    from app.exit.schedule import plan_exit
    from tests.unit.exit.helpers import EXIT_DATE, PLANNED, TZ

    plan_exit(session, exit_date=EXIT_DATE, notice_days=None, timezone=TZ, actor=ADMIN, now=PLANNED)
    with pytest.raises(ExitRefused, match="announced"):
        execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)


def test_refund_is_balance_plus_unused_value_of_a_period_running_past_the_exit(
    session: Session, world: World
) -> None:
    mid = customer(session, world, balance=5000)
    exact = customer(session, world, balance=1000)
    line(session, mid, start=EXIT_AT - 10 * DAY)  # 20 of 30 days left: 3900 × 20/30 = 2600
    line(session, exact, start=EXIT_AT - 30 * DAY)  # ends exactly at the exit instant
    announced(session)
    found = execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    assert _kept(session, mid.customer.id).refund_minor == 5000 + 2600
    assert _kept(session, exact.customer.id).unused_minor == 0
    assert _refunds(session, exact.customer.id) == [(None, 1000)]
    assert found.state == "executed"
    assert found.summary["refunds"] == 7600 + 1000
    assert found.summary["liability_before"] == 8600
    for who in (mid, exact):
        assert customer_balance(session, customer_id=who.customer.id) == 0


def test_suspended_lines_are_refunded_and_arrears_are_written_off(
    session: Session, world: World
) -> None:
    paused = customer(session, world, balance=300)
    owing = customer(session, world)
    line(session, paused, start=EXIT_AT - 15 * DAY, status="suspended")  # 1950 unused
    line(session, owing, start=EXIT_AT - 20 * DAY)  # 10 days left: 1300 unused
    arrears(session, owing, 700)
    announced(session)
    found = execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    assert _kept(session, paused.customer.id).refund_minor == 300 + 1950
    kept = _kept(session, owing.customer.id)
    assert (kept.balance_minor, kept.written_off_minor, kept.refund_minor) == (-700, 700, 1300)
    assert found.summary["written_off"] == 700
    written = session.exec(select(AuditEntry).where(AuditEntry.action == "exit.write_off")).one()
    assert written.details["amount_minor"] == 700
    assert written.target_id == str(owing.customer.id)
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok


def test_refunds_go_to_card_payments_newest_first_then_to_finance(
    session: Session, world: World
) -> None:
    payer = customer(session, world, balance=5000)
    line(session, payer, start=EXIT_AT - 10 * DAY)  # refund 7600
    older = card_payment(session, payer.customer, 3000, "pi_older")
    newer = card_payment(session, payer.customer, 4000, "pi_newer")
    session.add(
        Refund(
            customer_id=payer.customer.id,
            payment_id=older.id,
            reason="staff",
            status="succeeded",
            amount_minor=1000,
            currency="CNY",
            created_at=ANNOUNCED,
            updated_at=ANNOUNCED,
        )
    )
    announced(session)
    execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    assert _refunds(session, payer.customer.id) == [
        (newer.id, 4000),
        (older.id, 2000),
        (None, 1600),
    ]


def test_lines_end_with_one_outcome_each_and_the_host_is_told(
    session: Session, world: World
) -> None:
    who = customer(session, world, balance=1000)
    going = line(session, who, start=EXIT_AT - 10 * DAY)
    staying = line(session, who, start=EXIT_AT - 10 * DAY)
    announced(session)
    choose(
        session, msisdn=going.msisdn, choice="transfer", actor=ADMIN, now=ANNOUNCED, note="phone"
    )
    execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    session.expire_all()
    assert session.get(Line, going.id).status == "transferred"
    assert session.get(Line, staying.id).status == "terminated"
    events = dict(
        session.exec(
            select(ProvisioningEvent.line_id, ProvisioningEvent.action).where(
                col(ProvisioningEvent.action).in_(("transfer_to_host", "terminate"))
            )
        ).all()
    )
    assert events == {going.id: "transfer_to_host", staying.id: "terminate"}
    assert session.get(Sim, staying.sim_id).status == "retired"
    assert session.get(Sim, going.sim_id).status != "retired"  # it goes with the subscriber
    held = session.exec(
        select(func.count())
        .select_from(PhoneNumber)
        .where(col(PhoneNumber.status).not_in(("returned", "ported_out")))
    ).one()
    assert held == 0
    outcomes = dict(session.exec(select(ExitLine.line_id, ExitLine.outcome)).all())
    assert outcomes == {going.id: "transferred", staying.id: "terminated"}


def test_carry_policy_hands_a_transferred_customers_money_to_the_host(
    session: Session, world: World, tmp_path: Path
) -> None:
    who = customer(session, world, balance=5000, name="王芳")
    going = line(session, who, start=EXIT_AT - 10 * DAY)  # 2600 unused, carried
    ending = line(session, who, start=EXIT_AT - 20 * DAY)  # 1300 unused, refunded
    announced(session)
    choose(session, msisdn=going.msisdn, choice="transfer", actor=ADMIN, now=ANNOUNCED, note="ok")
    found = execute_exit(session, policy="carry", actor=ADMIN, now=AFTER)
    kept = _kept(session, who.customer.id)
    assert (kept.carried_minor, kept.refund_minor) == (5000 + 2600, 1300)
    assert found.summary["transferred_balances"] == 7600
    assert found.summary["refunds"] == 1300
    files = exit_files(
        session,
        get_current_exit(session),
        cipher=PiiCipher(Fernet.generate_key().decode()),
        out_dir=tmp_path,
    )
    handover = next(p for p in files if p.name.startswith("handover_HOSTA_"))
    rows = list(csv.DictReader(handover.open(encoding="utf-8")))
    assert [(r["msisdn"], r["name"], r["balance_carried"]) for r in rows] == [
        (going.msisdn, "王芳", "76.00")
    ]
    assert ending.msisdn not in handover.read_text(encoding="utf-8")


def test_refund_policy_refunds_a_transferred_line_too(session: Session, world: World) -> None:
    who = customer(session, world, balance=5000)
    going = line(session, who, start=EXIT_AT - 10 * DAY)
    announced(session)
    choose(session, msisdn=going.msisdn, choice="transfer", actor=ADMIN, now=ANNOUNCED, note="ok")
    execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    kept = _kept(session, who.customer.id)
    assert (kept.carried_minor, kept.refund_minor) == (0, 7600)


def test_a_customer_without_lines_is_refunded_its_balance(session: Session, world: World) -> None:
    idle = customer(session, world, balance=2500)
    announced(session)
    execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    assert _refunds(session, idle.customer.id) == [(None, 2500)]


def test_a_second_execution_changes_nothing(session: Session, world: World) -> None:
    who = customer(session, world, balance=5000)
    line(session, who, start=EXIT_AT - 10 * DAY)
    announced(session)
    first = dict(execute_exit(session, policy="refund", actor=ADMIN, now=AFTER).summary)
    again = execute_exit(session, policy="refund", actor=ADMIN, now=AFTER + DAY)
    assert again.summary == first
    assert len(_refunds(session, who.customer.id)) == 1


def test_the_invariant_refuses_an_execution_that_does_not_add_up(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = customer(session, world, balance=5000)
    line(session, who, start=EXIT_AT - 10 * DAY)
    announced(session)
    real = execute_module.end_lines

    def forget_a_line(session: Session, *, outcomes, reason, actor, now):  # type: ignore[no-untyped-def]
        kept = dict(list(outcomes.items())[1:])
        return real(session, outcomes=kept, reason=reason, actor=actor, now=now)

    monkeypatch.setattr(execute_module, "end_lines", forget_a_line)
    with pytest.raises(ExitInvariantBroken, match="1 lines not ended"):
        execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)


def test_refused_ledger_entries_refuse_the_execution(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = customer(session, world, balance=5000)
    line(session, who, start=EXIT_AT - 10 * DAY)
    announced(session)
    real = execute_module.post_entries

    def lose_the_unused_value(session: Session, *, entries, actor, now):  # type: ignore[no-untyped-def]
        kept = [e for e in entries if e.kind != "exit_unused"]
        return real(session, entries=kept, actor=actor, now=now)

    monkeypatch.setattr(execute_module, "post_entries", lose_the_unused_value)
    with pytest.raises(ExitInvariantBroken, match="refused"):
        execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)


def test_every_prepaid_account_ends_at_zero(session: Session, world: World) -> None:
    for balance in (0, 10, 5000):
        who = customer(session, world, balance=balance)
        line(session, who, start=EXIT_AT - 3 * DAY)
    announced(session)
    execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    balances = session.exec(
        select(LedgerAccount.balance_minor).where(LedgerAccount.kind == CUSTOMER_PREPAID)
    ).all()
    assert balances and set(balances) == {0}


def test_the_scheduler_job_executes_the_exit_at_its_instant_only(
    db, session: Session, world: World, tmp_path: Path
) -> None:
    from app.exit.jobs import execute_due_exit
    from tests.conftest import make_settings

    who = customer(session, world, balance=5000)
    line(session, who, start=EXIT_AT - 10 * DAY)
    announced(session)
    session.commit()
    settings = make_settings(str(db.engine.url.render_as_string(hide_password=False)), tmp_path)
    assert execute_due_exit(db, settings, EXIT_AT - timedelta(minutes=1)) == {"executed": 0}
    done = execute_due_exit(db, settings, EXIT_AT)
    assert done["executed"] == 1 and done["refunds"] == 7600
    assert sorted(p.name for p in (tmp_path / "exit").iterdir()) == [
        "exit_report_2027-03-01.csv",
        "handover_HOSTA_2027-03-01.csv",
        "refunds_2027-03-01.csv",
    ]
    assert execute_due_exit(db, settings, EXIT_AT + DAY) == {"executed": 0}


def test_a_pending_line_bought_in_the_store_is_refunded_its_paid_first_period(
    session: Session, world: World
) -> None:
    from tests.unit.onboarding.test_orders import Buyer, add_sims, complete, credit, place

    add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    credit(session, buyer, order.total_minor + 500, "pending-exit")
    paid = complete(session, order)
    assert session.get(Line, paid.line_id).status == "pending"
    announced(session)
    found = execute_exit(session, policy="refund", actor=ADMIN, now=AFTER)
    kept = _kept(session, buyer.customer_id)
    # The plan price the order paid for a period that never began, and the 5.00 left over.
    assert (kept.unused_minor, kept.refund_minor) == (order.price_minor, order.price_minor + 500)
    assert found.summary["terminated"] == 1
    session.expire_all()
    assert session.get(Line, paid.line_id).status == "terminated"
