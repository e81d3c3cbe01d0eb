"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile).

The suite switches to the cheapest profile (PASSWORD_HASH_PROFILE=cheap) so
hundreds of logins stay fast; hashes made with either verify with both,
and a login rehashes a hash made with weaker parameters.
"""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.auth.errors import WeakPassword
from app.core.errors import N_

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
# Verified against when the e-mail is unknown, so a miss costs the same time
# as a wrong password and does not reveal which accounts exist. Made on first
# use: a command that never checks a password does not pay for it.
_dummy_hash: str | None = None


def configure(profile: str) -> None:
    """Choose the argon2 parameters: `cheap` for tests, else RFC 9106 low-memory."""
    global _hasher, _dummy_hash
    params = profiles.CHEAPEST if profile == "cheap" else profiles.RFC_9106_LOW_MEMORY
    _hasher = PasswordHasher.from_parameters(params)
    _dummy_hash = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not-a-real-password")
    return _dummy_hash


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable (a message template), or None.

    The template may use %(min)s and %(max)s.
    """
    if len(password) < MIN_LENGTH:
        return N_("Password must be at least %(min)s characters.")
    if len(password) > MAX_LENGTH:
        return N_("Password must be at most %(max)s characters.")
    if not password.strip():
        return N_("Password must not be blank.")
    return None


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with the configured parameters."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a missing hash costs the same time and is False."""
    try:
        return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than the configured ones."""
    return _hasher.check_needs_rehash(password_hash)


def check_strength(password: str) -> None:
    """Refuse a password the rules of `password_problem` reject.

    :raises WeakPassword: naming the problem and the length limits.
    """
    problem = password_problem(password)
    if problem:
        raise WeakPassword(problem, field="password", min=MIN_LENGTH, max=MAX_LENGTH)


def secret_digest(secret: str) -> str:
    """The SHA-256 (hex) under which a reset token or an API key is stored instead of itself."""
    return hashlib.sha256(secret.encode()).hexdigest()
