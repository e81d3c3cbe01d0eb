"""Customer and line refusals."""

from __future__ import annotations

from app.core.errors import Conflict, DomainError, NotFound


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


class OrderNotFound(NotFound):
    code = "order_not_found"


class OrderStateError(Conflict):
    """The order's status does not allow this (paid, cancelled or expired)."""

    code = "order_state"


class OrderNotPayable(OrderStateError):
    """The order takes no payment any more (paid, cancelled or expired).

    Paying first expires an order whose hold ran out; the refusal keeps that
    expiry, so the boundary commits it.
    """

    keeps_transaction = True


class OrderUnpaid(Conflict):
    """The prepaid balance does not cover the order's total yet."""

    code = "order_unpaid"


class NoSimStock(Conflict):
    """No SIM of the wanted kind is in stock on the plan's host."""

    code = "no_sim_stock"


class IdentityMissing(Conflict):
    """An order needs the buyer's real-name details first."""

    code = "identity_missing"


class HoldsThrottled(DomainError):
    """Too many numbers held from one address within the hour."""

    code = "holds_throttled"
    http_status = 429
