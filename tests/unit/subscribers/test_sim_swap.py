"""SIM swap: a line moves to an in-stock SIM of its host; the old one is
scrapped, or blocked when lost or stolen; the host is told both ICCIDs and IMSIs."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, col, delete, select

from app.core.audit import AuditEntry
from app.core.db import Database
from app.core.errors import InvalidInput
from app.provisioning.models import ProvisioningEvent
from app.subscribers import lifecycle
from app.subscribers.errors import LineStateError
from app.subscribers.models import Customer, Line
from numbering.errors import SimNotFound, SimUnavailable
from numbering.models import Sim
from plans.models import Plan
from tests.factories import NOW
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world
from tests.unit.wholesale.helpers import make_host
from wholesale.models import HostCarrier

LATER = NOW + timedelta(hours=1)
_stock = itertools.count(1)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTS")


def stock_sim(
    session: Session, host_id: int, *, kind: str = "physical", status: str = "in_stock"
) -> Sim:
    n = next(_stock)
    sim = Sim(
        iccid=f"89860199{n:011d}",
        imsi=f"46009{n:010d}",
        kind=kind,
        lpa=f"LPA:1$smdp.example.com$SWAP-{n:06d}" if kind == "esim" else None,
        host_id=host_id,
        status=status,
        created_at=NOW,
        status_changed_at=NOW,
    )
    session.add(sim)
    session.flush()
    return sim


def _swap(session: Session, line: Line, iccid: str, **extra: object) -> Line:
    assert line.id is not None
    args: dict[str, object] = {"reason": "SIM damaged", "actor": STAFF, "now": LATER, **extra}
    return lifecycle.swap_sim(session, line_id=line.id, iccid=iccid, **args)  # type: ignore[arg-type]


def _events(session: Session, line: Line) -> list[ProvisioningEvent]:
    statement = select(ProvisioningEvent).where(ProvisioningEvent.line_id == line.id)
    return list(session.exec(statement.order_by(col(ProvisioningEvent.id))))


def _sim(session: Session, sim_id: int | None) -> Sim:
    session.expire_all()
    sim = session.get(Sim, sim_id)
    assert sim is not None
    return sim


def test_swap_on_an_active_line_activates_the_new_sim_and_retires_the_old(
    session: Session, world: World
) -> None:
    line = make_line(session, world)
    old = _sim(session, line.sim_id)
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)

    swapped = _swap(session, line, new.iccid)

    assert swapped.sim_id == new.id and swapped.status == "active"
    assert _sim(session, new.id).status == "active"
    assert _sim(session, old.id).status == "retired"
    [event] = _events(session, line)
    assert event.action == "swap_sim" and event.host_id == world.host.id
    assert event.payload["iccid"] == new.iccid and event.payload["imsi"] == new.imsi
    assert event.payload["old_iccid"] == old.iccid and event.payload["old_imsi"] == old.imsi
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "line.swap_sim")).one()
    assert audit.details["reason"] == "SIM damaged"
    assert audit.details["old_sim"] == "retired" and audit.details["sim"] == "active"
    assert audit.details["provisioning_event"] == event.id


def test_a_lost_sim_is_blocked_not_retired(session: Session, world: World) -> None:
    line = make_line(session, world)
    old_id = line.sim_id
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)
    _swap(session, line, new.iccid, lost=True)
    assert _sim(session, old_id).status == "blocked"


@pytest.mark.parametrize("status", ["pending", "suspended"])
def test_on_a_line_not_active_the_new_sim_is_only_assigned(
    session: Session, world: World, status: str
) -> None:
    line = make_line(session, world, status=status)
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)
    assert _swap(session, line, new.iccid).status == status
    assert _sim(session, new.id).status == "assigned"


@pytest.mark.parametrize("status", ["terminated", "transferred", "ported_out"])
def test_an_ended_line_is_refused_and_nothing_moves(
    session: Session, world: World, status: str
) -> None:
    line = make_line(session, world, status=status)
    old_id = line.sim_id
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)
    with pytest.raises(LineStateError) as refused:
        _swap(session, line, new.iccid)
    assert status in refused.value.message
    assert _sim(session, new.id).status == "in_stock"
    assert session.get(Line, line.id).sim_id == old_id  # type: ignore[union-attr]
    assert _events(session, line) == []


@pytest.mark.parametrize("stock", ["assigned", "active", "blocked", "retired"])
def test_a_sim_not_in_stock_is_refused(session: Session, world: World, stock: str) -> None:
    line = make_line(session, world)
    old_id = line.sim_id
    assert world.host.id is not None
    taken = stock_sim(session, world.host.id, status=stock)
    with pytest.raises(SimUnavailable) as refused:
        _swap(session, line, taken.iccid)
    assert refused.value.field == "iccid" and stock in refused.value.message
    assert _sim(session, old_id).status == "assigned"
    assert _events(session, line) == []


def test_a_sim_of_another_host_is_refused(session: Session, world: World) -> None:
    line = make_line(session, world)
    other = make_host(session, code="HOSTOTHER")
    assert other.id is not None
    foreign = stock_sim(session, other.id)
    with pytest.raises(SimUnavailable, match="another host"):
        _swap(session, line, foreign.iccid)
    assert _sim(session, foreign.id).status == "in_stock"


@pytest.mark.parametrize("iccid", ["89860199999999999999", "not-an-iccid", "8" * 30])
def test_an_unknown_iccid_is_not_found(session: Session, world: World, iccid: str) -> None:
    line = make_line(session, world)
    with pytest.raises(SimNotFound):
        _swap(session, line, iccid)


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(session: Session, world: World, reason: str) -> None:
    line = make_line(session, world)
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)
    with pytest.raises(InvalidInput):
        _swap(session, line, new.iccid, reason=reason)
    assert _sim(session, new.id).status == "in_stock"


def test_an_empty_iccid_is_invalid_input(session: Session, world: World) -> None:
    line = make_line(session, world)
    with pytest.raises(InvalidInput) as refused:
        _swap(session, line, "  ")
    assert refused.value.field == "iccid"


def test_the_same_swap_again_is_a_no_op(session: Session, world: World) -> None:
    line = make_line(session, world)
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)
    _swap(session, line, new.iccid)
    spaced = " ".join([new.iccid[:6], new.iccid[6:]])
    again = _swap(session, line, spaced)
    assert again.sim_id == new.id
    assert len(_events(session, line)) == 1


def test_a_sim_taken_by_one_line_cannot_go_to_another(session: Session, world: World) -> None:
    first, second = make_line(session, world), make_line(session, world)
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)
    _swap(session, first, new.iccid)
    with pytest.raises(SimUnavailable):
        _swap(session, second, new.iccid)
    assert session.get(Line, second.id).sim_id != new.id  # type: ignore[union-attr]


def test_an_esim_swap_keeps_the_activation_code_for_the_subscriber(
    session: Session, world: World
) -> None:
    line = make_line(session, world)
    assert world.host.id is not None
    esim = stock_sim(session, world.host.id, kind="esim")
    _swap(session, line, esim.iccid)
    [event] = _events(session, line)
    assert event.payload["kind"] == "esim"
    # The activation code is the subscriber's, not the host's: it stays out of the event.
    assert "lpa" not in event.payload and esim.lpa not in str(event.payload)
    assert _sim(session, esim.id).lpa == esim.lpa


def test_a_line_without_a_sim_gets_one_of_its_plans_host(session: Session, world: World) -> None:
    line = make_line(session, world, status="pending")
    line.sim_id = None
    session.add(line)
    session.flush()
    assert world.host.id is not None
    new = stock_sim(session, world.host.id)
    assert _swap(session, line, new.iccid).sim_id == new.id
    [event] = _events(session, line)
    assert event.payload["old_iccid"] is None and event.payload["iccid"] == new.iccid


RACE = "SWAPRACE"


def _cleanup_race(database: Database) -> None:
    with database.transaction() as session:
        host = session.exec(select(HostCarrier).where(HostCarrier.code == RACE)).first()
        if host is None:
            return
        line_ids = [
            line_id
            for line_id in session.exec(
                select(Line.id)
                .join(Customer, col(Customer.id) == col(Line.customer_id))
                .where(Customer.ref == f"C-{RACE}")
            )
        ]
        for statement in (
            delete(ProvisioningEvent).where(col(ProvisioningEvent.line_id).in_(line_ids)),
            delete(AuditEntry).where(
                AuditEntry.target_type == "line",
                col(AuditEntry.target_id).in_([str(i) for i in line_ids]),
            ),
            delete(Line).where(col(Line.id).in_(line_ids)),
            delete(Sim).where(Sim.host_id == host.id),
            delete(Customer).where(Customer.ref == f"C-{RACE}"),
            delete(Plan).where(Plan.host_id == host.id),
            delete(HostCarrier).where(HostCarrier.id == host.id),
        ):
            session.execute(statement)


def test_two_lines_racing_for_one_sim_never_both_get_it(app) -> None:
    """Two committed transactions swap two lines to the same in-stock SIM at once."""
    database = Database(app.extensions["mvno.db"].url, pool_size=4, max_overflow=0)
    _cleanup_race(database)
    try:
        with database.transaction() as session:
            host = HostCarrier(code=RACE, name="Race host", created_at=NOW)
            session.add(host)
            session.flush()
            assert host.id is not None
            plan = Plan(
                code=RACE,
                status="published",
                host_id=host.id,
                price_minor=3900,
                validity_days=30,
                created_at=NOW,
            )
            customer = Customer(ref=f"C-{RACE}", created_at=NOW)
            session.add_all([plan, customer])
            session.flush()
            line_ids = []
            for n in range(2):
                old = stock_sim(session, host.id, status="active")
                line = Line(
                    customer_id=customer.id or 0,
                    msisdn=f"+86170999555{n:02d}",
                    plan_id=plan.id or 0,
                    sim_id=old.id,
                    status="active",
                    created_at=NOW,
                    status_changed_at=NOW,
                )
                session.add(line)
                session.flush()
                line_ids.append(line.id or 0)
            contested = stock_sim(session, host.id).iccid

        outcomes: list[str] = []
        failures: list[BaseException] = []
        lock = threading.Lock()
        gate = threading.Barrier(2)

        def worker(line_id: int) -> None:
            gate.wait()
            try:
                with database.transaction() as session:
                    lifecycle.swap_sim(
                        session,
                        line_id=line_id,
                        iccid=contested,
                        reason="race",
                        actor=STAFF,
                        now=LATER,
                    )
                with lock:
                    outcomes.append("swapped")
            except SimUnavailable:
                with lock:
                    outcomes.append("refused")
            except BaseException as exc:  # pragma: no cover - reported below
                with lock:
                    failures.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in line_ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        assert sorted(outcomes) == ["refused", "swapped"]
        with database.transaction(write=False) as session:
            sim = session.exec(select(Sim).where(Sim.iccid == contested)).one()
            holders = session.exec(select(Line).where(Line.sim_id == sim.id)).all()
            assert sim.status == "active" and len(holders) == 1
            events = session.exec(
                select(ProvisioningEvent).where(col(ProvisioningEvent.line_id).in_(line_ids))
            ).all()
            assert [e.action for e in events] == ["swap_sim"]
    finally:
        _cleanup_race(database)
        database.dispose()
