"""Store purchase orders (app/onboarding/orders.py): hold, real name, stock, payment, endings."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session, col, func, select

from app.charging.models import LinePeriod
from app.core.audit import Actor, AuditEntry
from app.core.errors import InvalidInput
from app.core.pii import PiiCipher
from app.ledger.balances import customer_balance
from app.ledger.models import JournalEntry
from app.ledger.movements import credit_customer
from app.notifications.mailer import MailRenderer
from app.notifications.models import Notification
from app.onboarding import orders, purchase
from app.payments.services import MoneyPolicy
from app.payments.vouchers import VoucherPolicy, create_voucher_batch, redeem_voucher
from app.provisioning.models import ProvisioningEvent
from app.subscribers import kyc, lifecycle
from app.subscribers.errors import (
    HoldsThrottled,
    IdentityMissing,
    NoSimStock,
    OrderNotFound,
    OrderStateError,
    OrderUnpaid,
)
from app.subscribers.models import Customer, Line, PurchaseOrder
from app.subscribers.services import ensure_customer_for_account
from numbering.errors import NumberUnavailable
from numbering.models import PhoneNumber, Sim
from numbering.search import find_number
from numbering.tiers import set_tier_surcharge
from tests.factories import NOW, make_subscriber
from tests.unit.subscribers.helpers import FIRST, World, make_world

CIPHER = PiiCipher(Fernet.generate_key().decode())
POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)
BUYER = Actor("subscriber", 1, "buyer@example.com")
STAFF = Actor("staff", 1, "finance@example.com")
VALID_RIC = "11010519491231002X"
_sims = itertools.count(1)
_numbers = itertools.count(0)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="BUY")


def add_sims(session: Session, world: World, kind: str, count: int = 1) -> list[Sim]:
    assert world.host.id is not None
    sims = []
    for _ in range(count):
        n = next(_sims)
        sim = Sim(
            iccid=f"89860199{n:011d}",
            imsi=f"46009{n:010d}",
            kind=kind,
            lpa=f"LPA:1$smdp.example.com$ORDER-{n}" if kind == "esim" else None,
            host_id=world.host.id,
            status="in_stock",
            created_at=NOW,
            status_changed_at=NOW,
        )
        session.add(sim)
        sims.append(sim)
    session.flush()
    return sims


class Buyer:
    """A store login with its customer, real name registered."""

    def __init__(self, session: Session, *, identity: bool = True) -> None:
        self.account = make_subscriber(session)
        assert self.account.id is not None
        self.customer = ensure_customer_for_account(
            session, account_id=self.account.id, email=self.account.email, now=NOW
        )
        if identity:
            kyc.register_identity(
                session,
                customer=self.customer,
                name="张三",
                id_type="cn_ric",
                id_number=VALID_RIC,
                cipher=CIPHER,
                actor=BUYER,
                now=NOW,
            )
        self.token = orders.new_cart_token()

    @property
    def customer_id(self) -> int:
        assert self.customer.id is not None
        return self.customer.id


def free_msisdn() -> str:
    return f"+{FIRST + 100 + next(_numbers) % 100}"


def place(
    session: Session,
    world: World,
    buyer: Buyer,
    *,
    kind: str = "esim",
    msisdn: str | None = None,
    now=NOW,
) -> PurchaseOrder:
    assert world.plan.id is not None and buyer.account.id is not None
    msisdn = msisdn or free_msisdn()
    orders.hold_number(
        session,
        plan_id=world.plan.id,
        msisdn=msisdn,
        holder=orders.cart_holder(buyer.token),
        previous=None,
        now=now,
    )
    return orders.place_order(
        session,
        account_id=buyer.account.id,
        email=buyer.account.email,
        plan_id=world.plan.id,
        msisdn=msisdn,
        cart_token=buyer.token,
        sim_kind=kind,
        actor=BUYER,
        now=now,
    )


def credit(session: Session, buyer: Buyer, amount: int, key: str) -> None:
    credit_customer(
        session,
        customer_id=buyer.customer_id,
        amount_minor=amount,
        source_kind="adjustments",
        idempotency_key=key,
        actor=STAFF,
        now=NOW,
        currency="CNY",
        **POLICY.cap_kwargs(),
    )


def complete(session: Session, order: PurchaseOrder, now=NOW) -> PurchaseOrder:
    assert order.id is not None
    return purchase.complete_order(session, order_id=order.id, actor=BUYER, now=now)


def number(session: Session, msisdn: str) -> PhoneNumber:
    found = find_number(session, msisdn)
    assert found is not None
    session.refresh(found)
    return found


# -- the hold ---------------------------------------------------------------------------


def test_placing_an_order_moves_the_carts_hold_to_the_order_for_15_minutes(
    session: Session, world: World
) -> None:
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    later = NOW + timedelta(minutes=10)
    msisdn = free_msisdn()
    assert world.plan.id is not None
    held = orders.hold_number(
        session,
        plan_id=world.plan.id,
        msisdn=msisdn,
        holder=orders.cart_holder(buyer.token),
        previous=None,
        now=NOW,
    )
    assert held.reserved_until == NOW + timedelta(minutes=15)
    order = place(session, world, buyer, msisdn=msisdn, now=later)
    assert order.ref == f"O-{order.id:06d}"
    assert order.status == "awaiting_payment"
    assert order.hold_until == later + timedelta(minutes=15)
    row = number(session, msisdn)
    assert (row.status, row.reserved_by) == ("reserved", orders.order_holder(order.ref))
    assert order.total_minor == world.plan.price_minor + row.surcharge_minor


def test_a_number_held_by_another_buyer_cannot_be_ordered(session: Session, world: World) -> None:
    add_sims(session, world, "esim")
    first, second = Buyer(session), Buyer(session)
    order = place(session, world, first)
    with pytest.raises(NumberUnavailable):
        place(session, world, second, msisdn=order.msisdn)


def test_choosing_another_number_releases_the_first(session: Session, world: World) -> None:
    buyer = Buyer(session)
    one, two = free_msisdn(), free_msisdn()
    assert world.plan.id is not None
    holder = orders.cart_holder(buyer.token)
    orders.hold_number(
        session, plan_id=world.plan.id, msisdn=one, holder=holder, previous=None, now=NOW
    )
    orders.hold_number(
        session, plan_id=world.plan.id, msisdn=two, holder=holder, previous=one, now=NOW
    )
    assert number(session, one).status == "available"
    assert number(session, two).reserved_by == holder


def test_golden_surcharge_is_part_of_the_total(session: Session, world: World) -> None:
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    # Ends in 88, digits of its own: golden however the block is classified.
    msisdn = f"+{FIRST + 188}"
    assert number(session, msisdn).tier == "end_88"
    set_tier_surcharge(
        session,
        code="end_88",
        surcharge_minor=1234,
        enabled=True,
        actor=STAFF,
        now=NOW,
    )
    order = place(session, world, buyer, msisdn=msisdn)
    assert (order.price_minor, order.surcharge_minor) == (world.plan.price_minor, 1234)
    assert order.total_minor == world.plan.price_minor + 1234


# -- refusals before any money ----------------------------------------------------------


def test_an_order_needs_the_real_name_first(session: Session, world: World) -> None:
    add_sims(session, world, "esim")
    with pytest.raises(IdentityMissing):
        place(session, world, Buyer(session, identity=False))
    assert session.exec(select(func.count()).select_from(PurchaseOrder)).one() == 0


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        ("cn_ric", "110105194912310022"),  # the check digit should be X
        ("cn_ric", "11010519491231002"),  # 17 characters
        ("cn_ric", "110105194913310023"),  # month 13
        ("passport", "E12"),  # too short
        ("passport", "E1234567890123456789X"),  # 21 characters
        ("passport", "E1234-56/7"),  # a slash
        ("passport", ""),
        ("drivers_licence", "E12345678"),
    ],
)
def test_bad_ids_are_refused_and_nothing_is_stored(
    session: Session, id_type: str, value: str
) -> None:
    buyer = Buyer(session, identity=False)
    with pytest.raises(InvalidInput):
        kyc.register_identity(
            session,
            customer=buyer.customer,
            name="张三",
            id_type=id_type,
            id_number=value,
            cipher=CIPHER,
            actor=BUYER,
            now=NOW,
        )
    session.refresh(buyer.customer)
    assert buyer.customer.id_number_enc is None


@pytest.mark.parametrize(
    ("id_type", "value", "stored"),
    [
        ("cn_ric", "11010519491231002x", "11010519491231002X"),
        ("passport", "e 1234 5678", "E12345678"),
    ],
)
def test_good_ids_are_stored_encrypted_and_shown_masked(
    session: Session, id_type: str, value: str, stored: str
) -> None:
    buyer = Buyer(session, identity=False)
    kyc.register_identity(
        session,
        customer=buyer.customer,
        name="张三",
        id_type=id_type,
        id_number=value,
        cipher=CIPHER,
        actor=BUYER,
        now=NOW,
    )
    customer = session.get(Customer, buyer.customer_id)
    assert customer is not None and customer.id_number_enc
    assert stored not in customer.id_number_enc
    assert CIPHER.decrypt(customer.id_number_enc) == stored
    assert customer.id_number_masked and customer.id_number_masked != stored
    assert customer.id_number_masked[-2:] == stored[-2:]


def test_no_sim_of_the_kind_in_stock_refuses_the_order(session: Session, world: World) -> None:
    add_sims(session, world, "physical")
    buyer = Buyer(session)
    with pytest.raises(NoSimStock) as refused:
        place(session, world, buyer, kind="esim")
    assert "eSIM" in refused.value.template
    # The other kind is in stock.
    assert place(session, world, buyer, kind="physical").status == "awaiting_payment"


def test_stock_that_runs_out_before_payment_charges_nothing(session: Session, world: World) -> None:
    (sim,) = add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    credit(session, buyer, order.total_minor, "stock-test")
    sim.status = "retired"
    session.add(sim)
    session.flush()
    # The request's boundary rolls back on a refusal (here: a savepoint).
    with pytest.raises(NoSimStock), session.begin_nested():
        complete(session, order)
    session.expire_all()
    assert customer_balance(session, customer_id=buyer.customer_id) == order.total_minor
    assert session.exec(select(func.count()).select_from(Line)).one() == 0
    row = number(session, order.msisdn)
    assert (row.status, row.reserved_by) == ("reserved", orders.order_holder(order.ref))
    assert session.get(PurchaseOrder, order.id).status == "awaiting_payment"  # type: ignore[union-attr]


def test_unknown_sim_kind_and_unpublished_plan_are_refused(session: Session, world: World) -> None:
    add_sims(session, world, "esim")
    with pytest.raises(InvalidInput):
        place(session, world, Buyer(session), kind="nano")
    buyer = Buyer(session)
    assert buyer.account.id is not None
    with pytest.raises(InvalidInput):
        orders.place_order(
            session,
            account_id=buyer.account.id,
            email=buyer.account.email,
            plan_id=999_999,
            msisdn=free_msisdn(),
            cart_token=buyer.token,
            sim_kind="esim",
            actor=BUYER,
            now=NOW,
        )


# -- payment and completion -------------------------------------------------------------


def test_completing_debits_the_total_opens_a_pending_line_and_asks_the_host(
    session: Session, world: World
) -> None:
    (sim,) = add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    credit(session, buyer, order.total_minor + 500, "complete-test")
    paid = complete(session, order)
    assert paid.status == "paid" and paid.payment_method == "balance" and paid.paid_at == NOW
    assert customer_balance(session, customer_id=buyer.customer_id) == 500
    entry = session.get(JournalEntry, paid.entry_id)
    assert entry is not None and entry.idempotency_key == f"order:{order.id}"
    line = session.get(Line, paid.line_id)
    assert line is not None
    assert (line.status, line.msisdn, line.sim_id) == ("pending", order.msisdn, sim.id)
    assert number(session, order.msisdn).status == "assigned"
    session.refresh(sim)
    assert sim.status == "assigned"
    events = session.exec(select(ProvisioningEvent).where(ProvisioningEvent.line_id == line.id))
    assert [e.action for e in events] == ["activate"]
    notice = session.exec(select(Notification).where(Notification.kind == "order_paid")).one()
    assert notice.data == {
        "order_ref": order.ref,
        "msisdn": order.msisdn,
        "plan": world.plan.code,
        "amount_minor": order.total_minor,
        "currency": "CNY",
    }
    assert notice.recipient == buyer.account.email
    _subject, body = MailRenderer(timezone="Asia/Shanghai", currency="CNY").render(
        kind="order_paid", locale="en", data=notice.data
    )
    assert order.ref in body and order.msisdn in body
    actions = set(session.exec(select(AuditEntry.action)).all())
    assert {"order.place", "order.complete", "line.request_activation"} <= actions


def test_completion_is_idempotent(session: Session, world: World) -> None:
    add_sims(session, world, "esim", count=2)
    buyer = Buyer(session)
    order = place(session, world, buyer)
    credit(session, buyer, order.total_minor * 2, "idem-test")
    first = complete(session, order)
    again = complete(session, order, now=NOW + timedelta(minutes=1))
    assert (again.line_id, again.entry_id, again.paid_at) == (
        first.line_id,
        first.entry_id,
        first.paid_at,
    )
    assert customer_balance(session, customer_id=buyer.customer_id) == order.total_minor
    assert session.exec(select(func.count()).select_from(Line)).one() == 1
    in_stock = session.exec(select(func.count()).select_from(Sim).where(Sim.status == "in_stock"))
    assert in_stock.one() == 1


def test_a_voucher_short_of_the_total_stays_on_the_balance_and_the_order_waits(
    session: Session, world: World
) -> None:
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    batch, [(serial, pin)] = create_voucher_batch(
        session,
        name="short",
        value_minor=order.total_minor - 100,
        count=1,
        expires_at=NOW + timedelta(days=30),
        currency="CNY",
        actor=STAFF,
        now=NOW,
    )
    redeem_voucher(
        session,
        customer_id=buyer.customer_id,
        serial=serial,
        pin=pin,
        ip="",
        actor=BUYER,
        now=NOW,
        policy=VoucherPolicy(),
        **POLICY.cap_kwargs(),
    )
    assert orders.shortfall_minor(session, order) == 100
    with pytest.raises(OrderUnpaid) as refused:
        complete(session, order)
    assert refused.value.params["shortfall"] == "1.00"
    session.refresh(order)
    assert order.status == "awaiting_payment"
    assert customer_balance(session, customer_id=buyer.customer_id) == batch.value_minor


def test_store_payment_credits_the_shortfall_and_completes(session: Session, world: World) -> None:
    add_sims(session, world, "physical")
    buyer = Buyer(session)
    order = place(session, world, buyer, kind="physical")
    assert order.id is not None
    credit(session, buyer, 900, "store-test")
    chosen = orders.choose_pay_at_store(session, order_id=order.id, actor=BUYER, now=NOW)
    assert chosen.payment_method == "store"
    assert chosen.hold_until == NOW + timedelta(hours=24)
    paid = purchase.record_store_payment(
        session,
        order_id=order.id,
        method="cash",
        reference="STORE-1",
        actor=STAFF,
        now=NOW + timedelta(hours=2),
        policy=POLICY,
    )
    assert paid.status == "paid" and paid.payment_method == "store"
    assert paid.payment_id is not None
    assert customer_balance(session, customer_id=buyer.customer_id) == 0
    again = purchase.record_store_payment(
        session,
        order_id=order.id,
        method="cash",
        reference="STORE-1",
        actor=STAFF,
        now=NOW + timedelta(hours=3),
        policy=POLICY,
    )
    assert again.entry_id == paid.entry_id


# -- activation -------------------------------------------------------------------------


def test_activation_opens_the_first_period_without_a_second_charge(
    session: Session, world: World
) -> None:
    (sim,) = add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    credit(session, buyer, order.total_minor, "activate-test")
    paid = complete(session, order)
    assert paid.line_id is not None
    entries_before = session.exec(select(func.count()).select_from(JournalEntry)).one()
    later = NOW + timedelta(minutes=3)
    event = session.exec(
        select(ProvisioningEvent).where(ProvisioningEvent.line_id == paid.line_id)
    ).one()
    assert event.id is not None
    lifecycle.confirm_activation(session, line_id=paid.line_id, event_id=event.id, now=later)
    line = session.get(Line, paid.line_id)
    assert line is not None and line.status == "active"
    period = session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).one()
    assert (period.start, period.end) == (later, later + timedelta(days=30))
    assert (period.price_minor, period.entry_id) == (world.plan.price_minor, paid.entry_id)
    assert period.data_kb == world.plan.data_mb * 1024
    assert line.period_end == period.end
    assert session.exec(select(func.count()).select_from(JournalEntry)).one() == entries_before
    session.refresh(sim)
    assert sim.status == "active"
    kinds = session.exec(select(Notification.kind).order_by(col(Notification.id))).all()
    assert kinds == ["order_paid", "line_active"]
    # A second confirmation changes nothing.
    lifecycle.activate_line(session, line_id=line.id, actor=BUYER, now=later)
    assert session.exec(select(func.count()).select_from(LinePeriod)).one() == 1


# -- endings ----------------------------------------------------------------------------


def test_cancel_releases_the_number_and_is_idempotent(session: Session, world: World) -> None:
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    assert order.id is not None
    cancelled = orders.cancel_order(session, order_id=order.id, actor=BUYER, now=NOW)
    assert cancelled.status == "cancelled"
    assert number(session, order.msisdn).status == "available"
    assert orders.cancel_order(session, order_id=order.id, actor=BUYER, now=NOW).status == (
        "cancelled"
    )
    credit(session, buyer, order.total_minor, "cancel-test")
    with pytest.raises(OrderStateError):
        complete(session, order)


def test_a_paid_order_cannot_be_cancelled(session: Session, world: World) -> None:
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    order = place(session, world, buyer)
    assert order.id is not None
    credit(session, buyer, order.total_minor, "paid-cancel")
    complete(session, order)
    with pytest.raises(OrderStateError):
        orders.cancel_order(session, order_id=order.id, actor=BUYER, now=NOW)


def test_orders_whose_hold_ran_out_expire_and_free_the_number(
    session: Session, world: World
) -> None:
    add_sims(session, world, "esim")
    buyer = Buyer(session)
    due = place(session, world, buyer)
    fresh = place(session, world, Buyer(session), now=NOW + timedelta(minutes=10))
    assert (
        orders.expire_orders(session, now=NOW + timedelta(minutes=15) - timedelta(seconds=1)) == 0
    )
    assert orders.expire_orders(session, now=NOW + timedelta(minutes=15)) == 1
    session.refresh(due)
    session.refresh(fresh)
    assert (due.status, fresh.status) == ("expired", "awaiting_payment")
    assert number(session, due.msisdn).status == "available"
    assert orders.expire_orders(session, now=NOW + timedelta(minutes=16)) == 0
    with pytest.raises(OrderStateError):
        orders.cancel_order(session, order_id=due.id or 0, actor=BUYER, now=NOW)


def test_a_late_card_payment_completes_an_expired_order_if_the_number_is_still_free(
    session: Session, world: World
) -> None:
    add_sims(session, world, "esim", count=2)
    buyer = Buyer(session)
    order = place(session, world, buyer)
    orders.expire_orders(session, now=NOW + timedelta(minutes=20))
    credit(session, buyer, order.total_minor, "late-card")
    paid = complete(session, order, now=NOW + timedelta(minutes=30))
    assert paid.status == "paid"
    assert number(session, order.msisdn).status == "assigned"


def test_an_expired_order_whose_number_was_taken_cannot_be_completed(
    session: Session, world: World
) -> None:
    add_sims(session, world, "esim", count=2)
    buyer = Buyer(session)
    order = place(session, world, buyer)
    orders.expire_orders(session, now=NOW + timedelta(minutes=20))
    other = place(
        session, world, Buyer(session), msisdn=order.msisdn, now=NOW + timedelta(minutes=21)
    )
    assert other.status == "awaiting_payment"
    credit(session, buyer, order.total_minor, "taken")
    with pytest.raises(NumberUnavailable):
        complete(session, order, now=NOW + timedelta(minutes=22))


def test_orders_are_listed_per_login_newest_first(session: Session, world: World) -> None:
    add_sims(session, world, "esim", count=3)
    buyer, other = Buyer(session), Buyer(session)
    first = place(session, world, buyer)
    second = place(session, world, buyer)
    place(session, world, other)
    rows, total = orders.list_orders(session, account_id=buyer.account.id)
    assert total == 2 and [o.ref for o in rows] == [second.ref, first.ref]
    with pytest.raises(OrderNotFound):  # another login's order is simply not found
        orders.get_order_by_ref(session, first.ref, account_id=other.account.id)
    with pytest.raises(InvalidInput):
        orders.list_orders(session, status="lost")


def test_one_address_may_hold_only_so_many_numbers_an_hour(session: Session, world: World) -> None:
    assert world.plan.id is not None

    def hold(ip: str, msisdn: str, *, holder: str | None = None, now=NOW) -> PhoneNumber:
        return orders.hold_number(
            session,
            plan_id=world.plan.id,
            msisdn=msisdn,
            holder=holder or orders.cart_holder(Buyer(session).token),
            previous=None,
            now=now,
            ip=ip,
        )

    kept = [free_msisdn() for _ in range(orders.HOLDS_PER_IP_PER_HOUR)]
    first_holder = orders.cart_holder("first-cart")
    hold("203.0.113.7", kept[0], holder=first_holder)
    for msisdn in kept[1:]:
        hold("203.0.113.7", msisdn)
    extra = free_msisdn()
    with pytest.raises(HoldsThrottled):
        hold("203.0.113.7", extra)
    assert number(session, extra).status == "available"
    # Extending a hold the cart has is not a new hold.
    hold("203.0.113.7", kept[0], holder=first_holder, now=NOW + timedelta(minutes=5))
    # Another address, and the same one an hour later, may hold again.
    hold("198.51.100.2", extra)
    hold("203.0.113.7", free_msisdn(), now=NOW + timedelta(hours=1, seconds=1))
    audited = session.exec(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == orders.HOLD_ACTION, AuditEntry.ip == "203.0.113.7")
    ).one()
    assert audited == orders.HOLDS_PER_IP_PER_HOUR + 1
