"""Console pages of the monthly settlement with the hosts (DESIGN §7).

* **Export** (`settlement.manage`): a host and a month (YYYY-MM, the
  previous month by default, in the viewer's time zone) → `export_settlement`
  writes `settlement_<HOST>_<YYYY-MM>.csv` and `.json` into
  `<INSTANCE_PATH>/settlement/<HOST>/` and keeps the run.
* **Reconcile** (`settlement.manage`): the host's invoice for a month →
  `reconcile_settlement` writes the reconciliation files and records each
  difference beyond the host's tolerances as an open dispute.
* **Runs** keep their files' text; the files are downloaded from the run
  (`Content-Disposition: attachment`, served as CSV or JSON, never as a
  page). A run's page shows its rows — for a reconciliation, ours beside the
  invoice's — and the host's open disputes, which are resolved with a note.
* **Chart**: daily usage and wholesale cost per service of a host and month
  (`daily_usage`), drawn by `static/usage-chart.js` from a JSON block.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired

from app.core import limits
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.core.money import MINOR_PLACES
from app.usage import queries
from app.usage.settlement import export_settlement, reconcile_settlement
from app.web import flash_refusal, format_money_for_view, localized
from app.web.auth import safe_next, staff_required
from app.web.console import bp
from app.web.console.common import PER_PAGE, page_number, post_form, refused_form
from app.web.console.usage import host_code_choices, hosts_by_id
from app.web.context import current_actor, db_session, settings
from app.web.files import run_file_response
from app.web.forms import limit
from wholesale import runs
from wholesale import services as wholesale
from wholesale.errors import InvoiceRejected
from wholesale.models import HostCarrier, SettlementRun
from wholesale.settlement import USAGE_SERVICES, month_bounds

# Quantities per unit shown on the chart: MB of bytes, minutes of seconds, messages.
CHART_UNITS = {"data": 1_048_576, "voice": 60, "sms": 1}
CHART_TITLES = {
    "data": _l("Data (MB)"),
    "voice": _l("Voice (minutes)"),
    "sms": _l("SMS (messages)"),
}


class ExportForm(FlaskForm):
    host = SelectField(_l("Host"))
    month = StringField(_l("Month (YYYY-MM)"), validators=[DataRequired(), limit(7)])


class ReconcileForm(ExportForm):
    invoice = FileField(_l("Host's invoice (CSV)"), validators=[FileRequired()])


class DisputeForm(FlaskForm):
    note = StringField(_l("Note"), validators=[DataRequired(), limit(limits.NOTE)])
    next = HiddenField()


def previous_month(now: datetime, timezone: str) -> str:
    """The month before `now`'s in `timezone`, as YYYY-MM."""
    first = now.astimezone(ZoneInfo(timezone)).date().replace(day=1)
    last = first - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def _forms(prefix: str, form_class: type[ExportForm], month: str) -> ExportForm:
    form = form_class(prefix=prefix, formdata=None)
    form.host.choices = host_code_choices()
    form.month.data = month
    return form


def _chart(host: HostCarrier | None, month: str) -> dict[str, Any] | None:
    """The chart's series in display units (MB, minutes, messages; currency units)."""
    if host is None:
        return None
    start, end = month_bounds(month, host.timezone)
    series = queries.chart_series(
        queries.daily_usage(db_session(), host=host, start=start, end=end)
    )
    first = date.fromisoformat(f"{month}-01")
    days = [first + timedelta(days=n) for n in range(31)]
    days = [day for day in days if day.month == first.month]
    index = {day: n for n, day in enumerate(series["days"])}
    per_minor = 10**MINOR_PLACES
    charts, totals = [], []
    for service in USAGE_SERVICES:
        quantity, cost = series["quantity"][service], series["cost_minor"][service]
        at = [index.get(day.isoformat()) for day in days]
        charts.append(
            {
                "service": service,
                "title": str(CHART_TITLES[service]),
                "quantity": [
                    round(quantity[i] / CHART_UNITS[service], 3) if i is not None else 0 for i in at
                ],
                "cost": [round(cost[i] / per_minor, 2) if i is not None else 0 for i in at],
            }
        )
        totals.append((service, sum(quantity), sum(cost)))
    return {
        "host": host.code,
        "month": month,
        "currency": host.currency,
        "days": [day.isoformat() for day in days],
        "charts": charts,
        "totals": totals,
        "labels": {
            "day": _("Day"),
            "quantity": _("Usage"),
            "cost": _("Wholesale cost (%(currency)s)", currency=host.currency),
        },
    }


