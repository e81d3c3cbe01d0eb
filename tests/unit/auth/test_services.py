from datetime import timedelta

import pytest
from sqlmodel import select

from app.auth import api_keys, passwords
from app.auth.errors import (
    ApiKeyNotFound,
    EmailTaken,
    InvalidCredentials,
    LoginLocked,
    UnknownRole,
    WeakPassword,
)
from app.auth.models import ApiKey, LoginAttempt, StaffUser
from app.auth.services import (
    LoginPolicy,
    authenticate_staff,
    authenticate_subscriber,
    change_staff_password,
    purge_login_attempts,
    set_staff_active,
)
from app.core.audit import Actor, AuditEntry
from app.core.errors import InvalidInput
from tests.factories import NOW, PASSWORD, make_api_key, make_staff, make_subscriber

POLICY = LoginPolicy(max_failures=3, lockout_minutes=15, max_failures_per_ip=5)


def login(session, email, password=PASSWORD, *, ip="10.0.0.1", now=NOW, scope="staff"):
    fn = authenticate_staff if scope == "staff" else authenticate_subscriber
    return fn(session, email=email, password=password, ip=ip, policy=POLICY, now=now)


def test_create_staff_normalises_email_hashes_password_and_audits(session):
    user = make_staff(session, email="  Alice@Example.COM ", role="care")
    assert user.email == "alice@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "staff.create")).one()
    assert audit.target_id == str(user.id)
    assert "password" not in str(audit.details)


def test_duplicate_staff_email_is_refused_and_keeps_the_first(session):
    make_staff(session, email="bob@example.com", role="care")
    with pytest.raises(EmailTaken) as info:
        make_staff(session, email="BOB@example.com", role="admin")
    assert info.value.field == "email"
    users = session.exec(select(StaffUser)).all()
    assert [(u.email, u.role) for u in users] == [("bob@example.com", "care")]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"role": "root"}, UnknownRole),
        ({"password": "short"}, WeakPassword),
        ({"password": " " * 12}, WeakPassword),
        ({"password": "x" * 257}, WeakPassword),
        ({"email": "not-an-email"}, InvalidInput),
    ],
)
def test_bad_staff_input_is_refused(session, kwargs, error):
    with pytest.raises(error):
        make_staff(session, **kwargs)
    assert session.exec(select(StaffUser)).all() == []


def test_login_with_right_password(session):
    user = make_staff(session, email="carol@example.com")
    assert login(session, "Carol@example.com").id == user.id
    assert session.get(StaffUser, user.id).last_login_at == NOW


@pytest.mark.parametrize("email", ["carol@example.com", "nobody@example.com"])
def test_wrong_password_and_unknown_email_fail_alike(session, email):
    make_staff(session, email="carol@example.com")
    with pytest.raises(InvalidCredentials) as info:
        login(session, email, "wrong-password")
    assert info.value.message == "Wrong e-mail or password."


def test_disabled_staff_cannot_log_in(session):
    user = make_staff(session, email="dave@example.com")
    set_staff_active(session, staff_id=user.id, active=False, actor=Actor.cli(), now=NOW)
    with pytest.raises(InvalidCredentials):
        login(session, "dave@example.com")


def test_lockout_after_repeated_failures_even_with_the_right_password(session):
    make_staff(session, email="erin@example.com")
    for i in range(POLICY.max_failures):
        with pytest.raises(InvalidCredentials):
            login(session, "erin@example.com", "wrong", now=NOW + timedelta(seconds=i))
    with pytest.raises(LoginLocked) as info:
        login(session, "erin@example.com", now=NOW + timedelta(minutes=1))
    assert "15 minutes" in info.value.message
    # The window passes: the right password works again.
    assert login(session, "erin@example.com", now=NOW + timedelta(minutes=16)).email


def test_lockout_applies_to_unknown_emails_too(session):
    for _ in range(POLICY.max_failures):
        with pytest.raises(InvalidCredentials):
            login(session, "ghost@example.com", "wrong")
    with pytest.raises(LoginLocked):
        login(session, "ghost@example.com", "wrong")


