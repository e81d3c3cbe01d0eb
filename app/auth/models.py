from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from app.auth.permissions import ROLE_LABELS, ROLES
from app.core.db import UTCDateTime

_ROLE_LIST = ", ".join(f"'{r}'" for r in ROLES)


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "role": ROLE_LABELS,
}


class StaffUser(SQLModel, table=True):
    """A person who works in the console. Never a subscriber."""

    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint(f"role IN ({_ROLE_LIST})", name="role_known"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=255)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SubscriberAccount(SQLModel, table=True):
    """A subscriber's self-care login (e-mail + password).

    Real-name customer records and lines hang off this account in later
    capabilities; the login itself holds no personal data beyond e-mail.
    """

    __tablename__ = "subscriber_account"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    display_name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=255)
    locale: str = Field(default="zh_Hans", max_length=10)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginAttempt(SQLModel, table=True):
    """Every login try, for lockout, rate limiting and the security trail."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        CheckConstraint("scope IN ('staff', 'subscriber')", name="scope_known"),
        Index("ix_login_attempt_scope_email_at", "scope", "email", "at"),
        Index("ix_login_attempt_ip_at", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=20)
    email: str = Field(max_length=254)
    ip: str = Field(default="", max_length=64)
    success: bool
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ApiKey(SQLModel, table=True):
    """A key for integrations: stored as a SHA-256 digest, shown once, scoped to a role."""

    __tablename__ = "api_key"
    __table_args__ = (CheckConstraint(f"role IN ({_ROLE_LIST})", name="role_known"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    role: str = Field(max_length=20)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PasswordResetToken(SQLModel, table=True):
    """A single-use, expiring password-reset link sent by e-mail.

    Only the SHA-256 digest of the token is stored, like API keys.
    """

    __tablename__ = "password_reset_token"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="subscriber_account.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
