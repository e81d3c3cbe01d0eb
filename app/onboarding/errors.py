"""Refusals of onboarding: the migration import's refused file."""

from __future__ import annotations

from typing import Any

from app.core.errors import InvalidInput
from app.core.fileimport import Reject


def reject_to_dict(reject: Reject) -> dict[str, Any]:
    """A refused row or warning of a subscribers file as the import's JSON shows it."""
    return {"row": reject.line, "field": reject.field, "reason": reject.reason}


class SubscriberImportRejected(InvalidInput):
    """A subscribers file with at least one bad row: nothing was imported.

    `rejects` holds every problem of every refused row (line, raw text,
    column, reason), `warnings` what the file would have been accepted with.
    """

    code = "subscriber_import_rejected"

    def __init__(
        self,
        message: str,
        *,
        rejects: list[Reject],
        warnings: list[Reject],
        field: str | None = None,
        **params: Any,
    ):
        super().__init__(message, field=field, **params)
        self.rejects = rejects
        self.warnings = warnings

    def details(self) -> dict[str, Any]:
        return {
            "rejected": [reject_to_dict(problem) for problem in self.rejects],
            "warnings": [reject_to_dict(problem) for problem in self.warnings],
        }
