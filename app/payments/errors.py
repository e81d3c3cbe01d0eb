"""Voucher refusals."""

from __future__ import annotations

from app.core.errors import Conflict, DomainError, NotFound


class VoucherInvalid(DomainError):
    """Unknown serial or wrong PIN — deliberately indistinguishable."""

    code = "voucher_invalid"
    http_status = 422
    keeps_transaction = True  # the failed attempt counts towards the lockout


class VoucherLocked(DomainError):
    """Too many failed redemptions for this customer or address."""

    code = "voucher_locked"
    http_status = 429


class VoucherExpired(Conflict):
    code = "voucher_expired"


class VoucherAlreadyRedeemed(Conflict):
    code = "voucher_redeemed"


class VoucherVoid(Conflict):
    code = "voucher_void"


class VoucherNotFound(NotFound):
    code = "voucher_not_found"


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class RefundNotFound(NotFound):
    code = "refund_not_found"


class PaymentConflict(Conflict):
    """The same reference was recorded before with other details."""

    code = "payment_conflict"


class RefundStateError(Conflict):
    code = "refund_state"


class StripeNotConfigured(DomainError):
    code = "stripe_not_configured"
    http_status = 503


class PaymentProviderError(DomainError):
    """Stripe could not be reached or refused the call; nothing was taken."""

    code = "payment_provider_error"
    http_status = 502


class WebhookInvalid(DomainError):
    code = "webhook_invalid"
    http_status = 400
