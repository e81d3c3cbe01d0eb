"""16 threads × 200 mixed money movements on three customers, on SQLite and PostgreSQL.

Each operation is its own unit of work through `Database.transaction()`
(SQLite: `BEGIN IMMEDIATE`; PostgreSQL: READ COMMITTED and row locks), on a
database of its own — a fresh file, or a fresh PostgreSQL database — so the
threads really commit and contend, outside the per-test rollback. The
operations: offline payments, credits near the cap, card payments completed
after the headroom may have moved, plan charges, late usage into arrears,
adjustments ±, staff refunds, refunds paid by hand, and replays of other
threads' keys (the same payload, or another one). Expected refusals are
counted; anything else is an error. At the end the ledger must check out,
with no drift, nothing above a cap, and each customer's balance equal to the
sum of what the threads saw accepted.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import col, func, select

from app.core.audit import Actor
from app.core.db import Database
from app.ledger.balances import book_liability, customer_balance
from app.ledger.cap import cap_headroom_minor
from app.ledger.checks import check_ledger
from app.ledger.errors import CapExceeded, IdempotencyConflict, InsufficientBalance
from app.ledger.models import LedgerAccount, Posting
from app.ledger.movements import adjust_balance, charge_customer, credit_customer
from app.payments import refunds as payment_refunds
from app.payments import stripe_payments
from app.payments.errors import PaymentConflict, RefundStateError
from app.payments.models import FINAL_REFUND_STATUSES, Refund
from app.payments.services import MoneyPolicy, record_offline_payment
from tests.concurrency import fresh_database
from tests.factories import NOW
from tests.unit.ledger.helpers import customers_with_different_caps

THREADS = 16
OPERATIONS = 200
STAFF = Actor.system("finance")
POLICY = MoneyPolicy(currency="CNY", cap_months=3, reference_monthly_minor=5000)
CAPS = (11700, 21699, 15000)
EXPECTED = (
    CapExceeded,
    InsufficientBalance,
    IdempotencyConflict,
    PaymentConflict,
    RefundStateError,
)
# (operation, weight)
MIX = {
    "offline": 14,
    "near_cap": 10,
    "card": 10,
    "plan": 14,
    "usage": 10,
    "adjust": 10,
    "refund": 10,
    "pay_by_hand": 6,
    "replay": 8,
    "conflict": 8,
}


@dataclass(frozen=True)
class Done:
    op: str  # offline | voucher | plan | usage | adjust
    customer: int
    amount: int
    key: str
    entry_id: int | None


@dataclass
class Shared:
    """What the threads share: accepted operations to replay, refunds to pay by hand."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    done: list[Done] = field(default_factory=list)
    hand_refunds: list[tuple[int, int]] = field(default_factory=list)
    paid_refunds: list[int] = field(default_factory=list)


@dataclass
class Tally:
    """One thread's view: what it saw accepted, per customer, and what it saw refused."""

    balance: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    payable: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    # Credits refused with InsufficientBalance because the balance was in arrears.
    arrears_credit_refusals: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


@pytest.fixture
def own_database(backend: str, tmp_path: Any) -> Any:
    """A fresh, migrated database of the backend, outside the per-test rollback."""
    yield from fresh_database(backend, tmp_path, "concurrency", pool_size=THREADS + 2)


