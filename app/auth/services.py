"""Staff and subscriber accounts, logins with lockout, API keys.

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

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, update
from sqlmodel import Session, col, func, select

from app.auth import passwords
from app.auth.errors import (
    ApiKeyNotFound,
    EmailTaken,
    InvalidCredentials,
    LoginLocked,
    ResetRequestsThrottled,
    ResetTokenInvalid,
    StaffNotFound,
    UnknownRole,
    WeakPassword,
)
from app.auth.events import PasswordResetRequested
from app.auth.models import (
    ApiKey,
    LoginAttempt,
    PasswordResetToken,
    StaffUser,
    SubscriberAccount,
)
from app.auth.permissions import ROLES
from app.core.audit import Actor, count_recent, record_audit
from app.core.db import insert_unique
from app.core.errors import N_, InvalidInput, clean_text
from app.core.events import emit
from app.core.throttle import locked_until

API_KEY_PREFIX = "mvno"


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


def _check_password(password: str) -> None:
    problem = passwords.password_problem(password)
    if problem:
        raise WeakPassword(
            problem, field="password", min=passwords.MIN_LENGTH, max=passwords.MAX_LENGTH
        )


def check_role(role: str) -> None:
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
    _check_password(password)
    user = StaffUser(
        email=email,
        name=clean_text(name, field="name", max_length=200),
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
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise StaffNotFound(N_("No staff user %(id)s."), id=staff_id)
    return user


def find_staff_by_email(session: Session, email: str) -> StaffUser | None:
    return session.exec(select(StaffUser).where(StaffUser.email == email.strip().lower())).first()


def list_staff(session: Session) -> list[StaffUser]:
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
    user = get_staff(session, staff_id)
    if not passwords.verify_password(user.password_hash, current):
        raise InvalidCredentials(N_("The current password is wrong."), field="current_password")
    _check_password(new)
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
    _check_password(password)
    account = SubscriberAccount(
        email=email,
        display_name=clean_text(display_name, field="display_name", max_length=200),
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
    return session.exec(select(func.count()).select_from(SubscriberAccount)).one()


# -- API keys ------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, *, name: str, role: str, actor: Actor, now: datetime
) -> tuple[ApiKey, str]:
    """Create a key and return it with its token — the only time the token exists in clear.

    Tokens look like `mvno_<prefix>_<secret>`; only the SHA-256 of the whole
    token is stored (the secret has 256 bits, so a slow hash adds nothing).
    """
    name = clean_text(name, field="name", max_length=100, required=True)
    check_role(role)
    prefix = secrets.token_hex(4)
    token = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=_digest(token),
        role=role,
        created_by_id=actor.id if actor.kind == "staff" else None,
        created_at=now,
    )
    session.add(key)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="api_key.create",
        now=now,
        target_type="api_key",
        target_id=key.id,
        details={"name": name, "role": role, "prefix": prefix},
    )
    return key, token


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id).desc())))


def revoke_api_key(session: Session, *, key_id: int, actor: Actor, now: datetime) -> ApiKey:
    """Revoke a key. Idempotent. :raises ApiKeyNotFound."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise ApiKeyNotFound(N_("No API key %(id)s."), id=key_id)
    if key.revoked_at is None:
        key.revoked_at = now
        session.add(key)
        record_audit(
            session,
            actor=actor,
            action="api_key.revoke",
            now=now,
            target_type="api_key",
            target_id=key.id,
            details={"prefix": key.prefix},
        )
        session.flush()
    return key


def authenticate_api_key(session: Session, *, token: str, now: datetime) -> ApiKey | None:
    """The active key for a bearer token, or None. Constant-time digest comparison."""
    parts = (token or "").split("_")
    if len(parts) < 3 or parts[0] != API_KEY_PREFIX:
        return None
    key = session.exec(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash, _digest(token)):
        return None
    # Touch at most once a minute: a busy integration should not write on every call.
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
        session.add(key)
        session.flush()
    return key


# -- password reset ------------------------------------------------------------------


@dataclass(frozen=True)
class ResetPolicy:
    """How long a link lives and how many requests are answered."""

    token_minutes: int = 60
    # A login gets at most this many links an hour (more are silently not sent).
    per_account_per_hour: int = 3
    # An address (IP) may ask this many times an hour, for any e-mails.
    per_ip_per_hour: int = 10


