"""Console pages of what is sold (DESIGN §8): retail plans, their versions and margin,
and add-ons.
"""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core.clock import utcnow
from app.core.errors import N_, DomainError, InvalidInput
from app.core.money import parse_minor
from app.web import format_money_for_view, label, localized
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import host_choices, parse_field
from app.web.context import current_actor, db_session
from app.web.forms import ActionForm, AddOnForm, PlanForm, PublishForm, attach_error
from plans.addons import list_addons, set_addon_status, upsert_addon
from plans.errors import PlanNotFound
from plans.models import Plan
from plans.pricing import plan_margin
from plans.services import (
    create_plan,
    find_plan_by_code,
    get_plan,
    list_plan_versions,
    list_plans,
    publish_plan,
    retire_plan,
    update_plan,
)
from plans.terms import PlanInput, validate_plan_input


def _plan_input(form: PlanForm) -> PlanInput | None:
    price = parse_field(form, "price", parse_minor)
    overage = {
        name: parse_field(form, name, parse_minor)
        for name in ("overage_data_per_mb", "overage_voice_per_min", "overage_sms")
    }
    if price is None or None in overage.values():
        return None
    names = {k: v for k, v in (("zh_Hans", form.name_zh.data), ("en", form.name_en.data)) if v}
    descriptions = {
        k: v
        for k, v in (("zh_Hans", form.description_zh.data), ("en", form.description_en.data))
        if v
    }
    return PlanInput(
        code=form.code.data or "",
        names=names,
        descriptions=descriptions,
        host_id=form.host_id.data or 0,
        price_minor=price,
        validity_days=form.validity_days.data or 0,
        data_mb=form.data_mb.data or 0,
        voice_min=form.voice_min.data or 0,
        sms=form.sms.data or 0,
        overage_data_per_mb_minor=overage["overage_data_per_mb"] or 0,
        overage_voice_per_min_minor=overage["overage_voice_per_min"] or 0,
        overage_sms_minor=overage["overage_sms"] or 0,
        voice_increment_s=form.voice_increment_s.data or 60,
        auto_renew_default=bool(form.auto_renew_default.data),
    )


def _margin_or_none(plan: Plan) -> Any:
    try:
        return plan_margin(db_session(), plan=plan, on=utcnow().date())
    except DomainError:
        return None


@bp.route("/plans")
@staff_required("plans.view")
def plan_list() -> Any:
    rows = [(plan, _margin_or_none(plan)) for plan in list_plans(db_session())]
    return render_template("console/plans.html", rows=rows)


def _render_editor(form: PlanForm, plan: Plan | None, status: int) -> Any:
    versions = list_plan_versions(db_session(), code=plan.code) if plan else []
    return render_template(
        "console/plan_edit.html",
        form=form,
        plan=plan,
        versions=versions,
        margin=_margin_or_none(plan) if plan else None,
        publish_form=PublishForm(),
        action_form=ActionForm(),
    ), status


@bp.route("/plans/new", methods=["GET", "POST"])
@staff_required("plans.manage")
def plan_new() -> Any:
    form = PlanForm()
    form.host_id.choices = host_choices()
    if form.validate_on_submit():
        data = _plan_input(form)
        if data is not None:
            try:
                plan = create_plan(db_session(), data=data, actor=current_actor(), now=utcnow())
            except DomainError as exc:
                attach_error(form, exc)
            else:
                flash(_("Plan %(code)s created as a draft.", code=plan.code), "success")
                return redirect(url_for("console.plan_edit", code=plan.code))
        return _render_editor(form, None, 422)
    return _render_editor(form, None, 422 if request.method == "POST" else 200)


def _latest_plan(code: str) -> Plan:
    plan = find_plan_by_code(db_session(), code)
    if plan is None:
        raise PlanNotFound(N_("No plan %(code)s."), code=code)
    return plan


@bp.route("/plans/<code>")
@staff_required("plans.view")
def plan_edit(code: str) -> Any:
    plan = _latest_plan(code)
    form = _plan_form_from(plan)
    form.host_id.choices = host_choices()
    return _render_editor(form, plan, 200)


@bp.route("/plans/<code>", methods=["POST"])
@staff_required("plans.manage")
def plan_save(code: str) -> Any:
    plan = _latest_plan(code)
    form = PlanForm()
    form.host_id.choices = host_choices()
    form.code.data = code
    if form.validate_on_submit():
        data = _plan_input(form)
        if data is not None:
            try:
                updated = update_plan(
                    db_session(), code=code, data=data, actor=current_actor(), now=utcnow()
                )
            except DomainError as exc:
                attach_error(form, exc)
            else:
                if updated.version != plan.version:
                    flash(
                        _(
                            "Saved as version %(v)s (draft). Subscribers keep version %(old)s "
                            "until you publish.",
                            v=updated.version,
                            old=plan.version,
                        ),
                        "success",
                    )
                else:
                    flash(_("Plan saved."), "success")
                return redirect(url_for("console.plan_edit", code=code))
    return _render_editor(form, plan, 422)