class Worker:
    def __init__(
        self, database: Database, shared: Shared, customer_ids: tuple[int, ...], w: int
    ) -> None:
        self.db = database
        self.shared = shared
        self.ids = customer_ids
        self.w = w
        self.rng = random.Random(1000 + w)
        self.tally = Tally()
        self.ops = list(MIX)
        self.weights = list(MIX.values())

    def run(self) -> None:
        try:
            for i in range(OPERATIONS):
                op = self.rng.choices(self.ops, self.weights)[0]
                customer = self.rng.randrange(len(self.ids))
                try:
                    getattr(self, f"op_{op}")(customer, f"w{self.w}-{i}")
                    self.tally.accepted[op] += 1
                except EXPECTED as exc:
                    self.tally.refused[f"{op}:{type(exc).__name__}"] += 1
        except BaseException as exc:  # anything else fails the test
            self.tally.errors.append(exc)

    # -- helpers ------------------------------------------------------------------------

    def credit_refused_in_arrears(self, customer: int, what: str, exc: InsufficientBalance) -> None:
        """A credit may never be refused for a low balance (DESIGN §5: it clears arrears)."""
        self.tally.arrears_credit_refusals.append(f"{what} for customer {customer}: {exc}")

    def remember(self, done: Done) -> None:
        with self.shared.lock:
            self.shared.done.append(done)

    def credit(self, session: Any, customer: int, amount: int, key: str) -> Any:
        return credit_customer(
            session,
            customer_id=self.ids[customer],
            amount_minor=amount,
            source_kind="voucher_float",
            idempotency_key=key,
            actor=STAFF,
            now=NOW,
            currency="CNY",
            **POLICY.cap_kwargs(),
        )

    def offline(self, session: Any, customer: int, amount: int, reference: str) -> Any:
        return record_offline_payment(
            session,
            customer_id=self.ids[customer],
            amount_minor=amount,
            method="cash",
            reference=reference,
            actor=STAFF,
            now=NOW,
            policy=POLICY,
        )

    def charge(self, session: Any, customer: int, amount: int, key: str, usage: bool) -> Any:
        return charge_customer(
            session,
            customer_id=self.ids[customer],
            amount_minor=amount,
            revenue_kind="revenue_usage" if usage else "revenue_plans",
            idempotency_key=key,
            actor=STAFF,
            now=NOW,
            currency="CNY",
            allow_arrears=usage,
        )

    def adjust(self, session: Any, customer: int, amount: int, key: str) -> Any:
        return adjust_balance(
            session,
            customer_id=self.ids[customer],
            amount_minor=amount,
            reason="correction",
            idempotency_key=key,
            actor=STAFF,
            now=NOW,
            currency="CNY",
            **POLICY.cap_kwargs(),
        )

    # -- operations ---------------------------------------------------------------------

    def op_offline(self, customer: int, key: str) -> None:
        amount = self.rng.randint(100, 4000)
        try:
            with self.db.transaction() as session:
                payment = self.offline(session, customer, amount, key)
                entry_id = payment.journal_entry_id
        except InsufficientBalance as exc:
            self.credit_refused_in_arrears(customer, "offline payment", exc)
            return
        self.tally.balance[customer] += amount
        self.remember(Done("offline", customer, amount, key, entry_id))

    def op_near_cap(self, customer: int, key: str) -> None:
        """The headroom as read a moment ago, give or take: races with the other threads."""
        with self.db.transaction(write=False) as session:
            headroom = cap_headroom_minor(
                session, customer_id=self.ids[customer], **POLICY.cap_kwargs()
            )
        amount = max(headroom + self.rng.randint(-300, 50), 1)
        try:
            with self.db.transaction() as session:
                entry_id = self.credit(session, customer, amount, key).id
        except InsufficientBalance as exc:
            self.credit_refused_in_arrears(customer, "credit", exc)
            return
        self.tally.balance[customer] += amount
        self.remember(Done("voucher", customer, amount, key, entry_id))

    def op_card(self, customer: int, key: str) -> None:
        """Created within the cap; paid (maybe more) after others moved the balance."""
        asked = self.rng.randint(100, 5000)
        with self.db.transaction() as session:
            payment = stripe_payments.create_stripe_payment(
                session,
                customer_id=self.ids[customer],
                amount_minor=asked,
                purpose="topup",
                actor=STAFF,
                now=NOW,
                policy=POLICY,
            )
            payment_id = payment.id
        assert payment_id is not None
        received = asked + self.rng.choice([0, 0, self.rng.randint(1, 8000)])
        try:
            with self.db.transaction() as session:
                paid = stripe_payments.complete_stripe_payment(
                    session,
                    payment_id=payment_id,
                    amount_received_minor=received,
                    stripe_session_id=f"cs_{payment_id}",
                    payment_intent_id=f"pi_{payment_id}",
                    now=NOW,
                    policy=POLICY,
                )
                credited = paid.credited_minor
        except InsufficientBalance as exc:
            self.credit_refused_in_arrears(customer, "card payment", exc)
            return
        assert credited is not None and 0 <= credited <= received
        self.tally.balance[customer] += credited
        self.tally.payable += received - credited

    def op_plan(self, customer: int, key: str) -> None:
        amount = self.rng.randint(100, 5000)
        with self.db.transaction() as session:
            entry_id = self.charge(session, customer, amount, key, usage=False).id
        self.tally.balance[customer] -= amount
        self.remember(Done("plan", customer, amount, key, entry_id))

    def op_usage(self, customer: int, key: str) -> None:
        amount = self.rng.randint(1, 8000)
        with self.db.transaction() as session:
            entry_id = self.charge(session, customer, amount, key, usage=True).id
        self.tally.balance[customer] -= amount
        self.remember(Done("usage", customer, amount, key, entry_id))

    def op_adjust(self, customer: int, key: str) -> None:
        amount = self.rng.randint(1, 3000) * self.rng.choice([1, -1])
        try:
            with self.db.transaction() as session:
                entry_id = self.adjust(session, customer, amount, key).id
        except InsufficientBalance as exc:
            if amount > 0:
                self.credit_refused_in_arrears(customer, "adjustment", exc)
                return
            raise
        self.tally.balance[customer] += amount
        self.remember(Done("adjust", customer, amount, key, entry_id))

    def op_refund(self, customer: int, key: str) -> None:
        amount = self.rng.randint(100, 3000)
        with self.db.transaction() as session:
            refunds = payment_refunds.request_refund(
                session,
                customer_id=self.ids[customer],
                amount_minor=amount,
                reason="staff",
                note=key,
                actor=STAFF,
                now=NOW,
                currency="CNY",
            )
            parts = [(r.id, r.amount_minor, r.payment_id) for r in refunds]
        assert sum(part for _, part, _ in parts) == amount
        self.tally.balance[customer] -= amount
        self.tally.payable += amount
        with self.shared.lock:
            self.shared.hand_refunds.extend(
                (rid, part) for rid, part, pid in parts if pid is None and rid is not None
            )

    def op_pay_by_hand(self, customer: int, key: str) -> None:
        with self.shared.lock:
            again = bool(self.shared.paid_refunds) and self.rng.random() < 0.2
            if again:
                refund_id, amount = self.rng.choice(self.shared.paid_refunds), 0
            elif self.shared.hand_refunds:
                refund_id, amount = self.shared.hand_refunds.pop(0)
            else:
                return
        with self.db.transaction() as session:
            payment_refunds.mark_refund_paid_offline(
                session, refund_id=refund_id, note=key, actor=STAFF, now=NOW
            )
        assert not again, f"refund {refund_id} was paid by hand twice"
        self.tally.payable -= amount
        with self.shared.lock:
            self.shared.paid_refunds.append(refund_id)

    def replay(self, session: Any, done: Done, amount: int, customer: int) -> int | None:
        if done.op == "offline":
            return self.offline(session, customer, amount, done.key).journal_entry_id
        if done.op == "voucher":
            return self.credit(session, customer, amount, done.key).id
        if done.op == "adjust":
            return self.adjust(session, customer, amount, done.key).id
        return self.charge(session, customer, amount, done.key, usage=done.op == "usage").id

    def pick(self) -> Done | None:
        with self.shared.lock:
            return self.rng.choice(self.shared.done) if self.shared.done else None

    def op_replay(self, customer: int, key: str) -> None:
        """Another thread's operation again: the first entry, nothing changes."""
        done = self.pick()
        if done is None:
            return
        with self.db.transaction() as session:
            assert self.replay(session, done, done.amount, done.customer) == done.entry_id

    def op_conflict(self, customer: int, key: str) -> None:
        """Another thread's key with another amount (or customer): refused, nothing changes."""
        done = self.pick()
        if done is None:
            return
        amount, other = done.amount + (1 if done.amount > 0 else -1), done.customer
        if done.op == "offline" and self.rng.random() < 0.5:
            amount, other = done.amount, (done.customer + 1) % len(self.ids)
        with self.db.transaction() as session:
            self.replay(session, done, amount, other)
        raise AssertionError(f"{done} replayed with {amount} for {other} was accepted")


