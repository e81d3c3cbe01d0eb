"""Password resets of store logins: single-use links by e-mail, throttled per address and login.

Only the SHA-256 of a reset token is stored; the link itself travels in the
`PasswordResetRequested` event to the notice its handler writes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from app.auth import passwords
from app.auth.errors import (
    ResetRequestsThrottled,
    ResetTokenInvalid,
)
from app.auth.events import PasswordResetRequested
from app.auth.models import (
    PasswordResetToken,
    SubscriberAccount,
)
from app.core.audit import Actor, count_recent, record_audit
from app.core.errors import N_
from app.core.events import emit


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
                    token_hash=passwords.secret_digest(token),
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
        select(PasswordResetToken).where(
            PasswordResetToken.token_hash == passwords.secret_digest(token)
        )
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
        .where(PasswordResetToken.token_hash == passwords.secret_digest(token))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise invalid
    account = session.get(SubscriberAccount, row.account_id)
    if account is None or not account.is_active:
        raise invalid
    passwords.check_strength(password)
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
