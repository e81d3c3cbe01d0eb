"""The provisioning outbox end to end: adapters, retries, dead letters, order, CLI (DESIGN §10)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.core.audit import AuditEntry
from app.core.db import Database
from app.core.outbox import backoff
from app.provisioning import services as outbox
from app.provisioning.errors import EventState
from app.provisioning.models import ProvisioningEvent
from app.subscribers import lifecycle
from app.subscribers.models import Line
from tests.factories import NOW
from tests.host_server import SECRET, FakeHost
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world
from wholesale import services as wholesale

TIMEOUT = 0.3


@pytest.fixture(scope="module")
def host_server() -> Iterator[FakeHost]:
    server = FakeHost().start()
    yield server
    server.stop()


@pytest.fixture
def log_world(session: Session) -> World:
    world = make_world(session, code="LOGH")
    session.commit()
    return world


@pytest.fixture
def http_world(session: Session, host_server: FakeHost) -> World:
    world = make_world(session, code="HTTPH", provisioning="http", provisioning_url=host_server.url)
    assert world.host.id is not None
    wholesale.set_provisioning_secret(
        session, host_id=world.host.id, secret=SECRET, actor=STAFF, now=NOW
    )
    session.commit()
    host_server.reset()
    return world


def deliver(db: Database, app: Any, now: Any) -> dict[str, int]:
    settings = app.extensions["mvno.settings"]
    report = outbox.deliver_pending(db, now=now, settings=settings, timeout_seconds=TIMEOUT)
    return report.as_dict()


def suspend(session: Session, line: Line, now: Any = NOW) -> ProvisioningEvent:
    assert line.id is not None
    lifecycle.suspend_line(session, line_id=line.id, reason="test", actor=STAFF, now=now)
    session.commit()
    return session.exec(
        select(ProvisioningEvent)
        .where(ProvisioningEvent.line_id == line.id)
        .order_by(col(ProvisioningEvent.id).desc())
    ).first()  # type: ignore[return-value]


def fresh(session: Session, event: ProvisioningEvent) -> ProvisioningEvent:
    session.expire_all()
    found = session.get(ProvisioningEvent, event.id)
    assert found is not None
    return found


def test_the_log_adapter_appends_one_json_line(app, db, session, log_world) -> None:
    line = make_line(session, log_world)
    event = suspend(session, line)
    path = app.extensions["mvno.settings"].instance_path / "provisioning" / "LOGH.jsonl"
    before = path.read_bytes().count(b"\n") if path.exists() else 0
    assert deliver(db, app, NOW) == {"delivered": 1, "failed": 0, "dead": 0}
    lines = path.read_bytes().splitlines()
    assert len(lines) == before + 1
    document = json.loads(lines[-1])
    assert document["id"] == event.id and document["action"] == "suspend"
    assert document["payload"]["msisdn"] == line.msisdn
    delivered = fresh(session, event)
    assert delivered.status == "delivered" and delivered.delivered_at == NOW
    assert deliver(db, app, NOW) == {"delivered": 0, "failed": 0, "dead": 0}


def test_a_delivered_activate_event_activates_the_line(app, db, session, log_world) -> None:
    line = make_line(session, log_world, status="pending")
    assert line.id is not None
    lifecycle.request_activation(session, line_id=line.id, actor=STAFF, now=NOW)
    session.commit()
    assert deliver(db, app, NOW)["delivered"] == 1
    session.expire_all()
    assert session.get(Line, line.id).status == "active"  # type: ignore[union-attr]


def test_http_fails_then_times_out_then_succeeds_with_backoff(
    app, db, session, http_world, host_server
) -> None:
    line = make_line(session, http_world)
    event = suspend(session, line)
    host_server.reset(500, "timeout", 204)

    assert deliver(db, app, NOW) == {"delivered": 0, "failed": 1, "dead": 0}
    first = fresh(session, event)
    assert first.attempts == 1 and first.last_error.startswith("HTTP 500")
    assert first.next_attempt_at == NOW + timedelta(seconds=30)
    # Not due yet: nothing is sent.
    assert deliver(db, app, NOW + timedelta(seconds=29)) == {"delivered": 0, "failed": 0, "dead": 0}
    assert len(host_server.requests) == 1

    second_try = NOW + timedelta(seconds=30)
    assert deliver(db, app, second_try) == {"delivered": 0, "failed": 1, "dead": 0}
    second = fresh(session, event)
    assert second.attempts == 2 and "no answer" in second.last_error
    assert second.next_attempt_at == second_try + timedelta(seconds=60)

    third_try = second_try + timedelta(seconds=60)
    assert deliver(db, app, third_try) == {"delivered": 1, "failed": 0, "dead": 0}
    done = fresh(session, event)
    assert done.status == "delivered" and done.attempts == 3 and done.delivered_at == third_try

    # Every request is signed over its exact body, and the same event is byte-identical.
    bodies = {r["body"] for r in host_server.requests}
    assert len(bodies) == 1
    for request in host_server.requests:
        body = request["body"]
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert request["headers"]["X-Signature"] == f"sha256={expected}"
        assert request["headers"]["X-Event-Id"] == str(event.id)
        assert json.loads(body)["payload"]["msisdn"] == line.msisdn


def test_dead_after_eight_failures_then_retry_from_dead(
    app, db, session, http_world, host_server
) -> None:
    line = make_line(session, http_world)
    event = suspend(session, line)
    host_server.reset(*[503] * 8)
    now = NOW
    results = []
    for attempt in range(1, 9):
        results.append(deliver(db, app, now))
        current = fresh(session, event)
        assert current.attempts == attempt
        if attempt < 8:
            assert current.status == "pending"
            assert current.next_attempt_at - now == backoff(attempt)
            now = current.next_attempt_at
    assert results[:7] == [{"delivered": 0, "failed": 1, "dead": 0}] * 7
    assert results[7] == {"delivered": 0, "failed": 0, "dead": 1}
    dead = fresh(session, event)
    assert dead.status == "dead" and dead.last_error.startswith("HTTP 503")
    assert deliver(db, app, now + timedelta(days=1))["delivered"] == 0

    assert event.id is not None
    with db.transaction() as tx:
        outbox.retry_dead_event(tx, event_id=event.id, actor=STAFF, now=now)
    retried = fresh(session, event)
    assert retried.status == "pending" and retried.attempts == 0
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "provisioning.retry")).one()
    assert audit.target_id == str(event.id) and audit.details["attempts"] == 8
    assert deliver(db, app, now) == {"delivered": 1, "failed": 0, "dead": 0}
    with pytest.raises(EventState), db.transaction() as tx:
        outbox.retry_dead_event(tx, event_id=event.id, actor=STAFF, now=now)


def test_a_lines_events_go_in_order_behind_a_failing_one(
    app, db, session, http_world, host_server
) -> None:
    line = make_line(session, http_world)
    other = make_line(session, http_world)
    first = suspend(session, line)
    assert line.id is not None
    lifecycle.resume_line(session, line_id=line.id, reason="paid", actor=STAFF, now=NOW)
    session.commit()
    unrelated = suspend(session, other)
    host_server.reset(500)  # the first event fails; the other line's goes through
    assert deliver(db, app, NOW) == {"delivered": 1, "failed": 1, "dead": 0}
    sent = [json.loads(r["body"])["id"] for r in host_server.requests]
    assert sent == [first.id, unrelated.id]
    # Later: the suspension goes first, then the resumption, in one run.
    assert deliver(db, app, NOW + timedelta(minutes=1)) == {"delivered": 2, "failed": 0, "dead": 0}
    actions = [json.loads(r["body"])["action"] for r in host_server.requests[2:]]
    assert actions == ["suspend", "resume"]


def test_an_http_host_without_a_secret_fails_and_sends_nothing(
    app, db, session, host_server
) -> None:
    world = make_world(session, code="NOSEC", provisioning="http", provisioning_url=host_server.url)
    event = suspend(session, make_line(session, world))
    host_server.reset()
    assert deliver(db, app, NOW)["failed"] == 1
    assert host_server.requests == []
    assert "secret" in fresh(session, event).last_error


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def test_cli_provisioning_deliver(cli, session, log_world) -> None:
    suspend(session, make_line(session, log_world))
    result = cli("provisioning", "deliver", "--json", "--now", NOW.isoformat())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"delivered": 1, "failed": 0, "dead": 0}
    result = cli("provisioning", "deliver", "--now", NOW.isoformat())
    assert result.exit_code == 0
    assert result.stdout.strip() == "delivered 0, failed 0, dead 0"


def test_the_scheduler_job_delivers(app, db, session, log_world) -> None:
    from app.jobs import JOBS, run_job

    suspend(session, make_line(session, log_world))
    job = next(job for job in JOBS if job.id == "deliver_provisioning")
    assert job.own_transactions
    result = run_job(db, job, now=NOW, settings=app.extensions["mvno.settings"])
    assert result == {"delivered": 1, "failed": 0, "dead": 0}
