"""JSON API of usage from the hosts (DESIGN §7, §14): imports, rejects, a line's usage,
daily series.

`usage.manage` imports a usage file (multipart: `host` and `file`) and
reprocesses rejects; `usage.view` reads imports, rejects and the daily
series of a host's month; a line's usage is `ledger.view`, as its page in
the console. A file refused as a whole (not UTF-8, a header that does not
fit, no rows) is a 422 with the reason and changes nothing; one larger
than 64 MiB is a 413.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE
from sqlmodel import Session

from app.charging.periods import period_for_display
from app.core.clock import utcnow
from app.core.errors import N_
from app.usage import queries
from app.usage.errors import UsageFileNotFound
from app.usage.importer import import_usage_file
from app.usage.models import USAGE_SERVICES, UsageFile, UsageReject
from app.usage.rejects import list_rejects, reprocess_rejects
from app.web import json_error
from app.web.api import bp
from app.web.api.common import line_by_msisdn, page_args, page_out
from app.web.api.security import requires
from app.web.api.usage_schemas import (
    DailyOut,
    DailyQuery,
    LineUsageOut,
    LineUsageQuery,
    RejectPage,
    RejectQuery,
    ReprocessIn,
    ReprocessOut,
    UsageFileOut,
    UsageFilePage,
    UsageFileQuery,
    UsageImportIn,
    UsageImportOut,
)
from app.web.context import accepts_upload, current_actor, db_session, settings
from app.web.files import saved_upload, too_large, too_large_message, upload_name
from wholesale import services as wholesale
from wholesale.settlement import UNITS, month_bounds

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
# Documented beside the 201 of a new import (mixed entries: a full response and words).
IMPORT_RESPONSES: dict[int | str, Any] = {
    200: {
        "description": "The same file was imported before: nothing changed",
        "content": {"application/json": {"schema": UsageImportOut}},
    },
    404: "No such host",
    413: "The file is larger than 64 MiB",
    422: "The file was refused as a whole (the message says why); nothing imported",
}
_TOTAL_NAMES = ("records", "quantity", "billable", "within", "over", "charge_minor")


def _codes(session: Session) -> dict[int, str]:
    return {h.id or 0: h.code for h in wholesale.list_hosts(session)}


def _usage_file(usage_file: UsageFile, codes: dict[int, str]) -> dict[str, Any]:
    _items, open_rejects = list_rejects(db_session(), file_id=usage_file.id, status="open", limit=1)
    return {
        **usage_file.model_dump(),
        "host": codes.get(usage_file.host_id, ""),
        "rows": usage_file.rows_total,
        "open_rejects": open_rejects,
        "currency": settings().currency,
    }


@bp.post("/usage/imports")
@accepts_upload(MAX_UPLOAD_BYTES)
@requires("usage.manage")
@bp.input(UsageImportIn, location="form_and_files", arg_name="data")
@bp.output(UsageImportOut, status_code=201)
@bp.doc(responses=IMPORT_RESPONSES)
def usage_import_create(data: dict[str, Any]) -> Any:
    """Import and charge a host's usage file; the same file again changes nothing (200).

    Rows that cannot be used are kept as rejects (see `/usage/rejects`).
    """
    upload = data["file"]
    with saved_upload(upload) as path:
        if too_large(path):
            return json_error("file_too_large", too_large_message(), 413, "file")
        result = import_usage_file(
            db_session(),
            host_code=data["host"],
            path=path,
            filename=upload_name(upload),
            actor=current_actor(),
            now=utcnow(),
        )
    # As `mvno cdr import` names the file it was given, so does the API.
    body = {**result.as_dict(), "file": upload_name(upload), "file_id": result.file_id}
    return (body, 200) if result.already_imported else body


@bp.get("/usage/imports")
@requires("usage.view")
@bp.input(UsageFileQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(UsageFilePage)
@bp.doc(responses={404: "No such host"})
def usage_import_list(query: dict[str, Any]) -> Any:
    """Imports and reprocessing runs, newest first, with their counts."""
    session = db_session()
    host_id = None
    if query.get("host"):
        host_id = wholesale.get_host_by_code(session, query["host"]).id
    files, total = queries.list_imports(session, host_id=host_id, **page_args(query))
    codes = _codes(session)
    return page_out([_usage_file(f, codes) for f in files], total, query)


@bp.get("/usage/imports/<int:file_id>")
@requires("usage.view")
@bp.output(UsageFileOut)
@bp.doc(responses={404: "No such import"})
def usage_import_get(file_id: int) -> Any:
    """One import with its counts and how many of its rejects are still open."""
    session = db_session()
    usage_file = queries.get_import(session, file_id)
    if usage_file is None:
        raise UsageFileNotFound(N_("No usage import %(id)s."), id=file_id)
    return _usage_file(usage_file, _codes(session))


def _reject(reject: UsageReject, codes: dict[int, str]) -> dict[str, Any]:
    return {**reject.model_dump(), "host": codes.get(reject.host_id, ""), "line": reject.line_no}


@bp.get("/usage/rejects")
@requires("usage.view")
@bp.input(RejectQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(RejectPage)
@bp.doc(responses={404: "No such host"})
def usage_reject_list(query: dict[str, Any]) -> Any:
    """Rejected rows with their line, raw text and reason; newest file first, then by line."""
    session = db_session()
    host_id = None
    if query.get("host"):
        host_id = wholesale.get_host_by_code(session, query["host"]).id
    status = query["status"]
    rejects, total = list_rejects(
        session,
        host_id=host_id,
        file_id=query.get("file_id"),
        status=None if status == "any" else status,
        reason=query.get("reason"),
        **page_args(query),
    )
    codes = _codes(session)
    return page_out([_reject(r, codes) for r in rejects], total, query)


@bp.post("/usage/rejects/reprocess")
@requires("usage.manage")
@bp.input(ReprocessIn, arg_name="data")
@bp.output(ReprocessOut)
@bp.doc(responses={404: "No such host"})
def usage_reject_reprocess(data: dict[str, Any]) -> Any:
    """Try the host's open rejects (all, or those named) again, once the cause is fixed.

    Nothing is charged twice: a record charged meanwhile counts as a duplicate.
    """
    result = reprocess_rejects(
        db_session(),
        host_code=data["host"],
        actor=current_actor(),
        now=utcnow(),
        reject_ids=data.get("ids"),
    )
    return result.as_dict()


@bp.get("/lines/<msisdn>/usage")
@requires("ledger.view")
@bp.input(LineUsageQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(LineUsageOut)
@bp.doc(responses={404: "No line with this number"})
def line_usage(msisdn: str, query: dict[str, Any]) -> Any:
    """A line's usage: totals per service, the current period's allowances left, records
    latest first (paged)."""
    session = db_session()
    line = line_by_msisdn(msisdn)
    assert line.id is not None
    period = period_for_display(session, line_id=line.id, at=utcnow())
    records, total = queries.line_records(session, line_id=line.id, **page_args(query))
    totals = queries.line_totals(session, line_id=line.id)
    return page_out(
        [r.model_dump() for r in records],
        total,
        query,
        msisdn=line.msisdn,
        currency=settings().currency,
        period=None
        if period is None
        else {
            "start": period.start,
            "end": period.end,
            "remaining": {
                "data_kb": period.data_kb_left,
                "voice_s": period.voice_s_left,
                "sms": period.sms_left,
            },
        },
        totals={
            service: totals.get(service, dict.fromkeys(_TOTAL_NAMES, 0))
            for service in USAGE_SERVICES
        },
    )


@bp.get("/usage/daily")
@requires("usage.view")
@bp.input(DailyQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(DailyOut)
@bp.doc(responses={404: "No such host"})
def usage_daily(query: dict[str, Any]) -> Any:
    """A host's usage and wholesale cost per local day and service in a month (chart series).

    Quantities in bytes, seconds and messages; costs in minor units, each day priced
    at the rate card in force on it and rounded on its own.
    """
    session = db_session()
    host = wholesale.get_host_by_code(session, query["host"])
    start, end = month_bounds(query["month"], host.timezone)
    series = queries.chart_series(queries.daily_usage(session, host=host, start=start, end=end))
    return {
        "host": host.code,
        "month": query["month"],
        "currency": host.currency,
        "units": {service: UNITS[service] for service in USAGE_SERVICES},
        **series,
    }
