"""Domain errors: one type, one handler for HTML, JSON and the command line.

A `DomainError` is a refusal the user can act on — bad input, a rule that
forbids the action, something that does not exist. Each package subclasses
it with a class-level `code` (stable, machine-readable) and `http_status`.
The web layer renders it as a page or as `{"error": {"code", "message",
"field"}}`; the CLI prints the message on one line of stderr and exits 1.
Anything else that escapes is a bug and is logged, never shown.
"""

from __future__ import annotations

from typing import Any, ClassVar


def N_(message: str) -> str:
    """Mark a message for extraction into the catalogs; it is translated where shown.

    Messages are templates with named placeholders (``%(limit)s``) whose
    values travel in the error's `params`, so the web layer can translate
    the template first and fill it in after.
    """
    return message


class DomainError(Exception):
    code: ClassVar[str] = "invalid"
    http_status: ClassVar[int] = 400
    # A refusal normally undoes the whole unit of work. A few must keep what
    # was written before the raise (a failed voucher PIN is recorded so the
    # lockout can count it); the web and CLI boundaries then commit.
    keeps_transaction: ClassVar[bool] = False

    def __init__(self, message: str, *, field: str | None = None, **params: Any):
        self.template = message
        self.params = params
        self.message = message % params if params else message
        super().__init__(self.message)
        self.field = field

    def details(self) -> dict[str, Any] | None:
        """Structured detail for API clients (e.g. the rejected rows of a file)."""
        return None

    def to_dict(self) -> dict[str, dict[str, Any]]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details() is not None:
            error["details"] = self.details()
        return {"error": error}


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 422


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403


class ConfigError(DomainError):
    code = "config"
    http_status = 500


def clean_text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    """Trim a free-text value and refuse control characters and over-long input.

    PostgreSQL cannot store NUL at all, and other control characters in a
    name only ever come from a broken client or an attack.
    """
    # Only ASCII spaces are trimmed, so this agrees exactly with the API's
    # documented patterns (app/web/api/schemas.py).
    text = (value or "").strip(" ")
    if required and not text:
        raise InvalidInput(N_("%(name)s is required."), field=field, name=field)
    if len(text) > max_length:
        raise InvalidInput(
            N_("%(name)s must be at most %(max)s characters."),
            field=field,
            name=field,
            max=max_length,
        )
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
        raise InvalidInput(
            N_("%(name)s must not contain control characters."), field=field, name=field
        )
    return text
