"""API schemas of numbers and SIMs: number blocks, the search, golden tiers, SIM stock."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from app.web.api.schemas import PLAIN_TEXT, JsonBool, StrictQuery, WholeNumber
from numbering.golden import TIER_CODES
from numbering.models import NUMBER_STATUSES, SIM_KINDS, SIM_STATUSES
from numbering.tiers import MAX_SURCHARGE_MINOR


class BlockOut(Schema):
    id = WholeNumber(required=True)
    host = String(required=True)
    first = String(required=True)
    last = String(required=True)
    size = WholeNumber(required=True)
    received_at = DateTime(required=True)
    counts = Dict(keys=String(validate=OneOf(NUMBER_STATUSES)), values=WholeNumber(), required=True)


class BlockListItem(BlockOut):
    """A block inside a list."""


class BlockList(Schema):
    items = List(Nested(BlockListItem), required=True)


class BlockIn(Schema):
    host = String(required=True, validate=[Length(min=1, max=20), PLAIN_TEXT])
    first = String(required=True, validate=Regexp(r"^\+[1-9][0-9]{6,14}$"))
    last = String(required=True, validate=Regexp(r"^\+[1-9][0-9]{6,14}$"))


class NumberOut(Schema):
    msisdn = String(required=True)
    tier = String(allow_none=True)
    surcharge_minor = WholeNumber(required=True)
    status = String(required=True)


class NumberPageOut(Schema):
    items = List(Nested(NumberOut), required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)
    has_more = Boolean(required=True)


class NumberQuery(StrictQuery):
    pattern = String(load_default="", validate=Regexp(r"^[0-9]{0,11}$"))
    mode = String(load_default="ends_with", validate=OneOf(["ends_with", "contains"]))
    tier = String(validate=OneOf(TIER_CODES))
    page = Integer(load_default=1, validate=Range(min=1, max=100_000))
    per_page = Integer(load_default=20, validate=Range(min=1, max=100))


class TierOut(Schema):
    code = String(required=True)
    surcharge_minor = WholeNumber(required=True)
    enabled = Boolean(required=True)


class TierListItem(TierOut):
    """A tier inside a list."""


class TierList(Schema):
    items = List(Nested(TierListItem), required=True)


class TierIn(Schema):
    surcharge_minor = WholeNumber(required=True, validate=Range(min=0, max=MAX_SURCHARGE_MINOR))
    enabled = JsonBool(load_default=True)


class SimOut(Schema):
    iccid = String(required=True)
    imsi = String(required=True)
    kind = String(required=True)
    status = String(required=True)
    created_at = DateTime(required=True)


class SimPage(Schema):
    items = List(Nested(SimOut), required=True)
    total = WholeNumber(required=True)
    counts = Dict(keys=String(), values=WholeNumber(), required=True)


class SimQuery(StrictQuery):
    status = String(validate=OneOf(SIM_STATUSES))
    kind = String(validate=OneOf(SIM_KINDS))
    page = Integer(load_default=1, validate=Range(min=1, max=100_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))


class SimImportIn(Schema):
    host = String(required=True, validate=[Length(min=1, max=20), PLAIN_TEXT])
    filename = String(load_default="api.csv", validate=[Length(max=200), PLAIN_TEXT])
    csv = String(
        required=True,
        validate=Length(min=1, max=20_000_000),
        metadata={"description": "The file's text: header iccid,imsi,kind,lpa"},
    )


class SimImportOut(Schema):
    rows = WholeNumber(required=True)
    imported = WholeNumber(required=True)
