"""Staff console. Each view parses a form, calls one service, renders."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.analytics.dashboard import dashboard_counts
from app.auth import services as auth
from app.core.audit import list_audit
from app.core.clock import utcnow
from app.core.errors import N_, DomainError
from app.web.auth import (
    SignedIn,
    login_page,
    sign_in,
    sign_out,
    staff_required,
)
from app.web.console import bp
from app.web.context import current_actor, db_session
from app.web.forms import (
    ActionForm,
    ApiKeyForm,
    PasswordChangeForm,
    StaffCreateForm,
    attach_error,
)

# Navigation: (endpoint, label, permission) — only pages that exist.
NAV: tuple[tuple[str, str, str], ...] = (
    ("console.dashboard", N_("Dashboard"), "dashboard.view"),
    ("console.numbers", N_("Numbers"), "numbers.view"),
    ("console.sims", N_("SIMs"), "numbers.view"),
    ("console.hosts", N_("Hosts"), "wholesale.view"),
    ("console.plan_list", N_("Plans"), "plans.view"),
    ("console.addons", N_("Add-ons"), "plans.view"),
    ("console.customers", N_("Customers"), "ledger.view"),
    ("console.payments_list", N_("Payments"), "ledger.view"),
    ("console.store_orders", N_("Store orders"), "orders.view"),
    ("console.refunds", N_("Refunds"), "payments.manage"),
    ("console.voucher_batches", N_("Vouchers"), "payments.manage"),
    ("console.provisioning", N_("Provisioning"), "provisioning.view"),
    ("console.notifications", N_("Notifications"), "notifications.view"),
    ("console.staff_list", N_("Staff"), "staff.view"),
    ("console.api_keys", N_("API keys"), "api_keys.manage"),
    ("console.audit", N_("Audit log"), "audit.view"),
)


@bp.app_context_processor
def console_nav() -> dict[str, Any]:
    if current_user.is_authenticated and current_user.kind == "staff":
        return {"console_nav": [(e, label) for e, label, p in NAV if current_user.can(p)]}
    return {"console_nav": []}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    return login_page(
        kind="staff", template="console/login.html", home_endpoint="console.dashboard"
    )


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    sign_out()
    return redirect(url_for("console.login"))


@bp.route("/")
@staff_required("dashboard.view")
def dashboard() -> Any:
    return render_template("console/dashboard.html", counts=dashboard_counts(db_session()))


@bp.route("/staff")
@staff_required("staff.view")
def staff_list() -> Any:
    return render_template(
        "console/staff.html",
        users=auth.list_staff(db_session()),
        form=StaffCreateForm(),
        action_form=ActionForm(),
    )


@bp.route("/staff", methods=["POST"])
@staff_required("staff.manage")
def staff_create() -> Any:
    form = StaffCreateForm()
    if form.validate_on_submit():
        try:
            user = auth.create_staff(
                db_session(),
                email=form.email.data or "",
                role=form.role.data or "",
                password=form.password.data or "",
                name=form.name.data or "",
                actor=current_actor(),
                now=utcnow(),
            )
        except DomainError as exc:
            attach_error(form, exc)
        else:
            flash(_("Staff user %(email)s created.", email=user.email), "success")
            return redirect(url_for("console.staff_list"))
    return render_template(
        "console/staff.html",
        users=auth.list_staff(db_session()),
        form=form,
        action_form=ActionForm(),
    ), 422


@bp.route("/staff/<int:staff_id>/active", methods=["POST"])
@staff_required("staff.manage")
def staff_set_active(staff_id: int) -> Any:
    # CSRFProtect has already checked the token of every POST.
    active = request.form.get("active") == "1"
    user = auth.set_staff_active(
        db_session(), staff_id=staff_id, active=active, actor=current_actor(), now=utcnow()
    )
    flash(
        _("%(email)s enabled.", email=user.email)
        if active
        else _("%(email)s disabled.", email=user.email),
        "success",
    )
    return redirect(url_for("console.staff_list"))


@bp.route("/password", methods=["GET", "POST"])
@staff_required("dashboard.view")
def password() -> Any:
    form = PasswordChangeForm()
    status = 200
    if form.validate_on_submit():
        try:
            auth.change_staff_password(
                db_session(),
                staff_id=current_user.id,
                current=form.current_password.data or "",
                new=form.new_password.data or "",
                now=utcnow(),
            )
        except DomainError as exc:
            attach_error(form, exc)
            status = 422
        else:
            user = auth.get_staff(db_session(), current_user.id)
            sign_in(SignedIn.from_staff(user))
            flash(_("Password changed. Other sessions have been signed out."), "success")
            return redirect(url_for("console.dashboard"))
    elif request.method == "POST":
        status = 422
    return render_template("console/password.html", form=form), status


@bp.route("/api-keys", methods=["GET", "POST"])
@staff_required("api_keys.manage")
def api_keys() -> Any:
    form = ApiKeyForm()
    token = None
    status = 200
    if form.validate_on_submit():
        try:
            _key, token = auth.create_api_key(
                db_session(),
                name=form.name.data or "",
                role=form.role.data or "",
                actor=current_actor(),
                now=utcnow(),
            )
        except DomainError as exc:
            attach_error(form, exc)
            status = 422
    elif request.method == "POST":
        status = 422
    return render_template(
        "console/api_keys.html",
        keys=auth.list_api_keys(db_session()),
        form=form,
        token=token,
        action_form=ActionForm(),
    ), status


@bp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@staff_required("api_keys.manage")
def api_key_revoke(key_id: int) -> Any:
    key = auth.revoke_api_key(db_session(), key_id=key_id, actor=current_actor(), now=utcnow())
    flash(_("Key %(prefix)s revoked.", prefix=key.prefix), "success")
    return redirect(url_for("console.api_keys"))


@bp.route("/audit")
@staff_required("audit.view")
def audit() -> Any:
    page = request.args.get("page", 1, type=int) or 1
    action = request.args.get("action") or None
    entries, total = list_audit(db_session(), page=page, per_page=50, action=action)
    return render_template(
        "console/audit.html", entries=entries, total=total, page=page, per_page=50, action=action
    )
