"""Staff and subscriber accounts and logins with lockout (API keys: api_keys.py; resets: resets.py).

Login throttling is kept in the database (`login_attempt`) so it holds
across gunicorn workers and restarts:

* an e-mail is locked once it has `max_failures` failed attempts within the
  last `lockout_minutes` and since its last success — whether or not an
  account exists for it, so a lockout reveals nothing;
* an address (IP) is refused once it has `max_failures_per_ip` failures in
  the same window, whatever e-mails it tries.

A locked login is refused before the password is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete
from sqlmodel import Session, col, func, select

from app.auth import passwords
from app.auth.errors import (
    EmailTaken,
    InvalidCredentials,
    LoginLocked,
    StaffNotFound,
    UnknownRole,
)
from app.auth.models import (
    LoginAttempt,
    StaffUser,
    SubscriberAccount,
)
from app.auth.permissions import ROLES
from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.db import insert_unique
from app.core.errors import N_, InvalidInput, clean_text
from app.core.throttle import locked_until


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout_minutes: int = 15
    max_failures_per_ip: int = 20


def normalize_email(email: str) -> str:
    """Validate an address and return its normalized, lower-cased form."""
    try:
        result = validate_email((email or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            N_("Not a valid e-mail address: %(reason)s"), field="email", reason=str(exc)
        ) from None
    return result.normalized.lower()


def check_role(role: str) -> None:
    """Refuse a role name that is not one of ROLES. :raises UnknownRole."""
    if role not in ROLES:
        raise UnknownRole(
            N_("Unknown role %(role)r; choose one of %(roles)s."),
            field="role",
            role=role,
            roles=", ".join(ROLES),
        )


# -- staff ---------------------------------------------------------------------------


def create_staff(
    session: Session,
    *,
    email: str,
    role: str,
    password: str,
    name: str = "",
    actor: Actor,
    now: datetime,
) -> StaffUser:
    """Create a staff user. :raises EmailTaken, UnknownRole, WeakPassword, InvalidInput."""
    email = normalize_email(email)
    check_role(role)
    passwords.check_strength(password)
    user = StaffUser(
        email=email,
        name=clean_text(name, field="name", max_length=limits.PERSON_NAME),
        role=role,
        password_hash=passwords.hash_password(password),
        created_at=now,
    )
    insert_unique(
        session,
        user,
        EmailTaken(
            N_("A staff user with e-mail %(email)s already exists."), field="email", email=email
        ),
    )
    record_audit(
        session,
        actor=actor,
        action="staff.create",
        now=now,
        target_type="staff_user",
        target_id=user.id,
        details={"email": email, "role": role},
    )
    return user


def get_staff(session: Session, staff_id: int) -> StaffUser:
    """The staff user `staff_id`. :raises StaffNotFound."""
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise StaffNotFound(N_("No staff user %(id)s."), id=staff_id)
    return user


def find_staff_by_email(session: Session, email: str) -> StaffUser | None:
    """The staff user with this e-mail (case-insensitive), or None."""
    return session.exec(select(StaffUser).where(StaffUser.email == email.strip().lower())).first()


def list_staff(session: Session) -> list[StaffUser]:
    """Every staff user, by e-mail."""
    return list(session.exec(select(StaffUser).order_by(col(StaffUser.email))))


def set_staff_active(
    session: Session, *, staff_id: int, active: bool, actor: Actor, now: datetime
) -> StaffUser:
    """Enable or disable a staff login. Refuses to disable the acting admin itself."""
    user = get_staff(session, staff_id)
    if actor.kind == "staff" and actor.id == staff_id and not active:
        raise InvalidInput(N_("You cannot disable your own account."))
    if user.is_active != active:
        user.is_active = active
        session.add(user)
        record_audit(
            session,
            actor=actor,
            action="staff.enable" if active else "staff.disable",
            now=now,
            target_type="staff_user",
            target_id=staff_id,
        )
        session.flush()
    return user


def change_staff_password(
    session: Session, *, staff_id: int, current: str, new: str, now: datetime
) -> None:
    """Change a staff user's own password after checking the current one; audited.

    :raises InvalidCredentials: the current password is wrong.
    :raises WeakPassword: the new one breaks the rules.
    """
    user = get_staff(session, staff_id)
    if not passwords.verify_password(user.password_hash, current):
        raise InvalidCredentials(N_("The current password is wrong."), field="current_password")
    passwords.check_strength(new)
    user.password_hash = passwords.hash_password(new)
    session.add(user)
    record_audit(
        session,
        actor=Actor("staff", user.id, user.email),
        action="staff.password_change",
        now=now,
        target_type="staff_user",
        target_id=user.id,
    )
    session.flush()


def count_staff_by_role(session: Session) -> dict[str, int]:
    """Active staff users per role (every role present, zero when none)."""
    rows = session.exec(
        select(StaffUser.role, func.count())
        .where(col(StaffUser.is_active).is_(True))
        .group_by(StaffUser.role)
    ).all()
    counts = dict.fromkeys(ROLES, 0)
    counts.update({role: n for role, n in rows})
    return counts


# -- logins --------------------------------------------------------------------------


def _lockout_state(
    session: Session, *, scope: str, email: str, ip: str, policy: LoginPolicy, now: datetime
) -> datetime | None:
    """When the lockout affecting this try ends, or None if it may proceed."""
    window_start = now - timedelta(minutes=policy.lockout_minutes)
    same_email = (LoginAttempt.scope == scope, LoginAttempt.email == email)
    last_success = session.exec(
        select(func.max(LoginAttempt.at)).where(*same_email, col(LoginAttempt.success).is_(True))
    ).one()
    by_email = locked_until(
        session,
        LoginAttempt,
        *same_email,
        since=max(window_start, last_success) if last_success else window_start,
        limit=policy.max_failures,
        minutes=policy.lockout_minutes,
    )
    if by_email is not None or not ip:
        return by_email
    return locked_until(
        session,
        LoginAttempt,
        LoginAttempt.ip == ip,
        since=window_start,
        limit=policy.max_failures_per_ip,
        minutes=policy.lockout_minutes,
    )


def _authenticate(
    session: Session,
    *,
    scope: str,
    model: type[StaffUser] | type[SubscriberAccount],
    email: str,
    password: str,
    ip: str,
    policy: LoginPolicy,
    now: datetime,
) -> StaffUser | SubscriberAccount:
    email = (email or "").strip().lower()[:254]
    locked_until = _lockout_state(session, scope=scope, email=email, ip=ip, policy=policy, now=now)
    if locked_until is not None:
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
        raise LoginLocked(
            N_("Too many failed logins. Try again in %(minutes)s minutes."),
            field="email",
            minutes=minutes,
        )
    account = cast(
        StaffUser | SubscriberAccount | None,
        session.exec(select(model).where(model.email == email)).first(),
    )
    ok = passwords.verify_password(account.password_hash if account else None, password or "")
    ok = ok and account is not None and account.is_active
    session.add(LoginAttempt(scope=scope, email=email, ip=ip[:64], success=ok, at=now))
    if not ok or account is None:
        session.flush()
        raise InvalidCredentials(N_("Wrong e-mail or password."), field="password")
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    account.last_login_at = now
    session.add(account)
    session.flush()
    return account


def authenticate_staff(
    session: Session, *, email: str, password: str, ip: str, policy: LoginPolicy, now: datetime
) -> StaffUser:
    """Check a staff login; records the attempt (commit it even when this raises).

    :raises LoginLocked: too many recent failures for the e-mail or the address.
    :raises InvalidCredentials: wrong e-mail or password, or a disabled account.
    """
    user = _authenticate(
        session,
        scope="staff",
        model=StaffUser,
        email=email,
        password=password,
        ip=ip,
        policy=policy,
        now=now,
    )
    assert isinstance(user, StaffUser)
    record_audit(
        session,
        actor=Actor("staff", user.id, user.email),
        action="staff.login",
        now=now,
        target_type="staff_user",
        target_id=user.id,
        ip=ip,
    )
    return user


def authenticate_subscriber(
    session: Session, *, email: str, password: str, ip: str, policy: LoginPolicy, now: datetime
) -> SubscriberAccount:
    """Check a subscriber login; same rules as `authenticate_staff`."""
    account = _authenticate(
        session,
        scope="subscriber",
        model=SubscriberAccount,
        email=email,
        password=password,
        ip=ip,
        policy=policy,
        now=now,
    )
    assert isinstance(account, SubscriberAccount)
    return account


def purge_login_attempts(session: Session, *, now: datetime, keep_days: int = 30) -> int:
    """Delete login attempts older than `keep_days`. Idempotent."""
    cutoff = now - timedelta(days=keep_days)
    result = session.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- subscribers ---------------------------------------------------------------------


def register_subscriber(
    session: Session,
    *,
    email: str,
    password: str,
    display_name: str = "",
    locale: str = "zh_Hans",
    now: datetime,
) -> SubscriberAccount:
    """Open a self-care account. :raises EmailTaken, WeakPassword, InvalidInput."""
    email = normalize_email(email)
    passwords.check_strength(password)
    account = SubscriberAccount(
        email=email,
        display_name=clean_text(display_name, field="display_name", max_length=limits.PERSON_NAME),
        password_hash=passwords.hash_password(password),
        locale=locale if locale in ("zh_Hans", "en") else "zh_Hans",
        created_at=now,
    )
    insert_unique(
        session,
        account,
        EmailTaken(N_("An account with this e-mail already exists."), field="email"),
    )
    record_audit(
        session,
        actor=Actor("subscriber", account.id, email),
        action="subscriber.register",
        now=now,
        target_type="subscriber_account",
        target_id=account.id,
    )
    return account


def count_subscribers(session: Session) -> int:
    """How many store logins exist."""
    return session.exec(select(func.count()).select_from(SubscriberAccount)).one()
