"""API schemas of store orders (DESIGN §10, §14)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, List, Nested, String
from apiflask.validators import Length, OneOf

from app.core import limits
from app.payments.services import OFFLINE_METHODS
from app.subscribers.models import LINE_STATUSES, ORDER_PAYMENT_METHODS, ORDER_STATUSES
from app.web.api.payments_schemas import CUSTOMER_REF
from app.web.api.schemas import NON_BLANK_TEXT, PageQuery, WholeNumber
from numbering.models import SIM_KINDS


class OrderOut(Schema):
    ref = String(required=True)
    customer_ref = String(required=True)
    plan = String(required=True)
    msisdn = String(required=True)
    sim_kind = String(required=True, validate=OneOf(SIM_KINDS))
    status = String(required=True, validate=OneOf(ORDER_STATUSES))
    payment_method = String(allow_none=True, validate=OneOf(ORDER_PAYMENT_METHODS))
    price_minor = WholeNumber(required=True)
    surcharge_minor = WholeNumber(required=True)
    total_minor = WholeNumber(required=True)
    shortfall_minor = WholeNumber(
        required=True,
        metadata={"description": "What the customer's balance still lacks (0 when covered)."},
    )
    currency = String(required=True)
    line_status = String(allow_none=True, validate=OneOf(LINE_STATUSES))
    hold_until = DateTime(required=True)
    created_at = DateTime(required=True)
    paid_at = DateTime(allow_none=True)


class OrderListItem(OrderOut):
    """An order inside a list."""


class OrderPage(Schema):
    items = List(Nested(OrderListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class OrderQuery(PageQuery):
    status = String(validate=OneOf(ORDER_STATUSES))
    customer = String(validate=CUSTOMER_REF, metadata={"description": "A customer ref."})


class StorePaymentIn(Schema):
    method = String(required=True, validate=OneOf(OFFLINE_METHODS))
    reference = String(
        required=True,
        validate=[Length(min=1, max=limits.REFERENCE), NON_BLANK_TEXT],
        metadata={
            "description": "The receipt or bank reference of the money taken at the store; "
            "the same method and reference again returns the first payment."
        },
    )
