"""Refusals of the wholesale services (DESIGN §7)."""

from collections.abc import Sequence
from typing import Any

from app.core.errors import N_, Conflict, InvalidInput, NotFound
from app.core.fileimport import Reject


class HostNotFound(NotFound):
    code = "host_not_found"


class HostCodeTaken(Conflict):
    code = "host_code_taken"


class RateCardConflict(Conflict):
    code = "rate_card_conflict"


class NoRateCard(Conflict):
    """A day to be settled has no rate card in force: the host's cards start later."""

    code = "no_rate_card"


class SettlementRunNotFound(NotFound):
    code = "settlement_run_not_found"


class DisputeNotFound(NotFound):
    code = "dispute_not_found"


class DisputeResolved(Conflict):
    """The dispute was resolved already (by staff, or superseded by a later reconciliation)."""

    code = "dispute_resolved"


class InvoiceRejected(InvalidInput):
    """A host's invoice file that cannot be reconciled; nothing of it is used.

    `rejects` holds every bad line (or the one file-wide problem), in file
    order; the message names the first.
    """

    code = "invoice_rejected"

    def __init__(self, rejects: Sequence[Reject]):
        first = rejects[0]
        if len(rejects) == 1:
            super().__init__(
                N_("The invoice was refused: line %(line)s, %(reason)s."),
                line=first.line,
                reason=first.reason,
            )
        else:
            super().__init__(
                N_("The invoice was refused: line %(line)s, %(reason)s; and %(more)s more lines."),
                line=first.line,
                reason=first.reason,
                more=len(rejects) - 1,
            )
        self.rejects = tuple(rejects)

    def details(self) -> dict[str, Any]:
        return {
            "rejects": [
                {"line": r.line, "raw": r.raw, "reason": r.reason, "field": r.field}
                for r in self.rejects
            ]
        }
