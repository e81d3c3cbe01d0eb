"""API keys for integrations: created once in clear, stored as a digest, revocable.

The secret is shown once at creation; only its SHA-256 is stored, and a
presented key is compared in constant time. A revoked or expired key
authenticates nothing.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.auth import passwords
from app.auth.errors import (
    ApiKeyNotFound,
)
from app.auth.models import (
    ApiKey,
)
from app.auth.services import check_role
from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.errors import N_, clean_text

API_KEY_PREFIX = "mvno"


def create_api_key(
    session: Session, *, name: str, role: str, actor: Actor, now: datetime
) -> tuple[ApiKey, str]:
    """Create a key and return it with its token — the only time the token exists in clear.

    Tokens look like `mvno_<prefix>_<secret>`; only the SHA-256 of the whole
    token is stored (the secret has 256 bits, so a slow hash adds nothing).
    """
    name = clean_text(name, field="name", max_length=limits.LABEL, required=True)
    check_role(role)
    # 64 bits: the prefix is UNIQUE and looked up first, so keys must not collide
    # (32 bits did, once in a few thousand keys made by the API fuzzing test).
    prefix = secrets.token_hex(8)
    token = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=passwords.secret_digest(token),
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
    """Every API key (digests and prefixes only), newest first."""
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
    if not hmac.compare_digest(key.key_hash, passwords.secret_digest(token)):
        return None
    # Touch at most once a minute: a busy integration should not write on every call.
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
        session.add(key)
        session.flush()
    return key
