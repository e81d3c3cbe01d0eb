"""API schemas of the money side: balances, the ledger, payments, refunds, vouchers.

Money is integers in minor units (`*_minor`, fen/cents) with `currency` beside
them, as Stripe does; times are ISO 8601 with an offset. Amounts are bounded by
`MAX_AMOUNT_MINOR` (10,000,000.00), the largest single amount the services
accept, so the schema says what the services refuse.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apiflask import Schema
from apiflask.fields import AwareDateTime, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import ValidationError

from app.core import limits
from app.core.money import MAX_AMOUNT_MINOR
from app.payments.models import PAYMENT_METHODS, PAYMENT_STATUSES, REFUND_STATUSES, VOUCHER_STATUSES
from app.payments.services import OFFLINE_METHODS
from app.payments.vouchers import MAX_BATCH
from app.web.api.schemas import NON_BLANK_TEXT, PLAIN_TEXT, PageQuery, StrictQuery, WholeNumber

AMOUNT = Range(min=1, max=MAX_AMOUNT_MINOR)
# Customer refs are at most 20 characters (customer.ref).
CUSTOMER_REF = [Length(min=1, max=20), PLAIN_TEXT]
# Idempotency keys are opaque tokens of visible ASCII (no spaces), as Stripe's are.
IDEMPOTENCY_KEY = Regexp(r"^[!-~]{1,190}$", error="1 to 190 visible ASCII characters")
# Voucher serials are printed as `V` + digits; spaces and dashes are ignored.
SERIAL = [Length(min=1, max=40), Regexp(r"^[A-Za-z0-9 -]+$", error="letters, digits, - or space")]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _reasonable_time(value: datetime) -> None:
    # Far-off years overflow when converted to UTC; no voucher lives that long.
    if not EARLIEST <= value < LATEST:
        raise ValidationError("must be between the years 2000 and 8999")


def _not_zero(value: int) -> None:
    if value == 0:
        raise ValidationError("must not be zero")


# -- balance and ledger -------------------------------------------------------------------


class BalanceOut(Schema):
    customer_ref = String(required=True)
    balance_minor = WholeNumber(required=True)
    cap_minor = WholeNumber(
        required=True, metadata={"description": "The most the customer may hold prepaid now."}
    )
    headroom_minor = WholeNumber(
        required=True, metadata={"description": "The largest credit the balance can take now."}
    )
    currency = String(required=True)


class LedgerRow(Schema):
    entry_id = WholeNumber(required=True)
    at = DateTime(required=True)
    kind = String(required=True)
    memo = String(required=True)
    external_ref = String(allow_none=True)
    actor_label = String(required=True)
    amount_minor = WholeNumber(required=True)
    balance_minor = WholeNumber(
        required=True, metadata={"description": "The running balance after this posting."}
    )


class LedgerPage(Schema):
    customer_ref = String(required=True)
    currency = String(required=True)
    items = List(Nested(LedgerRow), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class AdjustmentIn(Schema):
    amount_minor = WholeNumber(
        required=True,
        validate=[Range(min=-MAX_AMOUNT_MINOR, max=MAX_AMOUNT_MINOR), _not_zero],
        # JSON Schema can say "not zero"; marshmallow's validators cannot, so it is spelt out.
        metadata={"not": {"const": 0}, "description": "Signed: a credit (+) or a debit (−)."},
    )
    reason = String(required=True, validate=[Length(min=1, max=500), NON_BLANK_TEXT])
    idempotency_key = String(
        required=True,
        validate=IDEMPOTENCY_KEY,
        metadata={
            "description": "Your key for this adjustment. The same key, amount and reason "
            "again returns the first entry (201) and changes nothing; the same key with "
            "another amount or reason is a 409."
        },
    )


class EntryOut(Schema):
    customer_ref = String(required=True)
    entry_id = WholeNumber(required=True)
    kind = String(required=True)
    at = DateTime(required=True)
    amount_minor = WholeNumber(
        required=True, metadata={"description": "What the entry moved on the balance."}
    )
    balance_minor = WholeNumber(
        required=True, metadata={"description": "The customer's balance now."}
    )
    currency = String(required=True)


# -- payments -----------------------------------------------------------------------------


class PaymentIn(Schema):
    method = String(required=True, validate=OneOf(OFFLINE_METHODS))
    amount_minor = WholeNumber(required=True, validate=AMOUNT)
    reference = String(
        required=True,
        validate=[Length(min=1, max=limits.REFERENCE), NON_BLANK_TEXT],
        metadata={
            "description": "The receipt or bank reference; the same method and reference "
            "again returns the first payment."
        },
    )
    memo = String(load_default="", validate=[Length(max=limits.MEMO), PLAIN_TEXT])


class PaymentOut(Schema):
    id = WholeNumber(required=True)
    customer_ref = String(required=True)
    method = String(required=True, validate=OneOf(PAYMENT_METHODS))
    purpose = String(required=True)
    status = String(required=True, validate=OneOf(PAYMENT_STATUSES))
    amount_minor = WholeNumber(required=True)
    credited_minor = WholeNumber(required=True)
    currency = String(required=True)
    reference = String(allow_none=True)
    memo = String(required=True)
    journal_entry_id = WholeNumber(allow_none=True)
    created_by = String(required=True)
    created_at = DateTime(required=True)
    completed_at = DateTime(allow_none=True)


class PaymentListItem(PaymentOut):
    """A payment inside a list."""


class PaymentPage(Schema):
    items = List(Nested(PaymentListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class PaymentQuery(PageQuery):
    customer = String(validate=CUSTOMER_REF, metadata={"description": "A customer ref."})
    status = String(validate=OneOf(PAYMENT_STATUSES))
    method = String(validate=OneOf(PAYMENT_METHODS))


# -- refunds ------------------------------------------------------------------------------


class RefundOut(Schema):
    id = WholeNumber(required=True)
    customer_ref = String(required=True)
    payment_id = WholeNumber(allow_none=True)
    reason = String(required=True)
    status = String(required=True, validate=OneOf(REFUND_STATUSES))
    amount_minor = WholeNumber(required=True)
    currency = String(required=True)
    attempts = WholeNumber(required=True)
    stripe_refund_id = String(allow_none=True)
    last_error = String(required=True)
    note = String(required=True)
    created_by = String(required=True)
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)
    completed_at = DateTime(allow_none=True)


class RefundListItem(RefundOut):
    """A refund inside a list."""


class RefundList(Schema):
    items = List(Nested(RefundListItem), required=True)


class RefundPage(RefundList):
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class RefundQuery(PageQuery):
    customer = String(validate=CUSTOMER_REF, metadata={"description": "A customer ref."})
    status = String(validate=OneOf(REFUND_STATUSES))


class RefundIn(Schema):
    amount_minor = WholeNumber(required=True, validate=AMOUNT)
    note = String(required=True, validate=[Length(min=1, max=500), NON_BLANK_TEXT])
    idempotency_key = String(
        validate=IDEMPOTENCY_KEY,
        metadata={
            "description": "Optional, recommended: your key for this request. The same key "
            "and amount again returns the first request's refunds and refunds nothing more; "
            "the same key with another amount is a 409."
        },
    )


class PaidOfflineIn(Schema):
    note = String(required=True, validate=[Length(min=1, max=500), NON_BLANK_TEXT])


# -- vouchers -----------------------------------------------------------------------------


class BatchOut(Schema):
    id = WholeNumber(required=True)
    name = String(required=True)
    value_minor = WholeNumber(required=True)
    currency = String(required=True)
    count = WholeNumber(required=True)
    expires_at = DateTime(required=True)
    created_by = String(required=True)
    created_at = DateTime(required=True)
    counts = Dict(
        keys=String(validate=OneOf(VOUCHER_STATUSES)),
        values=WholeNumber(),
        required=True,
        metadata={"description": "How many of the batch's vouchers are in each status."},
    )


class BatchListItem(BatchOut):
    """A batch inside a list."""


class BatchList(Schema):
    items = List(Nested(BatchListItem), required=True)


class BatchIn(Schema):
    name = String(required=True, validate=[Length(min=1, max=limits.LABEL), NON_BLANK_TEXT])
    value_minor = WholeNumber(required=True, validate=AMOUNT)
    count = WholeNumber(required=True, validate=Range(min=1, max=MAX_BATCH))
    expires_at = AwareDateTime(
        required=True,
        validate=_reasonable_time,
        metadata={"description": "With an offset; must be in the future."},
    )


class PrintedVoucher(Schema):
    serial = String(required=True)
    pin = String(required=True)


class BatchCreated(BatchOut):
    vouchers = List(
        Nested(PrintedVoucher),
        required=True,
        metadata={"description": "Every serial with its PIN. Shown only in this response."},
    )


class VoucherOut(Schema):
    serial = String(required=True)
    batch_id = WholeNumber(required=True)
    status = String(required=True, validate=OneOf(VOUCHER_STATUSES))
    redeemed_by_customer_ref = String(allow_none=True)
    redeemed_at = DateTime(allow_none=True)


class VoucherListItem(VoucherOut):
    """A voucher inside a batch."""


class BatchDetail(BatchOut):
    vouchers = List(Nested(VoucherListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class BatchQuery(StrictQuery):
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=200, validate=Range(min=1, max=1000))


class RedemptionIn(Schema):
    serial = String(required=True, validate=SERIAL)
    pin = String(
        required=True,
        load_only=True,
        validate=[Length(min=1, max=40), PLAIN_TEXT],
        metadata={"description": "The 16 digits under the scratch panel (spaces allowed)."},
    )


class RedemptionOut(EntryOut):
    serial = String(required=True)
