"""Personal data at rest (DESIGN §10, §14): encryption with PII_KEY, masking.

Real-name ID numbers are stored only as Fernet tokens (AES-128-CBC with an
HMAC-SHA256, from the `cryptography` library) under `PII_KEY`. PII_KEY may
list several keys, comma-separated, newest first: values are encrypted with
the first and decrypted with any, so a key can be rotated without a
flag day (`PiiCipher.rotate` re-encrypts a value under the newest key).

Pages, logs and audit records show only `mask_id_number`'s form
(`1101**********0017`); the clear value is returned only by
`PiiCipher.decrypt`, which callers use for an audited reveal, the exit
handover file and nothing else.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.core.errors import ConfigError


class PiiCipher:
    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in (keys or "").split(",") if k.strip()]
        if not parts:
            raise ConfigError("PII_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in parts])
        except (ValueError, UnicodeEncodeError):
            raise ConfigError(
                "PII_KEY must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated"
            ) from None

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """:raises ConfigError: the value was encrypted under a key PII_KEY no longer lists."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ConfigError("a personal-data value cannot be decrypted with PII_KEY") from None

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")


def mask_id_number(value: str) -> str:
    """`110105194912310022` → `1101**********0022`; short numbers keep less.

    Values of 12 characters or more keep their first and last four;
    shorter ones (passports, `E12345678`) keep the first and the last two.
    """
    value = value.strip()
    if len(value) >= 12:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    if len(value) >= 4:
        return value[:1] + "*" * (len(value) - 3) + value[-2:]
    return "*" * len(value)


def mask_name(value: str) -> str:
    """`张伟` → `张*`, `Li Na` → `L* N*`: enough for staff to recognise a caller."""
    words = value.split()
    if len(words) > 1:
        return " ".join(w[:1] + "*" * max(len(w) - 1, 1) for w in words)
    return value[:1] + "*" * max(len(value) - 1, 1) if value else ""
