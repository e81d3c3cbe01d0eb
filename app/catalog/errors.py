"""Refusals of the catalog loader: a file with problems, or a file refused as a whole."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.errors import N_, InvalidInput


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
