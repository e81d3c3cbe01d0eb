"""JSON API of the monthly settlement with the hosts (DESIGN §7, §14).

`settlement.manage` exports a host's month (the files are written into
`<INSTANCE_PATH>/settlement/<HOST>/` and kept with the run), reconciles the
host's invoice (multipart: `host`, `month`, `invoice`) and resolves a
dispute with a note; `settlement.view` lists runs and disputes and
downloads a run's CSV or JSON file.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE
from sqlmodel import Session

from app.core.clock import utcnow
from app.usage.settlement import SettlementFiles, export_settlement, reconcile_settlement
from app.web.api import bp
from app.web.api.common import page_args, page_out
from app.web.api.security import requires
from app.web.api.settlement_schemas import (
    DisputeOut,
    DisputePage,
    DisputeQuery,
    ExportIn,
    ReconcileIn,
    ResolveIn,
    RunPage,
    RunQuery,
    SettlementOut,
)
from app.web.context import current_actor, db_session, settings
from app.web.files import run_file_response
from wholesale import runs
from wholesale import services as wholesale
from wholesale.models import HostCarrier, SettlementDispute, SettlementRun


def _file_doc(mimetype: str, schema: dict[str, str], what: str) -> dict[int | str, Any]:
    """The responses of a run's file: the file itself, or no such run."""
    return {
        200: {
            "description": f"The run's {what} file, as written (an attachment)",
            "content": {mimetype: {"schema": schema}},
        },
        404: "No such run",
    }


def _hosts(session: Session) -> dict[int, HostCarrier]:
    return {h.id or 0: h for h in wholesale.list_hosts(session)}


def _summary(result: SettlementFiles, kind: str) -> dict[str, Any]:
    data = result.as_dict()
    return {
        **data,
        "kind": kind,
        "invoice_total": data.get("invoice_total"),
        "discrepancies": data.get("discrepancies", 0),
        "files": [path.name for path in result.files],
    }


def _host_filter(session: Session, query: dict[str, Any]) -> int | None:
    if not query.get("host"):
        return None
    return wholesale.get_host_by_code(session, query["host"]).id


@bp.post("/settlement/exports")
@requires("settlement.manage")
@bp.input(ExportIn, arg_name="data")
@bp.output(SettlementOut, status_code=201)
@bp.doc(responses={404: "No such host", 409: "A day of the month has no rate card in force"})
def settlement_export(data: dict[str, Any]) -> Any:
    """Write the host's settlement files for the month and keep the run.

    The files are byte-identical when nothing changed; each export is a run of its own.
    """
    session = db_session()
    host = wholesale.get_host_by_code(session, data["host"])
    result = export_settlement(
        session,
        host_code=host.code,
        month=data["month"],
        out_dir=settings().instance_path / "settlement" / host.code,
        actor=current_actor(),
        now=utcnow(),
    )
    return _summary(result, "export")


@bp.post("/settlement/reconciliations")
@requires("settlement.manage")
@bp.input(ReconcileIn, location="form_and_files", arg_name="data")
@bp.output(SettlementOut, status_code=201)
@bp.doc(
    responses={
        404: "No such host",
        409: "A day of the month has no rate card in force",
        422: "The invoice cannot be read; `details.rejects` lists every bad line",
    }
)
def settlement_reconcile(data: dict[str, Any]) -> Any:
    """Check the host's invoice against our settlement of the month.

    Each service that differs beyond the host's tolerances opens a dispute; a
    difference is a result (201), not an error.
    """
    session = db_session()
    host = wholesale.get_host_by_code(session, data["host"])
    result = reconcile_settlement(
        session,
        host_code=host.code,
        month=data["month"],
        invoice=data["invoice"].read(),
        out_dir=settings().instance_path / "settlement" / host.code,
        actor=current_actor(),
        now=utcnow(),
    )
    return _summary(result, "reconcile")


def _run(run: SettlementRun, hosts: dict[int, HostCarrier]) -> dict[str, Any]:
    host = hosts.get(run.host_id)
    return {
        **run.model_dump(),
        "host": host.code if host else "",
        "currency": host.currency if host else "",
    }


@bp.get("/settlement/runs")
@requires("settlement.view")
@bp.input(RunQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(RunPage)
@bp.doc(responses={404: "No such host"})
def settlement_run_list(query: dict[str, Any]) -> Any:
    """Settlement exports and reconciliations, newest first."""
    session = db_session()
    items, total = runs.list_runs(
        session,
        host_id=_host_filter(session, query),
        month=query.get("month"),
        kind=query.get("kind"),
        **page_args(query),
    )
    hosts = _hosts(session)
    return page_out([_run(r, hosts) for r in items], total, query)


@bp.get("/settlement/runs/<int:run_id>/csv")
@requires("settlement.view")
@bp.doc(responses=_file_doc("text/csv", {"type": "string"}, "CSV"))
def settlement_run_csv(run_id: int) -> Any:
    """A run's CSV file (`settlement_…` or `reconciliation_…`), byte for byte."""
    return run_file_response(runs.get_run(db_session(), run_id), "csv")


@bp.get("/settlement/runs/<int:run_id>/json")
@requires("settlement.view")
@bp.doc(responses=_file_doc("application/json", {"type": "object"}, "JSON"))
def settlement_run_json(run_id: int) -> Any:
    """A run's JSON file, byte for byte."""
    return run_file_response(runs.get_run(db_session(), run_id), "json")


def _dispute(dispute: SettlementDispute, hosts: dict[int, HostCarrier]) -> dict[str, Any]:
    host = hosts.get(dispute.host_id)
    return {
        **dispute.model_dump(),
        "host": host.code if host else "",
        "currency": host.currency if host else "",
    }


@bp.get("/settlement/disputes")
@requires("settlement.view")
@bp.input(DisputeQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(DisputePage)
@bp.doc(responses={404: "No such host"})
def settlement_dispute_list(query: dict[str, Any]) -> Any:
    """Differences between a host's invoice and our settlement; open ones by default."""
    session = db_session()
    status = query["status"]
    items, total = runs.list_disputes(
        session,
        host_id=_host_filter(session, query),
        status=None if status == "any" else status,
        month=query.get("month"),
        run_id=query.get("run_id"),
        **page_args(query),
    )
    hosts = _hosts(session)
    return page_out([_dispute(d, hosts) for d in items], total, query)


@bp.post("/settlement/disputes/<int:dispute_id>/resolve")
@requires("settlement.manage")
@bp.input(ResolveIn, arg_name="data")
@bp.output(DisputeOut)
@bp.doc(responses={404: "No such dispute", 409: "The dispute was resolved already"})
def settlement_dispute_resolve(dispute_id: int, data: dict[str, Any]) -> Any:
    """Mark an open dispute resolved, with a note (audited)."""
    session = db_session()
    dispute = runs.resolve_dispute(
        session, dispute_id=dispute_id, note=data["note"], actor=current_actor(), now=utcnow()
    )
    return _dispute(dispute, _hosts(session))
