"""Console pages of staff administration (DESIGN §14): staff users, one's own
password, API keys and the audit trail.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.api_keys import create_api_key, list_api_keys, revoke_api_key
from app.auth.services import (
    change_staff_password,
    create_staff,
    get_staff,
    list_staff,
    set_staff_active,
)
from app.core.audit import list_audit
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.web.auth import SignedIn, sign_in, staff_required
from app.web.console import bp
from app.web.context import current_actor, db_session
from app.web.forms import ActionForm, ApiKeyForm, PasswordChangeForm, StaffCreateForm, attach_error


@bp.route("/staff")
@staff_required("staff.view")
def staff_list() -> Any:
    return render_template(
        "console/staff.html",
        users=list_staff(db_session()),
        form=StaffCreateForm(),
        action_form=ActionForm(),
    )


@bp.route("/staff", methods=["POST"])
@staff_required("staff.manage")
def staff_create() -> Any:
    form = StaffCreateForm()
    if form.validate_on_submit():
        try:
            user = create_staff(
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
        users=list_staff(db_session()),
        form=form,
        action_form=ActionForm(),
    ), 422


@bp.route("/staff/<int:staff_id>/active", methods=["POST"])
@staff_required("staff.manage")
def staff_set_active(staff_id: int) -> Any:
    # CSRFProtect has already checked the token of every POST.
    active = request.form.get("active") == "1"
    user = set_staff_active(
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
            change_staff_password(
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
            user = get_staff(db_session(), current_user.id)
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
            _key, token = create_api_key(
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
        keys=list_api_keys(db_session()),
        form=form,
        token=token,
        action_form=ActionForm(),
    ), status


@bp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@staff_required("api_keys.manage")
def api_key_revoke(key_id: int) -> Any:
    key = revoke_api_key(db_session(), key_id=key_id, actor=current_actor(), now=utcnow())
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
