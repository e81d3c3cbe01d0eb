"""The database kernel on both backends: schema, transactions, time, audit."""

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.auth.models import StaffUser
from app.core.audit import Actor, AuditEntry, record_audit
from app.core.db import Database, UTCDateTime
from app.core.migrate import current_revision, head_revision, schema_differences
from tests.factories import NOW, make_staff


def test_models_and_migrations_agree(app):
    engine = app.extensions["mvno.db"].engine
    with engine.connect() as connection:
        assert schema_differences(connection) == []
    assert current_revision(engine) == head_revision()
    assert head_revision() is not None


def test_times_come_back_aware_in_utc(session):
    user = make_staff(session, now=datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))))
    session.expire_all()
    loaded = session.get(StaffUser, user.id)
    assert loaded.created_at == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert loaded.created_at.tzinfo is not None


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect=None)


def test_role_check_constraint_is_named_and_enforced(session):
    session.add(StaffUser(email="x@example.com", role="boss", password_hash="h", created_at=NOW))
    with pytest.raises(IntegrityError, match="ck_staff_user_role_known"):
        session.flush()


def test_audit_record_rolls_back_with_its_change(db):
    with pytest.raises(RuntimeError), db.transaction() as session:
        user = make_staff(session)
        record_audit(
            session,
            actor=Actor.cli(),
            action="test.thing",
            now=NOW,
            target_type="staff_user",
            target_id=user.id,
        )
        raise RuntimeError("boom")
    with db.transaction(write=False) as session:
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "test.thing")).all() == []
        assert session.exec(select(StaffUser)).all() == []


def test_transaction_commits_at_the_boundary(db):
    with db.transaction() as session:
        make_staff(session, email="kept@example.com")
    with db.transaction(write=False) as session:
        assert session.exec(select(StaffUser.email)).all() == ["kept@example.com"]


def test_backend_connection_settings(app, is_postgres):
    """SQLite: WAL journal and foreign keys on. PostgreSQL: READ COMMITTED."""
    with app.extensions["mvno.db"].engine.connect() as connection:
        if is_postgres:
            level = connection.execute(text("SHOW transaction_isolation")).scalar()
            assert level == "read committed"
        else:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_write_transactions_serialise(app):
    """Two writers never interleave: the second waits for the first to commit.

    On SQLite this is BEGIN IMMEDIATE; on PostgreSQL it is the row lock the
    second writer's `FOR UPDATE` waits on.
    """
    database = Database(app.extensions["mvno.db"].url)
    with database.transaction() as session:
        session.execute(text("DELETE FROM audit_entry WHERE action = 'test.counter'"))
        record_audit(session, actor=Actor.cli(), action="test.counter", now=NOW, details={"n": 0})
    order: list[str] = []
    first_holds_lock = threading.Event()

    def writer(name: str, hold: float) -> None:
        with database.transaction() as session:
            row = session.exec(
                select(AuditEntry).where(AuditEntry.action == "test.counter").with_for_update()
            ).one()
            if name == "first":
                first_holds_lock.set()
            order.append(f"{name} read {row.details['n']}")
            time.sleep(hold)
            row.details = {"n": row.details["n"] + 1}
            session.add(row)

    first = threading.Thread(target=writer, args=("first", 0.3))
    first.start()
    assert first_holds_lock.wait(5)
    second = threading.Thread(target=writer, args=("second", 0))
    second.start()
    first.join(10)
    second.join(10)
    try:
        assert order == ["first read 0", "second read 1"]
    finally:
        with database.transaction() as session:
            session.execute(text("DELETE FROM audit_entry WHERE action = 'test.counter'"))
        database.dispose()