def _render_settlement(
    *,
    export: ExportForm | None = None,
    reconcile: ExportForm | None = None,
    invoice_rejects: Any = None,
    status: int = 200,
) -> Any:
    session = db_session()
    default_month = previous_month(utcnow(), settings().timezone)
    hosts = wholesale.list_hosts(session)
    code = request.args.get("host") or None
    host = wholesale.find_host_by_code(session, code) if code else None
    month = (request.args.get("month") or default_month).strip()
    # Drawn when asked for: a month of a busy host's records is a large scan.
    chart, chart_error = None, None
    try:
        chart = _chart(host, month)
    except DomainError as exc:
        chart_error = localized(exc)
    page = page_number()
    run_rows, total = runs.list_runs(
        session,
        host_id=host.id if host is not None else None,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    disputes, disputes_total = runs.list_disputes(
        session, host_id=host.id if host is not None else None, status="open", limit=PER_PAGE
    )
    return render_template(
        "console/settlement.html",
        hosts=hosts,
        host=host,
        month=month,
        chart=chart,
        chart_error=chart_error,
        export_form=export or _forms("export", ExportForm, default_month),
        reconcile_form=reconcile or _forms("reconcile", ReconcileForm, default_month),
        invoice_rejects=invoice_rejects,
        runs=run_rows,
        total=total,
        page=page,
        per_page=PER_PAGE,
        disputes=disputes,
        disputes_total=disputes_total,
        hosts_by_id=hosts_by_id(),
        dispute_form=DisputeForm(formdata=None),
        back=request.full_path.rstrip("?"),
    ), status


@bp.route("/settlement")
@staff_required("settlement.view")
def settlement() -> Any:
    return _render_settlement()


def _out_dir(host: HostCarrier) -> Path:
    return settings().instance_path / "settlement" / host.code


def _files_unwritable(form: ExportForm, exc: OSError) -> None:
    form.month.errors = [
        *form.month.errors,
        _("The files could not be written: %(error)s", error=exc.strerror or str(exc)),
    ]


def _posted(form_class: type[ExportForm], prefix: str) -> ExportForm:
    form = form_class(prefix=prefix)
    form.host.choices = host_code_choices()
    return form


@bp.route("/settlement/exports", methods=["POST"])
@staff_required("settlement.manage")
def settlement_export() -> Any:
    form = _posted(ExportForm, "export")

    def export() -> Any:
        host = wholesale.get_host_by_code(db_session(), form.host.data or "")
        try:
            result = export_settlement(
                db_session(),
                host_code=host.code,
                month=(form.month.data or "").strip(),
                out_dir=_out_dir(host),
                actor=current_actor(),
                now=utcnow(),
            )
        except OSError as exc:
            _files_unwritable(form, exc)
            return None
        flash(
            _(
                "Settlement of %(host)s for %(month)s: %(total)s.",
                host=host.code,
                month=result.settlement.period,
                total=format_money_for_view(result.settlement.total_minor, host.currency),
            ),
            "success",
        )
        return redirect(url_for("console.settlement_run", run_id=result.run_id))

    return post_form(
        form,
        act=export,
        refused=lambda: _render_settlement(export=form, status=422),
        fallback="month",
    )


@bp.route("/settlement/reconciliations", methods=["POST"])
@staff_required("settlement.manage")
def settlement_reconcile() -> Any:
    form = _posted(ReconcileForm, "reconcile")
    rejects: list[Any] = []

    def reconcile() -> Any:
        host = wholesale.get_host_by_code(db_session(), form.host.data or "")
        invoice = form.invoice.data.read()
        try:
            result = reconcile_settlement(
                db_session(),
                host_code=host.code,
                month=(form.month.data or "").strip(),
                invoice=invoice,
                out_dir=_out_dir(host),
                actor=current_actor(),
                now=utcnow(),
            )
        except InvoiceRejected as exc:
            rejects.extend(exc.rejects)
            raise
        except OSError as exc:
            _files_unwritable(form, exc)
            return None
        assert result.reconciliation is not None
        count = len(result.reconciliation.discrepancies)
        if count:
            flash(
                _("The invoice differs from our settlement in %(count)s services.", count=count),
                "error",
            )
        else:
            flash(_("The invoice matches our settlement."), "success")
        return redirect(url_for("console.settlement_run", run_id=result.run_id))

    return post_form(
        form,
        act=reconcile,
        refused=lambda: _render_settlement(reconcile=form, invoice_rejects=rejects, status=422),
        fallback="invoice",
    )


def _document(run: SettlementRun) -> dict[str, Any]:
    try:
        document = json.loads(run.json_text)
    except ValueError:
        return {"rows": []}
    return document if isinstance(document, dict) else {"rows": []}


@bp.route("/settlement/runs/<int:run_id>")
@staff_required("settlement.view")
def settlement_run(run_id: int) -> Any:
    session = db_session()
    run = runs.get_run(session, run_id)
    disputes, disputes_total = runs.list_disputes(
        session, host_id=run.host_id, status="open", limit=PER_PAGE
    )
    of_run, _of_run_total = runs.list_disputes(session, run_id=run.id, status=None, limit=PER_PAGE)
    # This run's own disputes are listed above the host's other open ones.
    others = [d for d in disputes if d.run_id != run.id]
    others_total = disputes_total - sum(1 for d in of_run if d.status == "open")
    return render_template(
        "console/settlement_run.html",
        run=run,
        host=session.get(HostCarrier, run.host_id),
        document=_document(run),
        disputes=others,
        disputes_total=others_total,
        of_run=of_run,
        hosts_by_id=hosts_by_id(),
        dispute_form=DisputeForm(formdata=None),
        back=url_for("console.settlement_run", run_id=run.id),
    )


@bp.route("/settlement/runs/<int:run_id>/<any(csv, json):kind>")
@staff_required("settlement.view")
def settlement_file(run_id: int, kind: str) -> Any:
    run = runs.get_run(db_session(), run_id)
    return run_file_response(run, kind)


@bp.route("/settlement/disputes/<int:dispute_id>/resolve", methods=["POST"])
@staff_required("settlement.manage")
def dispute_resolve(dispute_id: int) -> Any:
    session = db_session()
    dispute = runs.get_dispute(session, dispute_id)
    form = DisputeForm()
    fallback = url_for("console.settlement_run", run_id=dispute.run_id)
    back = redirect(safe_next(form.next.data, fallback) + "#disputes")
    if refused_form(form):
        return back
    try:
        runs.resolve_dispute(
            session,
            dispute_id=dispute_id,
            note=form.note.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(
            _(
                "Dispute %(id)s (%(service)s, %(month)s) is resolved.",
                id=dispute_id,
                service=dispute.service,
                month=dispute.month,
            ),
            "success",
        )
    return back
