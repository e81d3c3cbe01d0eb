"""Console pages of usage from the hosts (DESIGN §7): imports, rejects, a line's usage.

A usage file is uploaded with its host (`usage.manage`), saved to a
temporary file and handed to `import_usage_file` in the request's unit of
work; a file the importer refuses as a whole (not UTF-8, a header that does
not fit, no rows) or one larger than `MAX_UPLOAD_BYTES` is shown beside the
form and nothing changes. The view takes bodies beyond the app's upload
limit (`accepts_upload`); one too large even for that is answered by
`upload_too_large` with the same form message.

Rejects are kept with their line, raw text and reason and may be tried
again once the cause is fixed: those of one file, or every open reject of
a host (`reprocess_rejects`).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SelectField

from app.charging.periods import period_for_display
from app.core.clock import utcnow
from app.core.errors import N_, DomainError
from app.subscribers import services as subscribers
from app.usage import queries
from app.usage.errors import UsageFileNotFound
from app.usage.importer import ImportResult, import_usage_file
from app.usage.models import REJECT_REASONS, REJECT_STATUSES, UsageFile
from app.usage.rejects import MAX_REPROCESS, ReprocessResult, list_rejects, reprocess_rejects
from app.web import flash_refusal, http_error
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import PER_PAGE, page_number, post_form
from app.web.console.customers import remaining_allowances
from app.web.context import accepts_upload, current_actor, db_session
from app.web.files import saved_upload, too_large, too_large_message, upload_name
from app.web.formatting import usage_text
from app.web.forms import ActionForm
from plans.models import Plan
from wholesale import services as wholesale
from wholesale.models import HostCarrier

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
REJECTS_PER_PAGE = 100


USAGE_SERVICE_NAMES = {"data": N_("Data"), "voice": N_("Voice"), "sms": N_("SMS")}


@bp.app_template_global()
def usage_service_label(service: str) -> str:
    """A usage service's name in the viewer's language (data, voice, SMS)."""
    name = USAGE_SERVICE_NAMES.get(service)
    return _(name) if name else service


bp.add_app_template_global(usage_text, "usage_text")


class UsageUploadForm(FlaskForm):
    host = SelectField(_l("Host"))
    file = FileField(_l("Usage file (CSV)"), validators=[FileRequired()])


def host_code_choices() -> list[tuple[str, str]]:
    """The hosts as choices of a select field: code, then code and name."""
    return [(h.code, f"{h.code} — {h.name}") for h in wholesale.list_hosts(db_session())]


def host_codes() -> dict[int, str]:
    """Every host's code by id (there are few hosts)."""
    return {h.id or 0: h.code for h in wholesale.list_hosts(db_session())}


def hosts_by_id() -> dict[int, HostCarrier]:
    """Every host by id (there are few hosts)."""
    return {h.id or 0: h for h in wholesale.list_hosts(db_session())}


def _upload_form() -> UsageUploadForm:
    form = UsageUploadForm()
    form.host.choices = host_code_choices()
    return form