def _plan_form_from(plan: Plan) -> PlanForm:
    from app.core.money import format_plain

    return PlanForm(
        data={
            "code": plan.code,
            "name_zh": plan.names.get("zh_Hans", ""),
            "name_en": plan.names.get("en", ""),
            "description_zh": plan.descriptions.get("zh_Hans", ""),
            "description_en": plan.descriptions.get("en", ""),
            "host_id": plan.host_id,
            "price": format_plain(plan.price_minor),
            "validity_days": plan.validity_days,
            "data_mb": plan.data_mb,
            "voice_min": plan.voice_min,
            "sms": plan.sms,
            "overage_data_per_mb": format_plain(plan.overage_data_per_mb_minor),
            "overage_voice_per_min": format_plain(plan.overage_voice_per_min_minor),
            "overage_sms": format_plain(plan.overage_sms_minor),
            "voice_increment_s": plan.voice_increment_s,
            "auto_renew_default": plan.auto_renew_default,
        }
    )


@bp.route("/plans/margin-preview", methods=["POST"])
@staff_required("plans.manage")
def plan_margin_preview() -> Any:
    """The margin of the terms in the editor, before saving (the editor's live figure)."""
    form = PlanForm()
    form.host_id.choices = host_choices()
    form.validate()
    data = _plan_input(form) if not form.price.errors else None
    if data is None:
        return jsonify({"ok": False, "message": _("Enter a price like 39.00.")}), 422
    try:
        validate_plan_input(data)
        preview = Plan(**data.model_dump(), created_at=utcnow())
        margin = plan_margin(db_session(), plan=preview, on=utcnow().date())
    except (DomainError, InvalidInput) as exc:
        return jsonify({"ok": False, "message": exc.message}), 422
    return jsonify(
        {
            "ok": True,
            "margin_minor": margin.margin_minor,
            "margin": format_money_for_view(margin.margin_minor),
            "negative": margin.margin_minor < 0,
        }
    )


@bp.route("/plans/versions/<int:plan_id>/publish", methods=["POST"])
@staff_required("plans.manage")
def plan_publish(plan_id: int) -> Any:
    form = PublishForm()
    plan = get_plan(db_session(), plan_id)
    try:
        publish_plan(
            db_session(),
            plan_id=plan_id,
            override_negative_margin=bool(form.override_negative_margin.data),
            reason=form.reason.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash(localized(exc), "error")
    else:
        flash(_("Version %(v)s of %(code)s is on sale.", v=plan.version, code=plan.code), "success")
    return redirect(url_for("console.plan_edit", code=plan.code))


@bp.route("/plans/versions/<int:plan_id>/retire", methods=["POST"])
@staff_required("plans.manage")
def plan_retire(plan_id: int) -> Any:
    plan = retire_plan(db_session(), plan_id=plan_id, actor=current_actor(), now=utcnow())
    flash(
        _(
            "Version %(v)s of %(code)s retired; its subscribers keep its terms.",
            v=plan.version,
            code=plan.code,
        ),
        "success",
    )
    return redirect(url_for("console.plan_edit", code=plan.code))


def _render_addons(form: AddOnForm, status: int) -> Any:
    return render_template(
        "console/addons.html",
        addons=list_addons(db_session()),
        form=form,
        action_form=ActionForm(),
    ), status


@bp.route("/addons")
@staff_required("plans.view")
def addons() -> Any:
    return _render_addons(AddOnForm(), 200)


@bp.route("/addons", methods=["POST"])
@staff_required("plans.manage")
def addon_save() -> Any:
    form = AddOnForm()
    if form.validate_on_submit():
        price = parse_field(form, "price", parse_minor)
        if price is not None:
            names = {
                k: v for k, v in (("zh_Hans", form.name_zh.data), ("en", form.name_en.data)) if v
            }
            try:
                existing = {a.code: a for a in list_addons(db_session())}
                addon = upsert_addon(
                    db_session(),
                    code=form.code.data or "",
                    names=names,
                    price_minor=price,
                    data_mb=form.data_mb.data or 0,
                    status=existing[form.code.data].status
                    if form.code.data in existing
                    else "draft",
                    actor=current_actor(),
                    now=utcnow(),
                )
            except DomainError as exc:
                attach_error(form, exc)
            else:
                flash(_("Add-on %(code)s saved.", code=addon.code), "success")
                return redirect(url_for("console.addons"))
    return _render_addons(form, 422)


@bp.route("/addons/<code>/status", methods=["POST"])
@staff_required("plans.manage")
def addon_status(code: str) -> Any:
    addon = set_addon_status(
        db_session(),
        code=code,
        status=request.form.get("status", ""),
        actor=current_actor(),
        now=utcnow(),
    )
    flash(
        _(
            "Add-on %(code)s is now %(status)s.",
            code=addon.code,
            status=label("plan_status", addon.status),
        ),
        "success",
    )
    return redirect(url_for("console.addons"))
