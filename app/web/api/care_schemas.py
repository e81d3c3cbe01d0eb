"""API schemas of care: customer search and view, real-name details, line changes,
SIM swaps and a host's provisioning secret."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from app.subscribers.models import ID_TYPES, LINE_STATUSES
from app.web.api.lines_schemas import LineActionIn, LineOut
from app.web.api.schemas import NON_BLANK_TEXT, PLAIN_TEXT, JsonBool, WholeNumber
from app.web.api.supply_schemas import StrictQuery
from numbering.models import SIM_KINDS, SIM_STATUSES
from plans.terms import PLAN_CODE_RE


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
    name = String(required=True, validate=[Length(min=1, max=200), NON_BLANK_TEXT])
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


class ChangePlanIn(LineActionIn):
    plan = String(
        required=True,
        validate=Regexp(f"^{PLAN_CODE_RE.pattern}$"),
        metadata={
            "description": "Code of a published plan of the line's host; the line's own plan "
            "cancels a pending change."
        },
    )


class SwapSimIn(LineActionIn):
    iccid = String(required=True, validate=Regexp(r"^[0-9]{19,20}$"))
    lost = JsonBool(
        load_default=False,
        metadata={"description": "The old SIM was lost or stolen: block it instead of scrapping."},
    )


class SwapSimOut(LineOut):
    iccid = String(required=True)
    imsi = String(required=True)
    sim_kind = String(required=True, validate=OneOf(SIM_KINDS))
    sim_status = String(required=True, validate=OneOf(SIM_STATUSES))
    lpa = String(allow_none=True, metadata={"description": "An eSIM's activation code."})


class SecretIn(Schema):
    secret = String(
        required=True,
        allow_none=True,
        validate=Regexp(r"^[!-~]{16,200}$"),
        load_only=True,
        metadata={"description": "16 to 200 printable ASCII characters; null clears it."},
    )


class SecretOut(Schema):
    code = String(required=True)
    secret_set = Boolean(required=True)
    secret_last4 = String(allow_none=True)
