"""Exit refunds paid back through Stripe (DESIGN §12): the real SDK against the local server.

A customer tops up twice by card, a staff refund takes part of the older
payment back, a line runs past the exit: at the execution the refund goes
to the newer payment first, then what is left of the older one, then to
finance by hand; the refund job sends the card parts to Stripe, and
sending again sends nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from app.exit.execute import execute_exit
from app.ledger.checks import check_ledger
from app.payments import refunds as payment_refunds
from app.payments.models import Refund
from app.subscribers.models import Customer
from tests.integration import test_stripe as stripe_tests
from tests.integration.test_stripe import paid_checkout, staff_refund
from tests.unit.exit.helpers import ADMIN, DAY, EXIT_AT, announced, line
from tests.unit.subscribers.helpers import make_world

# The Stripe tests' fixtures: a gateway on the local server, a customer committed.
gateway = stripe_tests.gateway
customer = stripe_tests.customer


def test_exit_refunds_go_back_to_the_card_payments_through_stripe(
    db, session, client, gateway, stripe_on, customer: Customer
) -> None:
    older = paid_checkout(db, gateway, client, stripe_on, customer, 3_000)
    newer = paid_checkout(db, gateway, client, stripe_on, customer, 4_000)
    staff_refund(session, customer, 1_000)  # from the newest payment first: 4000 → 3000 left
    assert payment_refunds.send_pending_refunds(db, gateway, now=EXIT_AT - DAY) == 1
    world = make_world(session, code="HOSTA")
    from dataclasses import replace

    mine = replace(world, customer=session.get(Customer, customer.id))
    line(session, mine, start=EXIT_AT - 10 * DAY)  # 2600 unused
    announced(session)
    execute_exit(session, policy="refund", actor=ADMIN, now=EXIT_AT + timedelta(hours=1))
    session.commit()
    refunds = session.exec(
        select(Refund).where(Refund.reason == "exit").order_by(col(Refund.id))
    ).all()
    # 6000 left of the balance + 2600 unused: newer payment's 3000, older's 3000, 2600 by hand.
    assert [(r.payment_id, r.amount_minor) for r in refunds] == [
        (newer.id, 3_000),
        (older.id, 3_000),
        (None, 2_600),
    ]
    sent = payment_refunds.send_pending_refunds(db, gateway, now=EXIT_AT + DAY)
    assert sent == 2
    assert payment_refunds.send_pending_refunds(db, gateway, now=EXIT_AT + 2 * DAY) == 0
    session.expire_all()
    statuses = [session.get(Refund, r.id).status for r in refunds]  # type: ignore[union-attr]
    assert statuses[:2] == ["succeeded", "succeeded"]
    assert statuses[2] == "pending"  # for finance to pay by hand
    assert len(stripe_on.refunds) == 3  # the staff refund and the two exit parts
    assert check_ledger(session, cap_months=24, reference_monthly_minor=5000).ok