def test_success_resets_the_failure_count(session):
    make_staff(session, email="fay@example.com")
    for _ in range(POLICY.max_failures - 1):
        with pytest.raises(InvalidCredentials):
            login(session, "fay@example.com", "wrong")
    login(session, "fay@example.com", now=NOW + timedelta(seconds=1))
    with pytest.raises(InvalidCredentials):
        login(session, "fay@example.com", "wrong", now=NOW + timedelta(seconds=2))
    assert login(session, "fay@example.com", now=NOW + timedelta(seconds=3))


def test_one_address_trying_many_emails_is_stopped(session):
    make_staff(session, email="gus@example.com")
    for i in range(POLICY.max_failures_per_ip):
        with pytest.raises(InvalidCredentials):
            login(session, f"guess{i}@example.com", "wrong", ip="203.0.113.9")
    with pytest.raises(LoginLocked):
        login(session, "gus@example.com", ip="203.0.113.9")
    assert login(session, "gus@example.com", ip="198.51.100.1")


def test_staff_and_subscriber_logins_are_separate(session):
    make_subscriber(session, email="hana@example.com")
    with pytest.raises(InvalidCredentials):
        login(session, "hana@example.com", scope="staff")
    assert login(session, "hana@example.com", scope="subscriber").email == "hana@example.com"


def test_duplicate_subscriber_is_refused(session):
    make_subscriber(session, email="ivy@example.com")
    with pytest.raises(EmailTaken):
        make_subscriber(session, email="Ivy@Example.com")


def test_weak_hash_is_upgraded_on_login(session):
    user = make_staff(session, email="jo@example.com")
    passwords.configure("default")
    try:
        assert passwords.needs_rehash(user.password_hash)
        login(session, "jo@example.com")
        assert not passwords.needs_rehash(session.get(StaffUser, user.id).password_hash)
    finally:
        passwords.configure("cheap")


def test_change_password_needs_the_current_one(session):
    user = make_staff(session, email="kim@example.com")
    with pytest.raises(InvalidCredentials):
        change_staff_password(session, staff_id=user.id, current="nope", new="x" * 12, now=NOW)
    change_staff_password(
        session, staff_id=user.id, current=PASSWORD, new="new-password-1", now=NOW
    )
    assert login(session, "kim@example.com", "new-password-1")


def test_admin_cannot_disable_themself(session):
    user = make_staff(session)
    with pytest.raises(InvalidInput):
        set_staff_active(
            session,
            staff_id=user.id,
            active=False,
            actor=Actor("staff", user.id, user.email),
            now=NOW,
        )


def test_api_key_is_stored_as_a_digest_and_authenticates(session):
    key, token = make_api_key(session, role="finance")
    assert token.startswith(f"mvno_{key.prefix}_")
    stored = session.get(ApiKey, key.id)
    assert token not in (stored.key_hash, stored.prefix)
    assert api_keys.authenticate_api_key(session, token=token, now=NOW).id == key.id
    assert stored.last_used_at == NOW


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "",
        lambda t: "mvno_x",
        lambda t: t.replace("mvno_", "other_"),
    ],
)
def test_wrong_tokens_do_not_authenticate(session, mangle):
    _key, token = make_api_key(session)
    assert api_keys.authenticate_api_key(session, token=mangle(token), now=NOW) is None


def test_revoked_key_stops_working_and_revoke_is_idempotent(session):
    key, token = make_api_key(session)
    api_keys.revoke_api_key(session, key_id=key.id, actor=Actor.cli(), now=NOW)
    api_keys.revoke_api_key(session, key_id=key.id, actor=Actor.cli(), now=NOW + timedelta(1))
    assert session.get(ApiKey, key.id).revoked_at == NOW
    assert api_keys.authenticate_api_key(session, token=token, now=NOW) is None
    revokes = session.exec(select(AuditEntry).where(AuditEntry.action == "api_key.revoke")).all()
    assert len(revokes) == 1
    with pytest.raises(ApiKeyNotFound):
        api_keys.revoke_api_key(session, key_id=999_999, actor=Actor.cli(), now=NOW)


def test_purge_deletes_only_old_login_attempts(session):
    for days in (0, 29, 31, 400):
        session.add(
            LoginAttempt(
                scope="staff", email="a@example.com", success=False, at=NOW - timedelta(days=days)
            )
        )
    session.flush()
    assert purge_login_attempts(session, now=NOW, keep_days=30) == 2
    assert len(session.exec(select(LoginAttempt)).all()) == 2
