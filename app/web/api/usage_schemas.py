"""API schemas of usage from the hosts: imports, rejects, a line's usage, daily series."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from app.usage.models import FILE_KINDS, REJECT_REASONS, REJECT_STATUSES, USAGE_SERVICES
from app.web.api.customers_schemas import Remaining
from app.web.api.schemas import MAX_INT, PLAIN_TEXT, PageQuery, StrictQuery, WholeNumber

HOST = [Length(min=1, max=20), PLAIN_TEXT]
# Calendar months this API settles and charts: YYYY-MM of the years 2000 to 2099.
MONTH = Regexp(r"^20[0-9]{2}-(0[1-9]|1[0-2])$", error="must be a month written YYYY-MM")
MAX_REPROCESS_IDS = 10_000


class UsageImportIn(Schema):
    host = String(required=True, validate=HOST, metadata={"description": "Host carrier code"})
    file = File(
        required=True,
        metadata={"description": "The host's usage file: UTF-8 CSV with a header, at most 64 MiB"},
    )


class UsageImportOut(Schema):
    """What `mvno cdr import --json` prints, and the import's id."""

    file = String(required=True)
    file_id = WholeNumber(required=True)
    rows = WholeNumber(required=True)
    charged = WholeNumber(required=True)
    duplicates = WholeNumber(required=True)
    rejected = WholeNumber(required=True)
    already_imported = Boolean(required=True)


class UsageFileOut(Schema):
    id = WholeNumber(required=True)
    host = String(required=True)
    kind = String(required=True, validate=OneOf(FILE_KINDS))
    filename = String(required=True)
    sha256 = String(required=True)
    rows = WholeNumber(required=True)
    charged = WholeNumber(required=True)
    duplicates = WholeNumber(required=True)
    rejected = WholeNumber(required=True)
    open_rejects = WholeNumber(required=True)
    charge_minor = WholeNumber(required=True, metadata={"description": "Overage charged"})
    currency = String(required=True)
    first_start = DateTime(allow_none=True)
    last_start = DateTime(allow_none=True)
    actor = String(required=True)
    created_at = DateTime(required=True)


class UsageFileListItem(UsageFileOut):
    """An import inside a list."""


class UsageFilePage(Schema):
    items = List(Nested(UsageFileListItem), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class UsageFileQuery(PageQuery):
    host = String(validate=HOST)


class RejectOut(Schema):
    id = WholeNumber(required=True)
    host = String(required=True)
    file_id = WholeNumber(required=True)
    line = WholeNumber(required=True, metadata={"description": "Line in the file (header: 1)"})
    raw = String(required=True)
    reason = String(required=True, validate=OneOf(sorted(REJECT_REASONS)))
    record_id = String(allow_none=True)
    status = String(required=True, validate=OneOf(REJECT_STATUSES))
    resolved_file_id = WholeNumber(allow_none=True)
    resolved_at = DateTime(allow_none=True)
    created_at = DateTime(required=True)


class RejectPage(Schema):
    items = List(Nested(RejectOut), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class RejectQuery(PageQuery):
    host = String(validate=HOST)
    file_id = Integer(validate=Range(min=1, max=MAX_INT))
    status = String(
        load_default="open",
        validate=OneOf([*REJECT_STATUSES, "any"]),
        metadata={"description": "open (the default), resolved or any"},
    )
    reason = String(validate=OneOf(sorted(REJECT_REASONS)))


class ReprocessIn(Schema):
    host = String(required=True, validate=HOST)
    ids = List(
        WholeNumber(validate=Range(min=1, max=MAX_INT)),
        load_default=None,
        allow_none=True,
        validate=Length(max=MAX_REPROCESS_IDS),
        metadata={"description": "Only these rejects (of the host, still open); all when left out"},
    )


class ReprocessOut(Schema):
    host = String(required=True)
    file_id = WholeNumber(allow_none=True, metadata={"description": "The reprocessing run"})
    tried = WholeNumber(required=True)
    charged = WholeNumber(required=True)
    duplicates = WholeNumber(required=True)
    still_rejected = WholeNumber(required=True)


class ServiceTotals(Schema):
    records = WholeNumber(required=True)
    quantity = WholeNumber(required=True, metadata={"description": "Bytes, seconds or messages"})
    billable = WholeNumber(required=True, metadata={"description": "KB, seconds or messages"})
    within = WholeNumber(required=True)
    over = WholeNumber(required=True)
    charge_minor = WholeNumber(required=True)


class UsageTotals(Schema):
    data = Nested(ServiceTotals, required=True)
    voice = Nested(ServiceTotals, required=True)
    sms = Nested(ServiceTotals, required=True)


class UsagePeriod(Schema):
    start = DateTime(required=True)
    end = DateTime(required=True)
    remaining = Nested(Remaining, required=True)


class UsageRecordOut(Schema):
    record_id = String(required=True)
    file_id = WholeNumber(required=True)
    service = String(required=True, validate=OneOf(USAGE_SERVICES))
    start_time = DateTime(required=True)
    quantity = WholeNumber(required=True)
    billable = WholeNumber(required=True)
    within = WholeNumber(required=True)
    over = WholeNumber(required=True)
    charge_minor = WholeNumber(required=True)
    called_number = String(allow_none=True)


class LineUsageQuery(PageQuery):
    """A page of a line's records."""


class LineUsageOut(Schema):
    msisdn = String(required=True)
    currency = String(required=True)
    period = Nested(UsagePeriod, allow_none=True, required=True)
    totals = Nested(UsageTotals, required=True)
    items = List(Nested(UsageRecordOut), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class DailyQuery(StrictQuery):
    host = String(required=True, validate=HOST)
    month = String(required=True, validate=MONTH, metadata={"description": "YYYY-MM"})


class PerService(Schema):
    data = List(WholeNumber(), required=True)
    voice = List(WholeNumber(), required=True)
    sms = List(WholeNumber(), required=True)


class DailyOut(Schema):
    host = String(required=True)
    month = String(required=True)
    currency = String(required=True)
    units = Dict(keys=String(), values=String(), required=True)
    days = List(String(), required=True, metadata={"description": "Local days with usage"})
    quantity = Nested(PerService, required=True)
    cost_minor = Nested(
        PerService,
        required=True,
        metadata={"description": "Wholesale cost per day at that day's rate card"},
    )