RESET_REQUEST_ACTION = "subscriber.password_reset_request"


def request_password_reset(
    session: Session,
    *,
    email: str,
    ip: str,
    reset_url: Callable[[str], str],
    now: datetime,
    policy: ResetPolicy = ResetPolicy(),
) -> bool:
    """Send a store login a single-use password-reset link by e-mail (the outbox).

    The answer to the person asking is the same whether or not the e-mail
    has an account; the return value (True when a link was queued) is for
    tests and logs only. Only the SHA-256 of the token is stored; the link
    (`reset_url(token)`) travels in the `PasswordResetRequested` event, whose
    handler queues the notice in this unit of work. Every request is
    audited with its address but never its e-mail or token.
    :raises ResetRequestsThrottled: the address asked too often in the last hour.
    """
    ip = (ip or "")[:64]
    hour_ago = now - timedelta(hours=1)
    recent = count_recent(session, action=RESET_REQUEST_ACTION, ip=ip, since=hour_ago) if ip else 0
    if recent >= policy.per_ip_per_hour:
        raise ResetRequestsThrottled(N_("Too many requests. Please wait and try again."))
    address = (email or "").strip().lower()[:254]
    account = session.exec(
        select(SubscriberAccount).where(SubscriberAccount.email == address)
    ).first()
    sent = False
    if account is not None and account.is_active and account.id is not None:
        recent = session.exec(
            select(func.count())
            .select_from(PasswordResetToken)
            .where(
                PasswordResetToken.account_id == account.id,
                col(PasswordResetToken.created_at) > hour_ago,
            )
        ).one()
        if recent < policy.per_account_per_hour:
            token = secrets.token_urlsafe(32)
            session.add(
                PasswordResetToken(
                    account_id=account.id,
                    token_hash=_digest(token),
                    created_at=now,
                    expires_at=now + timedelta(minutes=policy.token_minutes),
                )
            )
            emit(
                session,
                PasswordResetRequested(
                    account_id=account.id,
                    email=account.email,
                    locale=account.locale,
                    reset_url=reset_url(token),
                    expires_minutes=policy.token_minutes,
                    now=now,
                ),
            )
            sent = True
    record_audit(
        session,
        actor=Actor("subscriber", account.id, account.email)
        if sent and account is not None
        else Actor.system("anonymous"),
        action=RESET_REQUEST_ACTION,
        now=now,
        target_type="subscriber_account" if sent and account is not None else "",
        target_id=account.id if sent and account is not None else "",
        ip=ip,
    )
    session.flush()
    return sent


def find_reset_token(session: Session, *, token: str, now: datetime) -> PasswordResetToken | None:
    """The unused, unexpired reset token for a link, or None (read only)."""
    if not token or len(token) > 200:
        return None
    row = session.exec(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == _digest(token))
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def reset_password(
    session: Session, *, token: str, password: str, now: datetime
) -> SubscriberAccount:
    """Set a new password through a reset link; the link and every other unused
    link of the account stop working.

    Locks the token row. Same password rules as registration. Audited
    without the token or the password.
    :raises ResetTokenInvalid: unknown, used or expired link, or a disabled account.
    :raises WeakPassword: the new password breaks the rules.
    """
    invalid = ResetTokenInvalid(
        N_("This password-reset link is invalid or has expired. Ask for a new one."),
        field="token",
    )
    if not token or len(token) > 200:
        raise invalid
    row = session.exec(
        select(PasswordResetToken)
        .where(PasswordResetToken.token_hash == _digest(token))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise invalid
    account = session.get(SubscriberAccount, row.account_id)
    if account is None or not account.is_active:
        raise invalid
    _check_password(password)
    account.password_hash = passwords.hash_password(password)
    session.add(account)
    session.execute(
        update(PasswordResetToken)
        .where(
            col(PasswordResetToken.account_id) == row.account_id,
            col(PasswordResetToken.used_at).is_(None),
        )
        .values(used_at=now)
    )
    session.flush()
    record_audit(
        session,
        actor=Actor("subscriber", account.id, account.email),
        action="subscriber.password_reset",
        now=now,
        target_type="subscriber_account",
        target_id=account.id,
    )
    return account