def _render_imports(form: UsageUploadForm, status: int = 200) -> Any:
    page = page_number()
    imports, total = queries.list_imports(
        db_session(), limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render_template(
        "console/usage.html",
        form=form,
        imports=imports,
        total=total,
        page=page,
        per_page=PER_PAGE,
        hosts=host_codes(),
        upload_mib=MAX_UPLOAD_BYTES // (1024 * 1024),
    ), status


@bp.route("/usage")
@staff_required("usage.view")
def usage_imports() -> Any:
    form = UsageUploadForm(formdata=None)
    form.host.choices = host_code_choices()
    return _render_imports(form)


def _import(form: UsageUploadForm) -> ImportResult | None:
    """Save the upload to a temporary file and import it; None when too large.

    :raises DomainError: the host is unknown or the importer refused the file.
    """
    upload = form.file.data
    assert isinstance(upload, FileStorage)
    with saved_upload(upload) as path:
        if too_large(path):
            form.file.errors = [*form.file.errors, too_large_message()]
            return None
        return import_usage_file(
            db_session(),
            host_code=form.host.data or "",
            path=path,
            filename=upload_name(upload),
            actor=current_actor(),
            now=utcnow(),
        )


def import_message(result: ImportResult) -> str:
    """What an import did, in words."""
    if result.already_imported:
        return _(
            "%(file)s was imported before (%(rows)s rows); nothing changed.",
            file=result.file,
            rows=result.rows,
        )
    return _(
        "%(file)s: %(rows)s rows, %(charged)s charged, %(duplicates)s duplicates,"
        " %(rejected)s rejected.",
        file=result.file,
        rows=result.rows,
        charged=result.charged,
        duplicates=result.duplicates,
        rejected=result.rejected,
    )


@bp.route("/usage", methods=["POST"])
@accepts_upload(MAX_UPLOAD_BYTES)
@staff_required("usage.manage")
def usage_upload() -> Any:
    form = _upload_form()

    def upload() -> Any:
        result = _import(form)
        if result is None:
            return None
        flash(import_message(result), "success")
        return redirect(url_for("console.usage_import", file_id=result.file_id))

    return post_form(form, act=upload, refused=lambda: _render_imports(form, 422), fallback="file")


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(exc: RequestEntityTooLarge) -> Any:
    """A body beyond the view's limit: the upload form says so; elsewhere the error page."""
    if request.endpoint != "console.usage_upload":
        return http_error(exc)
    form = UsageUploadForm(formdata=None)
    form.host.choices = host_code_choices()
    form.file.errors = [too_large_message()]
    return _render_imports(form, 413)


def _usage_file(file_id: int) -> UsageFile:
    found = queries.get_import(db_session(), file_id)
    if found is None:
        raise UsageFileNotFound(N_("No usage import %(id)s."), id=file_id)
    return found


def _choice(name: str, allowed: Any) -> str | None:
    value = request.args.get(name) or None
    return value if value in allowed else None


@bp.route("/usage/<int:file_id>")
@staff_required("usage.view")
def usage_import(file_id: int) -> Any:
    usage_file = _usage_file(file_id)
    reason = _choice("reason", REJECT_REASONS)
    status = _choice("status", REJECT_STATUSES)
    page = page_number()
    rejects, total = list_rejects(
        db_session(),
        file_id=file_id,
        status=status,
        reason=reason,
        limit=REJECTS_PER_PAGE,
        offset=(page - 1) * REJECTS_PER_PAGE,
    )
    _open, open_total = list_rejects(db_session(), file_id=file_id, status="open", limit=1)
    return render_template(
        "console/usage_import.html",
        usage_file=usage_file,
        host=db_session().get(HostCarrier, usage_file.host_id),
        rejects=rejects,
        total=total,
        open_total=open_total,
        page=page,
        per_page=REJECTS_PER_PAGE,
        reason=reason,
        status=status,
        reasons=REJECT_REASONS,
        statuses=REJECT_STATUSES,
        action_form=ActionForm(),
    )


def reprocess_message(result: ReprocessResult) -> str:
    """What a reprocessing run did, in words."""
    if not result.tried:
        return _("There were no open rejects to try again.")
    return _(
        "%(tried)s rejects tried again: %(charged)s charged, %(duplicates)s duplicates,"
        " %(still)s still rejected.",
        tried=result.tried,
        charged=result.charged,
        duplicates=result.duplicates,
        still=result.still_rejected,
    )


def _reprocess(host_code: str, reject_ids: list[int] | None) -> None:
    try:
        result = reprocess_rejects(
            db_session(),
            host_code=host_code,
            actor=current_actor(),
            now=utcnow(),
            reject_ids=reject_ids,
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(reprocess_message(result), "success")


@bp.route("/usage/<int:file_id>/reprocess", methods=["POST"])
@staff_required("usage.manage")
def usage_import_reprocess(file_id: int) -> Any:
    usage_file = _usage_file(file_id)
    back = redirect(url_for("console.usage_import", file_id=file_id))
    if not ActionForm().validate_on_submit():
        flash(
            _("The form expired or was sent from elsewhere. Reload the page and try again."),
            "error",
        )
        return back
    rejects, _total = list_rejects(
        db_session(), file_id=file_id, status="open", limit=MAX_REPROCESS
    )
    host = db_session().get(HostCarrier, usage_file.host_id)
    assert host is not None
    _reprocess(host.code, [r.id for r in rejects if r.id is not None])
    return back


@bp.route("/usage/rejects")
@staff_required("usage.view")
def usage_rejects() -> Any:
    session = db_session()
    code = request.args.get("host") or None
    host = wholesale.find_host_by_code(session, code) if code else None
    reason = _choice("reason", REJECT_REASONS)
    show = request.args.get("status", "open")
    status = show if show in REJECT_STATUSES else None
    page = page_number()
    rejects, total = list_rejects(
        session,
        host_id=host.id if host is not None else None,
        status=status,
        reason=reason,
        limit=REJECTS_PER_PAGE,
        offset=(page - 1) * REJECTS_PER_PAGE,
    )
    return render_template(
        "console/usage_rejects.html",
        host=host,
        hosts=wholesale.list_hosts(session),
        host_code=host.code if host is not None else None,
        codes=host_codes(),
        rejects=rejects,
        total=total,
        page=page,
        per_page=REJECTS_PER_PAGE,
        reason=reason,
        status=status or "",
        reasons=REJECT_REASONS,
        statuses=REJECT_STATUSES,
        action_form=ActionForm(),
    )


@bp.route("/usage/rejects/reprocess", methods=["POST"])
@staff_required("usage.manage")
def usage_rejects_reprocess() -> Any:
    code = request.form.get("host") or ""
    back = redirect(url_for("console.usage_rejects", host=code or None))
    if not ActionForm().validate_on_submit():
        flash(
            _("The form expired or was sent from elsewhere. Reload the page and try again."),
            "error",
        )
        return back
    if not code:
        flash(_("Choose the host whose open rejects to try again."), "error")
        return back
    _reprocess(code, None)
    return back


@bp.route("/lines/<msisdn>/usage")
@staff_required("ledger.view")
def line_usage(msisdn: str) -> Any:
    session = db_session()
    line = subscribers.get_line_by_msisdn(session, msisdn)
    assert line.id is not None
    customer = subscribers.get_customer(session, line.customer_id)
    period = period_for_display(session, line_id=line.id, at=utcnow())
    page = page_number()
    records, total = queries.line_records(
        session, line_id=line.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render_template(
        "console/line_usage.html",
        line=line,
        customer=customer,
        plan=session.get(Plan, line.plan_id),
        period=period,
        remaining=remaining_allowances(period) if period is not None else None,
        totals=queries.line_totals(session, line_id=line.id),
        records=records,
        total=total,
        page=page,
        per_page=PER_PAGE,
    )
