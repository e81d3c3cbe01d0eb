"""API schemas of a line's actions: status changes, plan change, SIM swap, add-on
purchases and the auto-renew switch.
"""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, List, String
from apiflask.validators import Length, OneOf, Regexp

from app.subscribers.models import LINE_STATUSES
from app.web.api.schemas import NON_BLANK_TEXT, JsonBool, WholeNumber
from numbering.models import SIM_KINDS, SIM_STATUSES
from plans.terms import PLAN_CODE_RE


class LineActionIn(Schema):
    reason = String(required=True, validate=[Length(min=1, max=500), NON_BLANK_TEXT])


class LineOut(Schema):
    msisdn = String(required=True)
    customer_ref = String(required=True)
    plan = String(required=True)
    next_plan = String(allow_none=True)
    status = String(required=True, validate=OneOf(LINE_STATUSES))
    status_changed_at = DateTime(required=True)


class LineEndedOut(LineOut):
    refund_minor = WholeNumber(
        required=True,
        metadata={
            "description": "What ending the line refunded (minor units): the unused plan value, "
            "and the balance with the customer's last line, arrears paid first. A repeat pays "
            "nothing more and answers the first call's refund."
        },
    )
    currency = String(required=True)
    refund_ids = List(
        WholeNumber(),
        required=True,
        metadata={"description": "The refunds queued: card payments newest first, then by hand."},
    )


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


ADDON_KEY = Regexp(r"^[\x21-\x7e]{1,64}$", error="1 to 64 printable ASCII characters, no spaces")


class AddOnBuyIn(Schema):
    addon = String(
        required=True,
        validate=[Length(min=1, max=40), Regexp(f"^{PLAN_CODE_RE.pattern}$")],
        metadata={"description": "The code of a published add-on."},
    )
    idempotency_key = String(
        required=True,
        validate=ADDON_KEY,
        metadata={
            "description": "Your key for this purchase: the same key for the same line again "
            "returns the first purchase and charges nothing."
        },
    )


class AddOnBoughtOut(Schema):
    id = WholeNumber(required=True)
    msisdn = String(required=True)
    addon = String(required=True)
    data_kb = WholeNumber(required=True)
    price_minor = WholeNumber(required=True)
    currency = String(required=True)
    entry_id = WholeNumber(required=True)
    period_start = DateTime(required=True)
    period_end = DateTime(required=True)
    period_data_kb = WholeNumber(required=True)
    period_data_kb_left = WholeNumber(required=True)
    balance = WholeNumber(required=True)
    created_at = DateTime(required=True)


class AutoRenewIn(Schema):
    auto_renew = JsonBool(required=True)


class AutoRenewOut(Schema):
    msisdn = String(required=True)
    status = String(required=True, validate=OneOf(LINE_STATUSES))
    auto_renew = JsonBool(required=True)