def test_sixteen_threads_of_mixed_money_movements_keep_the_ledger_exact(own_database):
    database: Database = own_database
    with database.transaction() as session:
        customer_ids = tuple(
            c.id for c in customers_with_different_caps(session, prefix="CONC") if c.id
        )
    shared = Shared()
    workers = [Worker(database, shared, customer_ids, w) for w in range(THREADS)]
    threads = [threading.Thread(target=worker.run) for worker in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    elapsed = time.perf_counter() - started
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    errors = [exc for worker in workers for exc in worker.tally.errors]
    assert errors == [], errors

    balance: dict[int, int] = defaultdict(int)
    payable = 0
    refused: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    arrears_refusals: list[str] = []
    for worker in workers:
        for customer, amount in worker.tally.balance.items():
            balance[customer] += amount
        payable += worker.tally.payable
        refused.update(worker.tally.refused)
        accepted.update(worker.tally.accepted)
        arrears_refusals.extend(worker.tally.arrears_credit_refusals)
    total = THREADS * OPERATIONS
    print(
        f"\n{database.engine.dialect.name}: {total} operations in {elapsed:.1f} s"
        f" ({total / elapsed:.0f}/s); accepted {dict(accepted)}; refused {dict(refused)};"
        f" credits refused in arrears: {len(arrears_refusals)}"
    )
    # The refusals the mix is built to provoke did happen.
    assert refused["near_cap:CapExceeded"] and refused["plan:InsufficientBalance"]
    assert refused["conflict:IdempotencyConflict"] and refused["conflict:PaymentConflict"]

    with database.transaction(write=False) as session:
        result = check_ledger(
            session,
            cap_months=POLICY.cap_months,
            reference_monthly_minor=POLICY.reference_monthly_minor,
        )
        assert result.ok, result.problems
        assert session.exec(select(func.coalesce(func.sum(Posting.amount_minor), 0))).one() == 0
        sums = dict(
            session.exec(
                select(Posting.account_id, func.sum(Posting.amount_minor)).group_by(
                    col(Posting.account_id)
                )
            ).all()
        )
        for account in session.exec(select(LedgerAccount)).all():
            assert account.balance_minor == sums.get(account.id, 0), account
        for customer, customer_id in enumerate(customer_ids):
            final = customer_balance(session, customer_id=customer_id)
            assert final == balance[customer], (customer, final, balance[customer])
            assert final <= CAPS[customer]
        assert book_liability(session) == sum(balance.values())
        booked_payable = session.exec(
            select(func.coalesce(func.sum(LedgerAccount.balance_minor), 0)).where(
                LedgerAccount.kind == "refunds_payable"
            )
        ).one()
        open_refunds = session.exec(
            select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
                col(Refund.status).not_in(FINAL_REFUND_STATUSES)
            )
        ).one()
        assert booked_payable == open_refunds == payable

    # DESIGN §5: "the next credit clears arrears first" — no credit to a
    # balance in arrears may be refused for leaving it below zero.
    assert arrears_refusals == [], arrears_refusals[:5]
