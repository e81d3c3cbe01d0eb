"""Customer and line refusals."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class LineNotFound(NotFound):
    code = "line_not_found"


class CustomerRefTaken(Conflict):
    code = "customer_ref_taken"


class MsisdnTaken(Conflict):
    code = "msisdn_taken"


class LineStateError(Conflict):
    """The line's status does not allow this change (DESIGN §10)."""

    code = "line_state"
