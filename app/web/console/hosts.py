"""Console pages of host carriers (DESIGN §7): hosts, rate cards and a host's
provisioning secret (never shown, only its last four characters).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.core.money import format_plain, parse_micro, parse_minor
from app.web import flash_refusal, localized, undo_refused
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import parse_field, refused_form
from app.web.context import current_actor, db_session
from app.web.forms import PRICE_FIELDS, HostForm, RateCardForm, attach_error, limit
from wholesale import services as wholesale
from wholesale.models import SERVICES, HostCarrier
from wholesale.usage_settings import MAX_COLUMN_NAME, USAGE_FIELDS, set_usage_settings


def _render_hosts(form: HostForm, status: int) -> Any:
    session = db_session()
    today = utcnow().date()
    rows = [
        (host, wholesale.rate_card_on(session, host_id=host.id or 0, on=today))
        for host in wholesale.list_hosts(session)
    ]
    return render_template("console/hosts.html", rows=rows, form=form), status


@bp.route("/hosts")
@staff_required("wholesale.view")
def hosts() -> Any:
    return _render_hosts(HostForm(), 200)


@bp.route("/hosts", methods=["POST"])
@staff_required("wholesale.manage")
def host_save() -> Any:
    form = HostForm()
    if form.validate_on_submit():
        try:
            host = wholesale.upsert_host(
                db_session(),
                code=form.code.data or "",
                name=form.name.data or "",
                currency=form.currency.data or "CNY",
                timezone=form.timezone.data or "Asia/Shanghai",
                provisioning=form.provisioning.data or "log",
                provisioning_url=form.provisioning_url.data or None,
                actor=current_actor(),
                now=utcnow(),
            )
        except DomainError as exc:
            attach_error(form, exc)
        else:
            flash(_("Host %(code)s saved.", code=host.code), "success")
            return redirect(url_for("console.host_detail", code=host.code))
    return _render_hosts(form, 422)


class UsageSettingsForm(FlaskForm):
    """A host's usage-file columns (blank: our default name) and reconciliation tolerances."""

    record_id = StringField("record_id", validators=[limit(MAX_COLUMN_NAME)])
    msisdn = StringField("msisdn", validators=[limit(MAX_COLUMN_NAME)])
    service = StringField("service", validators=[limit(MAX_COLUMN_NAME)])
    start_time = StringField("start_time", validators=[limit(MAX_COLUMN_NAME)])
    quantity = StringField("quantity", validators=[limit(MAX_COLUMN_NAME)])
    called_number = StringField("called_number", validators=[limit(MAX_COLUMN_NAME)])
    ignore = StringField(_l("Columns to ignore (separated by commas)"), validators=[limit(2000)])
    reconcile_amount_tolerance = StringField(
        _l("Amount tolerance per service (such as 0.05)"),
        default="0.00",
        validators=[DataRequired(), limit(12)],
    )
    reconcile_quantity_tolerance_bp = IntegerField(
        _l("Quantity tolerance (basis points of our quantity)"),
        default=0,
        validators=[InputRequired()],
    )


def _usage_settings_form(host: HostCarrier) -> UsageSettingsForm:
    form = UsageSettingsForm(prefix="usage", formdata=None)
    columns = host.cdr_columns or {}
    for name in USAGE_FIELDS:
        getattr(form, name).data = columns.get(name, "")
    form.ignore.data = ", ".join(columns.get("ignore", []))
    form.reconcile_amount_tolerance.data = format_plain(host.reconcile_amount_tolerance_minor)
    form.reconcile_quantity_tolerance_bp.data = host.reconcile_quantity_tolerance_bp
    return form


def _render_host(
    code: str, form: RateCardForm, status: int, usage: UsageSettingsForm | None = None
) -> Any:
    session = db_session()
    host = wholesale.get_host_by_code(session, code)
    return render_template(
        "console/host_detail.html",
        host=host,
        cards=wholesale.list_rate_cards(session, host_id=host.id or 0),
        current=wholesale.rate_card_on(session, host_id=host.id or 0, on=utcnow().date()),
        form=form,
        usage_form=usage or _usage_settings_form(host),
        usage_fields=USAGE_FIELDS,
        services=SERVICES,
    ), status


@bp.route("/hosts/<code>")
@staff_required("wholesale.view")
def host_detail(code: str) -> Any:
    return _render_host(code, RateCardForm(), 200)


