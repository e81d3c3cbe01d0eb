"""Refusals of the numbering package: numbers, blocks, golden tiers, SIM imports."""

from __future__ import annotations

from typing import Any

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.fileimport import Reject


class NumberNotFound(NotFound):
    code = "number_not_found"


class NumberUnavailable(Conflict):
    code = "number_unavailable"


class BlockInvalid(InvalidInput):
    code = "block_invalid"


class BlockOverlap(Conflict):
    code = "block_overlap"


class HostNotFound(NotFound):
    code = "host_not_found"


class TierNotFound(NotFound):
    code = "tier_not_found"


class SimNotFound(NotFound):
    code = "sim_not_found"


class SimUnavailable(Conflict):
    """The SIM cannot be given to a line: another host's, or not in stock."""

    code = "sim_unavailable"


class SimImportRejected(InvalidInput):
    """A SIM file with at least one bad row: nothing was imported; `rejects` says why."""

    code = "sim_import_rejected"

    def __init__(
        self, message: str, *, rejects: list[Reject], field: str | None = None, **params: Any
    ):
        super().__init__(message, field=field, **params)
        self.rejects = rejects

    def details(self) -> dict[str, Any]:
        return {
            "rejects": [
                {"line": reject.line, "raw": reject.raw, "reason": reject.reason}
                for reject in self.rejects
            ]
        }
