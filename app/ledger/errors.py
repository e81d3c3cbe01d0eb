"""Ledger refusals (DESIGN §5)."""

from __future__ import annotations

from app.core.errors import Conflict


class IdempotencyConflict(Conflict):
    """The idempotency key was used before for a different entry."""

    code = "idempotency_conflict"


class CapExceeded(Conflict):
    """A credit would take a prepaid balance above its cap."""

    code = "prepay_cap_exceeded"


class InsufficientBalance(Conflict):
    """A debit would take a prepaid balance below zero."""

    code = "insufficient_balance"
