"""What every table's checks share: the problems found so far and the generic checks.

A `Checker` collects every problem of every row rather than stopping at the
first, so one run over a file names everything that is wrong with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlmodel import Session

from app.catalog.errors import Problem
from app.core.errors import InvalidInput

_T = TypeVar("_T")


class Checker:
    """The state of one check of one file: its session, clock and problems found."""

    def __init__(self, session: Session, *, filename: str, now: datetime):
        self.session = session
        self.filename = filename
        self.now = now
        self.problems: list[Problem] = []
        # A rate card row with a problem might have been the one a plan needs:
        # margins are then not checked, rather than reported falsely.
        self.rate_cards_incomplete = False

    def problem(self, table: str, key: str, reason: str) -> None:
        """Record one problem of the row `key` of `table`."""
        self.problems.append(Problem(self.filename, table, key, reason))

    def table(self, document: dict[str, Any], table: str) -> list[tuple[int, dict[str, Any]]]:
        """The rows of `table`, numbered from 1; a problem when it is not an array of tables."""
        value = document.get(table, [])
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            self.problem(table, "", f"must be an array of tables, written [[{table}]]")
            return []
        return list(enumerate(value, start=1))

    def keys(
        self,
        table: str,
        key: str,
        row: dict[str, Any],
        *,
        allowed: Sequence[str],
        required: Sequence[str],
    ) -> bool:
        """Report unknown and missing keys; True when every required key is there."""
        for name in row:
            if name not in allowed:
                self.problem(table, key, f"unknown key {name!r}; known keys: {', '.join(allowed)}")
        missing = [name for name in required if name not in row]
        for name in missing:
            self.problem(table, key, f"missing key {name!r}")
        return not missing

    def host_ref(self, table: str, key: str, code: Any, known: set[str]) -> bool:
        """True when `code` names a known host; otherwise a problem and False."""
        if not isinstance(code, str) or code.strip() not in known:
            self.problem(
                table, key, f"unknown host {code!r}: not in this file's [[hosts]] nor the database"
            )
            return False
        return True

    def amount(
        self, table: str, key: str, name: str, value: Any, parse: Callable[[str], int]
    ) -> int | None:
        """A decimal string parsed by `parse`, or None after reporting why it cannot be."""
        if not isinstance(value, str):
            self.problem(table, key, f'{name} must be a decimal string in quotes, like "29.00"')
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.problem(table, key, f"{name}: {exc}")
            return None

    def every_problem(
        self,
        table: str,
        key: str,
        validate: Callable[[dict[str, Any]], _T],
        values: dict[str, Any],
        valid: dict[str, Any],
    ) -> _T | None:
        """Report every field a service's validator refuses, not just the first.

        The validators stop at the first bad field; each refused field is
        replaced by a valid stand-in from `valid` and the row checked again.
        Returns the cleaned values, or None when anything was refused.
        """
        values = dict(values)
        refused = False
        for _ in range(len(values) + 1):
            try:
                cleaned = validate(values)
            except InvalidInput as exc:
                refused = True
                self.problem(table, key, file_reason(exc))
                name = (exc.field or "").split(".")[0]
                if name not in valid or values.get(name) == valid[name]:
                    return None
                values[name] = valid[name]
            else:
                return None if refused else cleaned
        return None


def row_key(row: dict[str, Any], index: int) -> str:
    """How problems name a row: its code, else its position (#1, #2, …)."""
    code = row.get("code")
    return code.strip() if isinstance(code, str) and code.strip() else f"#{index}"


def as_date(value: Any) -> date | None:
    """A TOML date or an ISO date string as a date; None for anything else."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def file_reason(exc: InvalidInput) -> str:
    """A service's message, with the file's key names where they differ from the field's."""
    message = exc.message
    for field_name, file_key in (
        ("descriptions", "description"),
        ("names", "name"),
        ("price_minor", "price"),
        ("auto_renew_default", "auto_renew"),
    ):
        message = re.sub(rf"\b{field_name}\b", file_key, message)
    return re.sub(r"\b(overage_\w+)_minor\b", r"\1", message)
