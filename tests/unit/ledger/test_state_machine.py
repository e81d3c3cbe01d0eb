"""The prepaid ledger against a model, by random sequences of money movements (DESIGN §5).

A hypothesis state machine keeps the balance it expects for each of three
customers (their caps differ: lines on plans of other prices, and none) and
what it expects in refunds payable, and drives the real services: offline
payments, card payments that arrive after the headroom moved, voucher
credits, plan and usage charges (arrears), adjustments, staff refunds,
refunds paid by hand or by Stripe, and replays of earlier operations — the
same again (nothing changes) or with another amount (a conflict, nothing
changes). Every refusal runs in a savepoint, as the request boundary would
roll it back. After every step the invariants are checked against the model.

It runs on both backends through the `session` fixture; one example is one
savepoint of the test's rolled-back transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import Session, col, func, select

from app.core.audit import Actor
from app.ledger.balances import book_liability, customer_balance
from app.ledger.cap import prepaid_cap_minor
from app.ledger.checks import check_ledger
from app.ledger.errors import CapExceeded, IdempotencyConflict, InsufficientBalance
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.ledger.movements import adjust_balance, charge_customer, credit_customer, receive_money
from app.payments import refunds as payment_refunds
from app.payments import stripe_payments
from app.payments.errors import PaymentConflict, RefundStateError
from app.payments.models import FINAL_REFUND_STATUSES, Payment, Refund
from app.payments.services import MoneyPolicy, record_offline_payment
from app.payments.stripe_gateway import RemoteRefund
from tests.factories import NOW
from tests.unit.ledger.helpers import customers_with_different_caps, make_customer

STAFF = Actor.system("finance")
POLICY = MoneyPolicy(currency="CNY", cap_months=3, reference_monthly_minor=5000)
# One LITE30 line: 3 × 3900; LITE30 + Q90: 3 × (3900 + 3333); no line: 3 × 5000.
CAPS = (11700, 21699, 15000)
MACHINE_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each example is dozens of transactions, and shrinking one
    # took over five minutes. The failing steps are printed as they ran.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

customers = st.integers(min_value=0, max_value=len(CAPS) - 1)
# Small amounts, and ones around and above the caps.
amounts = st.one_of(st.integers(1, 4000), st.integers(4000, 25000))
_keys = itertools.count(1)


def _key(prefix: str) -> str:
    return f"{prefix}-{next(_keys)}"


@dataclass(frozen=True)
class Done:
    """An accepted operation, to replay later."""

    op: str  # offline | card | voucher | plan | usage | adjust
    customer: int
    amount: int
    key: str  # the idempotency key, or the offline reference
    entry_id: int | None
    payment_id: int | None = None


class LedgerMachine(RuleBasedStateMachine):
    """Set by the test: the session (its transaction is rolled back) and the customers' ids."""

    session: Session
    customer_ids: tuple[int, ...]

    pending_cards = Bundle("pending_cards")

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = self.session.begin_nested()
        self.balance = [0] * len(self.customer_ids)
        self.payable = 0
        self.done: list[Done] = []
        self.hand_refunds: list[tuple[int, int]] = []  # (refund id, amount): no card
        self.card_refunds: list[tuple[int, int]] = []  # pending card refunds
        self.refused = 0

    def teardown(self) -> None:
        self.savepoint.rollback()
        self.forget()

    def forget(self) -> None:
        """Drop the identity map after a savepoint rollback.

        SQLite reuses the rowids of rolled-back rows; an object that was
        reloaded inside the savepoint (so not in its list of new objects)
        would stay in the identity map and clash with the next insert.
        """
        self.session.expunge_all()

    # -- helpers ------------------------------------------------------------------------

    def cid(self, customer: int) -> int:
        return self.customer_ids[customer]

    def headroom(self, customer: int) -> int:
        return max(CAPS[customer] - self.balance[customer], 0)

    def snapshot(self) -> tuple[Any, ...]:
        s = self.session
        return (
            s.exec(select(func.count()).select_from(JournalEntry)).one(),
            s.exec(select(func.count()).select_from(Posting)).one(),
            tuple(s.exec(select(LedgerAccount.id, LedgerAccount.balance_minor)).all()),
            tuple(s.exec(select(Payment.id, Payment.status, Payment.amount_minor)).all()),
            tuple(s.exec(select(Refund.id, Refund.status, Refund.amount_minor)).all()),
        )

    @contextmanager
    def refusal(self, *errors: type[BaseException]) -> Iterator[pytest.ExceptionInfo[Any]]:
        """The call in the block must be refused, in a savepoint, and change nothing."""
        before = self.snapshot()
        with pytest.raises(errors) as caught:
            with self.session.begin_nested():
                yield caught
        self.forget()
        assert self.snapshot() == before
        self.refused += 1

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        before = self.snapshot()
        yield
        assert self.snapshot() == before

    def credit(self, customer: int, amount: int, key: str) -> Any:
        return credit_customer(
            self.session,
            customer_id=self.cid(customer),
            amount_minor=amount,
            source_kind="voucher_float",
            idempotency_key=key,
            actor=STAFF,
            now=NOW,
            currency="CNY",
            **POLICY.cap_kwargs(),
        )

    def offline(self, customer: int, amount: int, reference: str) -> Payment:
        return record_offline_payment(
            self.session,
            customer_id=self.cid(customer),
            amount_minor=amount,
            method="bank_transfer",
            reference=reference,
            actor=STAFF,
            now=NOW,
            policy=POLICY,
        )

    def charge(self, customer: int, amount: int, key: str, *, usage: bool) -> Any:
        return charge_customer(
            self.session,
            customer_id=self.cid(customer),
            amount_minor=amount,
            revenue_kind="revenue_usage" if usage else "revenue_plans",
            idempotency_key=key,
            actor=Actor.system("billing"),
            now=NOW,
            currency="CNY",
            allow_arrears=usage,
        )

    def adjust(self, customer: int, amount: int, key: str) -> Any:
        return adjust_balance(
            self.session,
            customer_id=self.cid(customer),
            amount_minor=amount,
            reason="correction",
            idempotency_key=key,
            actor=STAFF,
            now=NOW,
            currency="CNY",
            **POLICY.cap_kwargs(),
        )

    def complete(self, payment_id: int, received: int) -> Payment:
        return stripe_payments.complete_stripe_payment(
            self.session,
            payment_id=payment_id,
            amount_received_minor=received,
            stripe_session_id=f"cs_{payment_id}",
            payment_intent_id=f"pi_{payment_id}",
            now=NOW,
            policy=POLICY,
        )

    def credited(self, customer: int, amount: int) -> None:  # TEMP
        """A credit was accepted: the arrears, if any, are cleared first (plain addition)."""
        before = self.balance[customer]
        self.balance[customer] = before + amount
        if before < 0:
            assert customer_balance(self.session, customer_id=self.cid(customer)) == (
                amount - (-before)
            )

    def expect_cap_refusal(self, caught: pytest.ExceptionInfo[Any], customer: int) -> None:
        assert caught.value.params["allowed_minor"] == self.headroom(customer)

    # -- money in -----------------------------------------------------------------------

    @rule(customer=customers, amount=amounts)
    def offline_payment(self, customer: int, amount: int) -> None:
        reference = _key("BANK")
        if self.balance[customer] + amount > CAPS[customer]:
            with self.refusal(CapExceeded) as caught:
                self.offline(customer, amount, reference)
            self.expect_cap_refusal(caught, customer)
            return
        payment = self.offline(customer, amount, reference)
        assert payment.status == "succeeded" and payment.credited_minor == amount
        self.credited(customer, amount)
        self.done.append(Done("offline", customer, amount, reference, payment.journal_entry_id))

    @rule(customer=customers, amount=amounts)
    def voucher_credit(self, customer: int, amount: int) -> None:
        key = _key("VOUCHER")
        if self.balance[customer] + amount > CAPS[customer]:
            with self.refusal(CapExceeded) as caught:
                self.credit(customer, amount, key)
            self.expect_cap_refusal(caught, customer)
            return
        entry = self.credit(customer, amount, key)
        self.credited(customer, amount)
        self.done.append(Done("voucher", customer, amount, key, entry.id))

    @rule(customer=customers)
    def fill_to_the_cap(self, customer: int) -> None:
        """Exactly the headroom is taken; one minor unit more is refused."""
        headroom = self.headroom(customer)
        with self.refusal(CapExceeded) as caught:
            self.credit(customer, headroom + 1, _key("FILL"))
        self.expect_cap_refusal(caught, customer)
        if headroom:
            key = _key("FILL")
            entry = self.credit(customer, headroom, key)
            self.credited(customer, headroom)
            assert self.balance[customer] == CAPS[customer]
            self.done.append(Done("voucher", customer, headroom, key, entry.id))

    @rule(target=pending_cards, customer=customers, amount=amounts)
    def start_card_payment(self, customer: int, amount: int) -> Any:
        if self.balance[customer] + amount > CAPS[customer]:
            with self.refusal(CapExceeded) as caught:
                stripe_payments.create_stripe_payment(
                    self.session,
                    customer_id=self.cid(customer),
                    amount_minor=amount,
                    purpose="topup",
                    actor=STAFF,
                    now=NOW,
                    policy=POLICY,
                )
            self.expect_cap_refusal(caught, customer)
            return multiple()  # nothing to complete
        payment = stripe_payments.create_stripe_payment(
            self.session,
            customer_id=self.cid(customer),
            amount_minor=amount,
            purpose="topup",
            actor=STAFF,
            now=NOW,
            policy=POLICY,
        )
        assert payment.id is not None and payment.status == "created"
        return (payment.id, customer, amount)

    @rule(card=consumes(pending_cards), extra=st.integers(-2000, 20000))
    def card_money_arrives(self, card: Any, extra: int) -> None:
        """Paid after the headroom may have moved: credited up to the cap, the rest refunded."""
        payment_id, customer, asked = card
        received = max(asked + extra, 1)
        before = self.balance[customer]
        credited = min(received, max(CAPS[customer] - before, 0))
        excess = received - credited
        payment = self.complete(payment_id, received)
        assert payment.status == "succeeded"
        assert (payment.amount_minor, payment.credited_minor) == (received, credited)
        self.credited(customer, credited)
        assert self.balance[customer] <= CAPS[customer]
        refunds = self.session.exec(select(Refund).where(Refund.payment_id == payment_id)).all()
        if excess:
            assert [(r.reason, r.status, r.amount_minor) for r in refunds] == [
                ("cap_excess", "pending", excess)
            ]
            assert refunds[0].id is not None
            self.card_refunds.append((refunds[0].id, excess))
            self.payable += excess
        else:
            assert refunds == []
        self.done.append(
            Done(
                "card",
                customer,
                received,
                f"payment:{payment_id}",
                payment.journal_entry_id,
                payment_id,
            )
        )

    # -- money out ----------------------------------------------------------------------

    @rule(customer=customers, amount=amounts)
    def plan_charge(self, customer: int, amount: int) -> None:
        key = _key("RENEW")
        if self.balance[customer] < amount:
            with self.refusal(InsufficientBalance):
                self.charge(customer, amount, key, usage=False)
            return
        entry = self.charge(customer, amount, key, usage=False)
        self.balance[customer] -= amount
        self.done.append(Done("plan", customer, amount, key, entry.id))

    @rule(customer=customers, amount=st.integers(1, 6000))
    def late_usage(self, customer: int, amount: int) -> None:
        """Usage may take the balance below zero (arrears)."""
        key = _key("USAGE")
        entry = self.charge(customer, amount, key, usage=True)
        self.balance[customer] -= amount
        self.done.append(Done("usage", customer, amount, key, entry.id))

    @rule(customer=customers, amount=amounts, sign=st.sampled_from([1, -1]))
    def adjustment(self, customer: int, amount: int, sign: int) -> None:
        key = _key("ADJ")
        signed = sign * amount
        after = self.balance[customer] + signed
        if signed > 0 and after > CAPS[customer]:
            with self.refusal(CapExceeded) as caught:
                self.adjust(customer, signed, key)
            self.expect_cap_refusal(caught, customer)
            return
        if signed < 0 and after < 0:
            with self.refusal(InsufficientBalance):
                self.adjust(customer, signed, key)
            return
        entry = self.adjust(customer, signed, key)
        if signed > 0:
            self.credited(customer, signed)
        else:
            self.balance[customer] = after
        self.done.append(Done("adjust", customer, signed, key, entry.id))

    @rule(customer=customers, amount=amounts)
    def staff_refund(self, customer: int, amount: int) -> None:
        """Out of the balance into refunds payable, back to card payments first."""

        def ask() -> list[Refund]:
            return payment_refunds.request_refund(
                self.session,
                customer_id=self.cid(customer),
                amount_minor=amount,
                reason="staff",
                note="customer asked",
                actor=STAFF,
                now=NOW,
                currency="CNY",
            )

        if self.balance[customer] < amount:
            with self.refusal(InsufficientBalance):
                ask()
            return
        refunds = ask()
        assert sum(r.amount_minor for r in refunds) == amount
        assert all(r.payment_id is not None for r in refunds[:-1])
        for refund in refunds:
            assert refund.id is not None and refund.status == "pending"
            target = self.card_refunds if refund.payment_id else self.hand_refunds
            target.append((refund.id, refund.amount_minor))
        self.balance[customer] -= amount
        self.payable += amount

    @precondition(lambda self: self.hand_refunds)
    @rule(pick=st.integers(0, 1000))
    def refund_paid_by_hand(self, pick: int) -> None:
        refund_id, amount = self.hand_refunds.pop(pick % len(self.hand_refunds))
        refund = payment_refunds.mark_refund_paid_offline(
            self.session, refund_id=refund_id, note="paid at the counter", actor=STAFF, now=NOW
        )
        assert refund.status == "paid_offline"
        self.payable -= amount
        # Paying it again is refused and changes nothing.
        with self.refusal(RefundStateError):
            payment_refunds.mark_refund_paid_offline(
                self.session, refund_id=refund_id, note="again", actor=STAFF, now=NOW
            )

    @precondition(lambda self: self.card_refunds)
    @rule(pick=st.integers(0, 1000))
    def card_refund_settles(self, pick: int) -> None:
        """A pending card refund cannot be paid by hand; Stripe's success takes it out."""
        refund_id, amount = self.card_refunds.pop(pick % len(self.card_refunds))
        with self.refusal(RefundStateError):
            payment_refunds.mark_refund_paid_offline(
                self.session, refund_id=refund_id, note="by hand", actor=STAFF, now=NOW
            )
        remote = RemoteRefund(id=f"re_{refund_id}", status="succeeded")
        refund = payment_refunds.apply_remote_refund(
            self.session, refund_id=refund_id, remote=remote, now=NOW
        )
        assert refund.status == "succeeded"
        self.payable -= amount
        with self.unchanged():  # a redelivered answer
            payment_refunds.apply_remote_refund(
                self.session, refund_id=refund_id, remote=remote, now=NOW
            )

    # -- replays ------------------------------------------------------------------------

    def replay(self, done: Done, amount: int, customer: int) -> Any:
        if done.op == "offline":
            return self.offline(customer, amount, done.key).journal_entry_id
        if done.op == "voucher":
            return self.credit(customer, amount, done.key).id
        if done.op in ("plan", "usage"):
            return self.charge(customer, amount, done.key, usage=done.op == "usage").id
        if done.op == "adjust":
            return self.adjust(customer, amount, done.key).id
        assert done.op == "card" and done.payment_id is not None
        return receive_money(
            self.session,
            customer_id=self.cid(customer),
            amount_minor=amount,
            source_kind="cash_stripe",
            idempotency_key=done.key,
            actor=Actor.system("stripe"),
            now=NOW,
            currency="CNY",
            **POLICY.cap_kwargs(),
        ).entry.id

    @precondition(lambda self: self.done)
    @rule(pick=st.integers(0, 1000))
    def replay_the_same(self, pick: int) -> None:
        """The same key (or reference) and payload again: the first entry, nothing changes."""
        done = self.done[pick % len(self.done)]
        with self.unchanged():
            assert self.replay(done, done.amount, done.customer) == done.entry_id
            if done.op == "card":
                assert done.payment_id is not None
                payment = self.complete(done.payment_id, done.amount)
                assert payment.journal_entry_id == done.entry_id

    @precondition(lambda self: self.done)
    @rule(pick=st.integers(0, 1000), delta=st.integers(-3000, 3000))
    def replay_with_another_payload(self, pick: int, delta: int) -> None:
        """The same key with another amount (or, for delta 0, customer) is a conflict."""
        done = self.done[pick % len(self.done)]
        customer = done.customer
        amount = done.amount + delta
        if delta == 0 or amount == 0 or (amount < 0) != (done.amount < 0):
            if done.op in ("adjust", "usage", "plan", "voucher", "card"):
                amount = done.amount + (1 if done.amount > 0 else -1)
            else:
                # Same amount (a refused sign would be a different error), other customer.
                amount = done.amount
                customer = (customer + 1) % len(CAPS)
        error = PaymentConflict if done.op == "offline" else IdempotencyConflict
        with self.refusal(error):
            self.replay(done, amount, customer)
        if done.op == "card":
            # A redelivered webhook with another amount finds the payment booked.
            assert done.payment_id is not None
            with self.unchanged():
                payment = self.complete(done.payment_id, done.amount + 1)
                assert payment.amount_minor == done.amount

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def the_ledger_matches_the_model(self) -> None:
        s = self.session
        balances = dict(
            s.exec(
                select(LedgerAccount.customer_id, LedgerAccount.balance_minor).where(
                    LedgerAccount.kind == "customer_prepaid"
                )
            ).all()
        )
        for customer, expected in enumerate(self.balance):
            assert balances.get(self.cid(customer), 0) == expected, (customer, expected)
            assert expected <= CAPS[customer]  # usage only lowers a balance
        assert book_liability(s) == sum(self.balance)
        payable = s.exec(
            select(func.coalesce(func.sum(LedgerAccount.balance_minor), 0)).where(
                LedgerAccount.kind == "refunds_payable"
            )
        ).one()
        open_refunds = s.exec(
            select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
                col(Refund.status).not_in(FINAL_REFUND_STATUSES)
            )
        ).one()
        assert payable == open_refunds == self.payable
        assert s.exec(select(func.coalesce(func.sum(Posting.amount_minor), 0))).one() == 0
        result = check_ledger(
            s,
            cap_months=POLICY.cap_months,
            reference_monthly_minor=POLICY.reference_monthly_minor,
        )
        assert result.ok, result.problems


