"""API schemas of customers: search and view, real-name details and the ID reveal."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.core import limits
from app.subscribers.models import ID_TYPES, LINE_STATUSES
from app.web.api.schemas import NON_BLANK_TEXT, PLAIN_TEXT, StrictQuery, WholeNumber
from numbering.models import SIM_KINDS


class CustomerQuery(StrictQuery):
    q = String(
        load_default="",
        validate=[Length(max=254), PLAIN_TEXT],
        metadata={
            "description": "Customer ref (C-…), e-mail, name, or digits of a phone number or "
            "SIM ICCID; empty lists the newest customers."
        },
    )
    limit = Integer(load_default=50, validate=Range(min=1, max=200))


class Remaining(Schema):
    data_kb = WholeNumber(required=True)
    voice_s = WholeNumber(required=True)
    sms = WholeNumber(required=True)


class CustomerLine(Schema):
    msisdn = String(required=True)
    status = String(required=True, validate=OneOf(LINE_STATUSES))
    plan = String(required=True)
    next_plan = String(allow_none=True)
    iccid = String(allow_none=True)
    sim_kind = String(allow_none=True, validate=OneOf(SIM_KINDS))
    period_start = DateTime(allow_none=True)
    period_end = DateTime(allow_none=True)
    remaining = Nested(Remaining, allow_none=True)


class CustomerOut(Schema):
    ref = String(required=True)
    name = String(required=True)
    email = String(allow_none=True)
    id_type = String(allow_none=True, validate=OneOf(ID_TYPES))
    id_number_masked = String(
        allow_none=True, metadata={"description": "The ID number masked; never the clear value."}
    )
    created_at = DateTime(required=True)
    lines = List(Nested(CustomerLine), required=True)


class CustomerListItem(CustomerOut):
    """A customer inside a list."""


class CustomerList(Schema):
    items = List(Nested(CustomerListItem), required=True)


class IdentityIn(Schema):
    name = String(required=True, validate=[Length(min=1, max=limits.PERSON_NAME), NON_BLANK_TEXT])
    id_type = String(required=True, validate=OneOf(ID_TYPES))
    id_number = String(
        required=True,
        validate=[Length(min=1, max=40), NON_BLANK_TEXT],
        load_only=True,
        metadata={"description": "Resident ID (checked, with its check digit) or passport."},
    )


class RevealIn(Schema):
    reason = String(required=True, validate=[Length(min=1, max=500), NON_BLANK_TEXT])


class RevealOut(Schema):
    customer_ref = String(required=True)
    id_type = String(required=True, validate=OneOf(ID_TYPES))
    id_number = String(required=True, metadata={"description": "The clear ID number."})
