"""API schemas of the monthly settlement with the hosts: runs, their files, disputes."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.web.api.schemas import MAX_INT, NON_BLANK_TEXT, PageQuery, WholeNumber
from app.web.api.usage_schemas import HOST, MONTH
from wholesale.models import DISPUTE_STATUSES, SETTLEMENT_KINDS


class ExportIn(Schema):
    host = String(required=True, validate=HOST, metadata={"description": "Host carrier code"})
    month = String(required=True, validate=MONTH, metadata={"description": "YYYY-MM"})


class ReconcileIn(ExportIn):
    invoice = File(
        required=True,
        metadata={"description": "The host's invoice: UTF-8 CSV in the settlement columns"},
    )


class SettlementOut(Schema):
    """What a run wrote: `mvno settlement export|reconcile --json`, files by name."""

    run_id = WholeNumber(required=True)
    host = String(required=True)
    month = String(required=True)
    kind = String(required=True, validate=OneOf(SETTLEMENT_KINDS))
    currency = String(required=True)
    total = WholeNumber(required=True, metadata={"description": "Our settlement, minor units"})
    invoice_total = WholeNumber(allow_none=True)
    discrepancies = WholeNumber(required=True)
    files = List(String(), required=True)


class RunOut(Schema):
    id = WholeNumber(required=True)
    host = String(required=True)
    month = String(required=True)
    kind = String(required=True, validate=OneOf(SETTLEMENT_KINDS))
    currency = String(required=True)
    total_minor = WholeNumber(required=True)
    invoice_total_minor = WholeNumber(allow_none=True)
    discrepancies = WholeNumber(required=True)
    csv_name = String(required=True)
    json_name = String(required=True)
    actor = String(required=True)
    created_at = DateTime(required=True)


class RunPage(Schema):
    items = List(Nested(RunOut), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class RunQuery(PageQuery):
    host = String(validate=HOST)
    month = String(validate=MONTH)
    kind = String(validate=OneOf(SETTLEMENT_KINDS))


class DisputeOut(Schema):
    id = WholeNumber(required=True)
    run_id = WholeNumber(required=True)
    host = String(required=True)
    month = String(required=True)
    service = String(required=True)
    currency = String(required=True)
    our_quantity = WholeNumber(required=True)
    invoice_quantity = WholeNumber(required=True)
    our_amount_minor = WholeNumber(required=True)
    invoice_amount_minor = WholeNumber(required=True)
    status = String(required=True, validate=OneOf(DISPUTE_STATUSES))
    note = String(required=True)
    created_at = DateTime(required=True)
    resolved_at = DateTime(allow_none=True)


class DisputeListItem(DisputeOut):
    """A dispute inside a list."""


class DisputePage(Schema):
    items = List(Nested(DisputeListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class DisputeQuery(PageQuery):
    host = String(validate=HOST)
    month = String(validate=MONTH)
    run_id = Integer(validate=Range(min=1, max=MAX_INT))
    status = String(
        load_default="open",
        validate=OneOf([*DISPUTE_STATUSES, "any"]),
        metadata={"description": "open (the default), resolved or any"},
    )


class ResolveIn(Schema):
    note = String(required=True, validate=[Length(min=1, max=500), NON_BLANK_TEXT])