def test_random_money_movements_match_the_model(session: Session) -> None:
    customer_ids = tuple(c.id for c in customers_with_different_caps(session, prefix="SM"))
    caps = tuple(
        prepaid_cap_minor(
            session,
            customer_id=cid,
            settings_months=POLICY.cap_months,
            reference_monthly_minor=POLICY.reference_monthly_minor,
        )
        for cid in customer_ids
    )
    assert caps == CAPS
    machine = type(
        "BoundLedgerMachine",
        (LedgerMachine,),
        {"session": session, "customer_ids": customer_ids},
    )
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)


def test_a_credit_smaller_than_the_arrears_is_accepted(session: Session) -> None:
    """DESIGN §5: late usage may leave arrears, and the next credit clears them first."""
    customer = make_customer(session)
    assert customer.id is not None
    charge_customer(
        session,
        customer_id=customer.id,
        amount_minor=500,
        revenue_kind="revenue_usage",
        idempotency_key="usage-1",
        actor=STAFF,
        now=NOW,
        currency="CNY",
        allow_arrears=True,
    )
    # A credit smaller than the arrears is accepted and lowers them.
    credit_customer(
        session,
        customer_id=customer.id,
        amount_minor=200,
        source_kind="voucher_float",
        idempotency_key="voucher-1",
        actor=STAFF,
        now=NOW,
        currency="CNY",
        **POLICY.cap_kwargs(),
    )
    assert customer_balance(session, customer_id=customer.id) == -300
