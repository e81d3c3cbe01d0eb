"""`mvno renewals run` (DESIGN §9, §13), the scheduler's job, and credits that resume lines."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.charging.models import LinePeriod
from app.charging.periods import open_period
from app.core.audit import Actor
from app.jobs import JOBS, run_job
from app.payments.vouchers import VoucherPolicy, create_voucher_batch, redeem_voucher
from app.provisioning.models import ProvisioningEvent
from app.subscribers.models import Line
from tests.factories import NOW
from tests.unit.subscribers.helpers import World, make_line, make_world

PERIOD = timedelta(days=30)
END = NOW + PERIOD
PRICE = 3900
KEYS = {
    "now",
    "lines_seen",
    "renewed",
    "periods_opened",
    "suspended",
    "unpaid",
    "resumed",
    "terminated",
}


@pytest.fixture
def cli(app: Any, db: Any) -> Any:
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="RCLI")


def _line(session: Session, world: World) -> Line:
    line = make_line(session, world)
    open_period(session, line=line, plan=world.plan, start=NOW, now=NOW)
    session.commit()
    return line


def _topup(cli: Any, msisdn: str, amount: str, ref: str, now: Any = NOW) -> None:
    result = cli("topup", msisdn, amount, "--ref", ref, "--now", now.isoformat())
    assert result.exit_code == 0, result.stderr


def _run(cli: Any, now: Any, *extra: str) -> dict[str, Any]:
    result = cli("renewals", "run", "--now", now.isoformat(), "--json", *extra)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _status(session: Session, line: Line) -> str:
    session.expire_all()
    found = session.get(Line, line.id)
    assert found is not None
    return found.status


def _events(session: Session, line: Line) -> list[str]:
    return list(
        session.exec(
            select(ProvisioningEvent.action)
            .where(ProvisioningEvent.line_id == line.id)
            .order_by(col(ProvisioningEvent.id))
        )
    )


def test_run_prints_json_with_the_counts(cli: Any, session: Session, world: World) -> None:
    paid = _line(session, world)
    unpaid = make_line(session, world)
    open_period(session, line=unpaid, plan=world.plan, start=NOW + timedelta(hours=1), now=NOW)
    session.commit()
    _topup(cli, paid.msisdn, "50.00", "R-1")

    data = _run(cli, END + timedelta(hours=2))

    assert set(data) == KEYS
    assert data["now"] == (END + timedelta(hours=2)).isoformat()
    assert (data["lines_seen"], data["renewed"], data["periods_opened"]) == (2, 1, 1)
    assert (data["suspended"], data["resumed"], data["terminated"]) == (1, 0, 0)
    assert _status(session, paid) == "active" and _status(session, unpaid) == "suspended"
    check = cli("ledger", "check", "--json")
    assert check.exit_code == 0 and json.loads(check.stdout)["ok"] is True
    again = _run(cli, END + timedelta(hours=2))
    assert (again["lines_seen"], again["renewed"], again["suspended"]) == (0, 0, 0)


def test_run_without_json_prints_one_summary_line(cli: Any, session: Session, world: World) -> None:
    _line(session, world)
    result = cli("renewals", "run", "--now", END.isoformat())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        "1 due: 0 renewed (0 periods), 1 suspended, 1 unpaid, 0 resumed, 0 terminated"
    )


def test_now_far_ahead_catches_up_and_terminates_after_90_days(
    cli: Any, session: Session, world: World
) -> None:
    line = _line(session, world)
    _topup(cli, line.msisdn, "78.00", "R-1")  # two periods

    data = _run(cli, NOW + 3 * PERIOD + timedelta(days=90))

    assert (data["periods_opened"], data["suspended"], data["terminated"]) == (2, 1, 1)
    ends = session.exec(
        select(LinePeriod.end).where(LinePeriod.line_id == line.id).order_by(col(LinePeriod.end))
    ).all()
    assert ends == [NOW + k * PERIOD for k in (1, 2, 3)]
    assert _status(session, line) == "terminated"
    assert _events(session, line) == ["suspend", "terminate"]


def test_limit_takes_only_that_many_lines(cli: Any, session: Session, world: World) -> None:
    for _ in range(3):
        _line(session, world)
    assert _run(cli, END, "--limit", "2")["lines_seen"] == 2
    assert _run(cli, END)["lines_seen"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--now", "tomorrow"), "not an ISO 8601 time"), (("--now", "2026-12-01T08:00:00"), "offset")],
)
def test_bad_now_exits_1_on_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    result = cli("renewals", "run", *args)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_a_topup_during_suspension_renews_and_resumes(
    cli: Any, session: Session, world: World
) -> None:
    line = _line(session, world)
    _run(cli, END)
    assert _status(session, line) == "suspended"
    paid_at = END + timedelta(days=3)

    _topup(cli, line.msisdn, "40.00", "R-9", now=paid_at)

    assert _status(session, line) == "active"
    assert _events(session, line) == ["suspend", "resume"]
    latest = session.exec(
        select(LinePeriod).where(LinePeriod.line_id == line.id).order_by(col(LinePeriod.end).desc())
    ).first()
    assert latest is not None and (latest.start, latest.end) == (paid_at, paid_at + PERIOD)
    balance = cli("ledger", "balance", line.msisdn, "--json")
    assert json.loads(balance.stdout)["balance"] == 4000 - PRICE


def test_a_voucher_during_suspension_renews_and_resumes(
    cli: Any, session: Session, world: World
) -> None:
    line = _line(session, world)
    _run(cli, END)
    assert world.customer.id is not None
    _batch, pairs = create_voucher_batch(
        session,
        name="renewals",
        value_minor=5000,
        count=1,
        expires_at=END + PERIOD,
        currency="CNY",
        actor=Actor.cli(),
        now=NOW,
    )
    serial, pin = pairs[0]
    redeem_voucher(
        session,
        customer_id=world.customer.id,
        serial=serial,
        pin=pin,
        ip="127.0.0.1",
        actor=Actor("subscriber", 1, "sub@example.com"),
        now=END + timedelta(days=1),
        cap_months=24,
        reference_monthly_minor=5000,
        policy=VoucherPolicy(),
    )
    session.commit()

    assert _status(session, line) == "active"
    assert _events(session, line) == ["suspend", "resume"]


def test_the_scheduler_job_renews_in_its_own_transactions(
    app: Any, db: Any, session: Session, world: World
) -> None:
    line = _line(session, world)
    job = next(job for job in JOBS if job.id == "renew_lines")
    assert job.own_transactions

    result = run_job(db, job, now=END, settings=app.extensions["mvno.settings"])

    assert result["suspended"] == 1 and result["lines_seen"] == 1
    assert _status(session, line) == "suspended"
