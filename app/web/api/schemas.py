"""What the JSON API's schemas share: whole numbers and JSON booleans, plain-text
checks, bounds of money and counts, strict queries and paging.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, Integer
from apiflask.validators import Range, Regexp


class WholeNumber(Integer):
    """A JSON integer: 620 or 620.0, never 620.5, "620" or true (JSON Schema's `integer`)."""

    default_error_messages = {"invalid": "Not a whole number."}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return int(value)


class JsonBool(Boolean):
    """A JSON boolean: true or false only (not 0, 1 or "yes")."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        # `0 in {False}` is true in Python, so the type itself is checked.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# Free text without control characters (app.core.errors.clean_text refuses them).
_PLAIN = r"[^\x00-\x1f\x7f-\x9f]"


PLAIN_TEXT = Regexp(f"^{_PLAIN}*$", error="must not contain control characters")


NON_BLANK_TEXT = Regexp(
    rf"^{_PLAIN}*[^\x00-\x20\x7f-\x9f]{_PLAIN}*$",
    error="must contain a visible character and no control characters",
)


# Bounds of the integer columns behind these fields (PostgreSQL `integer`).
MAX_INT = 2**31 - 1


MONEY = Range(min=0, max=MAX_INT)


COUNT = Range(min=0, max=MAX_INT)


class StrictQuery(Schema):
    """Query parameters; views load them with unknown=RAISE so a misspelt filter is refused."""


class PageQuery(StrictQuery):
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))
