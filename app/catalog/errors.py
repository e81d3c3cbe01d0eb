"""Refusals of the catalog loader: a file with problems, or a file refused as a whole."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.errors import N_, Conflict, InvalidInput


@dataclass(frozen=True)
class Problem:
    """Why one row of a catalog file cannot be loaded."""

    file: str
    table: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.table}] {self.key}: {self.reason}"


class CatalogInvalid(InvalidInput):
    """A catalog file with at least one problem: nothing was loaded; `problems` says why."""

    code = "catalog_invalid"

    def __init__(self, *, filename: str, problems: Sequence[Problem]):
        super().__init__(
            N_("%(count)s problem(s) in %(file)s; nothing loaded"),
            count=len(problems),
            file=filename,
        )
        self.problems: tuple[Problem, ...] = tuple(problems)

    def details(self) -> dict[str, Any] | None:
        return {"problems": [dataclasses.asdict(problem) for problem in self.problems]}


class CatalogRefused(InvalidInput):
    """A catalog file refused as a whole, before any row is loaded; the message says why.

    For what no row can be blamed for: a file too large or too deeply nested
    to read, a file with nothing to load, a host whose currency would change.
    Like the problems' reasons, the messages speak of the file's own keys and
    are not translated.
    """

    code = "catalog_refused"

    def __init__(self, message: str, *, filename: str, **params: Any):
        super().__init__("%(file)s: " + message + "; nothing loaded", file=filename, **params)


class HostCurrencyChange(Conflict):
    """A row would give an existing host another currency than the one its money is held in."""

    code = "host_currency_change"


def currency_change_reason(code: str, *, stored: str, given: str, defaulted: bool) -> str:
    """Why host `code`, stored in `stored`, cannot take the currency `given` by a file."""
    default = " (the default when currency is not given)" if defaulted else ""
    return (
        f"host {code} is in {stored} and the file gives {given}{default}; "
        f"its prices and balances are held in {stored}, so its currency cannot change"
    )
