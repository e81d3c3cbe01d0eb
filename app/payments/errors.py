"""Voucher refusals."""

from __future__ import annotations

from app.core.errors import Conflict, DomainError, NotFound


class VoucherInvalid(DomainError):
    """Unknown serial or wrong PIN — deliberately indistinguishable."""

    code = "voucher_invalid"
    http_status = 422


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