@bp.route("/hosts/<code>/rate-cards", methods=["POST"])
@staff_required("wholesale.manage")
def rate_card_add(code: str) -> Any:
    session = db_session()
    host = wholesale.get_host_by_code(session, code)
    form = RateCardForm()
    if form.validate_on_submit():
        prices = {
            s: parse_field(form, f, parse_micro)
            for s, f in zip(SERVICES, PRICE_FIELDS, strict=True)
        }
        retail = {
            s: parse_field(form, f"retail_{f}", parse_micro)
            for s, f in zip(SERVICES, PRICE_FIELDS, strict=True)
        }
        if None not in prices.values() and None not in retail.values():
            try:
                wholesale.add_rate_card(
                    session,
                    host_id=host.id or 0,
                    effective_from=form.effective_from.data or utcnow().date(),
                    prices_micro={k: v for k, v in prices.items() if v is not None},
                    retail_micro={k: v for k, v in retail.items() if v is not None},
                    actor=current_actor(),
                    now=utcnow(),
                )
            except DomainError as exc:
                attach_error(form, exc)
            else:
                flash(_("Rate card added."), "success")
                return redirect(url_for("console.host_detail", code=host.code))
    return _render_host(code, form, 422)


class SecretForm(FlaskForm):
    secret = PasswordField(_l("New secret (16 to 200 characters)"), validators=[limit(200)])
    clear = BooleanField()


@bp.app_template_global()
def secret_hint(host: HostCarrier) -> str | None:
    """The last four characters of a host's provisioning secret, or None when unset."""
    secret = host.provisioning_secret
    return f"…{secret[-4:]}" if secret else None


@bp.route("/hosts/<code>/provisioning-secret", methods=["POST"])
@staff_required("wholesale.manage")
def host_secret(code: str) -> Any:
    host = wholesale.get_host_by_code(db_session(), code)
    back = redirect(url_for("console.host_detail", code=host.code, _anchor="secret"))
    form = SecretForm()
    if refused_form(form):
        return back
    value = None if form.clear.data else (form.secret.data or "")
    if value is not None and not value.strip():
        flash(_("Enter the new secret, or clear it."), "error")
        return back
    assert host.id is not None
    try:
        host = wholesale.set_provisioning_secret(
            db_session(), host_id=host.id, secret=value, actor=current_actor(), now=utcnow()
        )
    except DomainError as exc:
        flash_refusal(exc)
        return back
    if host.provisioning_secret:
        flash(
            _(
                "The provisioning secret of %(code)s is set (ending %(hint)s).",
                code=host.code,
                hint=host.provisioning_secret[-4:],
            ),
            "success",
        )
    else:
        flash(_("The provisioning secret of %(code)s is cleared.", code=host.code), "success")
    return back


# A refusal of set_usage_settings names `cdr_columns.<field>` or the tolerance; the
# form's fields carry the bare names.
def _usage_field(field: str | None) -> str | None:
    if field is None:
        return None
    name = field.removeprefix("cdr_columns.")
    return name if name in (*USAGE_FIELDS, "ignore") or name.startswith("reconcile_") else None


def _columns(form: UsageSettingsForm) -> dict[str, Any]:
    """The mapping as typed: the fields given a name of their own, and the ignore list."""
    columns: dict[str, Any] = {}
    for name in USAGE_FIELDS:
        value = (getattr(form, name).data or "").strip()
        if value and value != name:
            columns[name] = value
    ignore = [part.strip() for part in (form.ignore.data or "").split(",") if part.strip()]
    if ignore:
        columns["ignore"] = ignore
    return columns


@bp.route("/hosts/<code>/usage-settings", methods=["POST"])
@staff_required("wholesale.manage")
def host_usage_settings(code: str) -> Any:
    session = db_session()
    host = wholesale.get_host_by_code(session, code)
    form = UsageSettingsForm(prefix="usage")
    if form.validate_on_submit():
        amount = parse_field(form, "reconcile_amount_tolerance", parse_minor)
        if amount is not None:
            try:
                set_usage_settings(
                    session,
                    host_id=host.id or 0,
                    cdr_columns=_columns(form),
                    amount_tolerance_minor=amount,
                    quantity_tolerance_bp=form.reconcile_quantity_tolerance_bp.data or 0,
                    actor=current_actor(),
                    now=utcnow(),
                )
            except DomainError as exc:
                undo_refused(exc)
                name = _usage_field(exc.field)
                errors = getattr(form, name).errors if name else form.form_errors
                errors.append(localized(exc))
            else:
                flash(
                    _("Usage columns and tolerances of %(code)s saved.", code=host.code), "success"
                )
                return redirect(
                    url_for("console.host_detail", code=host.code, _anchor="usage-settings")
                )
    return _render_host(code, RateCardForm(formdata=None), 422, usage=form)
