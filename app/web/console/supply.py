"""Console pages of the supply side: numbers, SIMs, hosts and rate cards, plans."""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core.clock import utcnow
from app.core.errors import N_, DomainError, InvalidInput
from app.core.money import parse_micro, parse_minor
from app.web import format_money_for_view, label, localized
from app.web.auth import staff_required
from app.web.console import bp
from app.web.context import current_actor, db_session
from app.web.forms import (
    PRICE_FIELDS,
    ActionForm,
    AddOnForm,
    GoldenTierForm,
    HostForm,
    NumberBlockForm,
    NumberSearchForm,
    PlanForm,
    PublishForm,
    RateCardForm,
    SimImportForm,
    attach_error,
)
from numbering.blocks import add_number_block, list_blocks
from numbering.errors import SimImportRejected
from numbering.search import search_numbers
from numbering.sim_import import import_sims
from numbering.sims import count_sims_by_status, list_sims
from numbering.tiers import list_tiers, set_tier_surcharge
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
from wholesale import services as wholesale
from wholesale.models import SERVICES


def _host_choices() -> list[tuple[int, str]]:
    return [(h.id or 0, f"{h.code} — {h.name}") for h in wholesale.list_hosts(db_session())]


def _parse(form: Any, name: str, parse: Any) -> int | None:
    """Parse a decimal form field, putting a refusal beside the field."""
    field = getattr(form, name)
    try:
        return int(parse(field.data or ""))
    except ValueError as exc:
        field.errors = [*field.errors, str(exc)]
        return None


# -- numbers ------------------------------------------------------------------------------


@bp.route("/numbers")
@staff_required("numbers.view")
def numbers() -> Any:
    session = db_session()
    block_form = NumberBlockForm()
    block_form.host_id.choices = _host_choices()
    return render_template(
        "console/numbers.html",
        blocks=list_blocks(session),
        tiers=list_tiers(session),
        block_form=block_form,
        tier_form=GoldenTierForm(),
    )


@bp.route("/numbers/blocks", methods=["POST"])
@staff_required("numbers.manage")
def number_block_add() -> Any:
    form = NumberBlockForm()
    form.host_id.choices = _host_choices()
    if form.validate_on_submit():
        try:
            block = add_number_block(
                db_session(),
                host_id=form.host_id.data or 0,
                first=form.first.data or "",
                last=form.last.data or "",
                actor=current_actor(),
                now=utcnow(),
            )
        except DomainError as exc:
            attach_error(form, exc)
        else:
            flash(
                _(
                    "Block %(first)s – %(last)s loaded: %(size)s numbers.",
                    first=block.first,
                    last=block.last,
                    size=block.size,
                ),
                "success",
            )
            return redirect(url_for("console.numbers"))
    session = db_session()
    return render_template(
        "console/numbers.html",
        blocks=list_blocks(session),
        tiers=list_tiers(session),
        block_form=form,
        tier_form=GoldenTierForm(),
    ), 422


@bp.route("/numbers/tiers/<code>", methods=["POST"])
@staff_required("numbers.manage")
def golden_tier_update(code: str) -> Any:
    form = GoldenTierForm()
    surcharge = _parse(form, "surcharge", parse_minor) if form.validate_on_submit() else None
    if surcharge is None:
        errors = [*form.surcharge.errors] or [_("Give the surcharge as an amount like 88.00.")]
        flash("; ".join(str(e) for e in errors), "error")
    else:
        set_tier_surcharge(
            db_session(),
            code=code,
            surcharge_minor=surcharge,
            enabled=bool(form.enabled.data),
            actor=current_actor(),
            now=utcnow(),
        )
        flash(_("Tier %(code)s updated.", code=code), "success")
    return redirect(url_for("console.numbers"))


@bp.route("/numbers/search")
@staff_required("numbers.view")
def number_search() -> Any:
    session = db_session()
    form = NumberSearchForm(request.args)
    form.tier.choices = [("", _("any"))] + [(t.code, t.code) for t in list_tiers(session)]
    page = request.args.get("page", 1, type=int) or 1
    results = None
    status = 200
    if request.args and form.validate():
        try:
            results = search_numbers(
                session,
                pattern=form.pattern.data or "",
                mode=form.mode.data or "ends_with",
                tier=form.tier.data or None,
                now=utcnow(),
                page=page,
                per_page=50,
            )
        except DomainError as exc:
            attach_error(form, exc)
            status = 422
    return render_template("console/number_search.html", form=form, results=results), status


# -- SIMs ---------------------------------------------------------------------------------


def _render_sims(form: SimImportForm, rejects: Any, status: int) -> Any:
    session = db_session()
    page = request.args.get("page", 1, type=int) or 1
    filter_status = request.args.get("status") or None
    filter_kind = request.args.get("kind") or None
    try:
        items, total = list_sims(
            session, status=filter_status, kind=filter_kind, page=page, per_page=50
        )
    except DomainError:
        items, total = [], 0
    return render_template(
        "console/sims.html",
        form=form,
        rejects=rejects,
        sims=items,
        total=total,
        page=page,
        counts=count_sims_by_status(session),
        filter_status=filter_status,
        filter_kind=filter_kind,
    ), status


@bp.route("/sims")
@staff_required("numbers.view")
def sims() -> Any:
    form = SimImportForm()
    form.host_id.choices = _host_choices()
    return _render_sims(form, None, 200)


@bp.route("/sims", methods=["POST"])
@staff_required("numbers.manage")
def sims_import() -> Any:
    form = SimImportForm()
    form.host_id.choices = _host_choices()
    rejects = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            text = upload.read().decode("utf-8-sig")
            report = import_sims(
                db_session(),
                text=text,
                filename=upload.filename or "upload.csv",
                host_id=form.host_id.data or 0,
                actor=current_actor(),
                now=utcnow(),
            )
        except UnicodeDecodeError:
            form.file.errors = [_("The file is not UTF-8 text.")]
        except SimImportRejected as exc:
            rejects = exc.rejects
            attach_error(form, exc)
        except DomainError as exc:
            attach_error(form, exc)
        else:
            flash(_("%(count)s SIMs imported.", count=report.imported), "success")
            return redirect(url_for("console.sims"))
    return _render_sims(form, rejects, 422)


# -- hosts and rate cards -----------------------------------------------------------------


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


def _render_host(code: str, form: RateCardForm, status: int) -> Any:
    session = db_session()
    host = wholesale.get_host_by_code(session, code)
    return render_template(
        "console/host_detail.html",
        host=host,
        cards=wholesale.list_rate_cards(session, host_id=host.id or 0),
        current=wholesale.rate_card_on(session, host_id=host.id or 0, on=utcnow().date()),
        form=form,
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
            s: _parse(form, f, parse_micro) for s, f in zip(SERVICES, PRICE_FIELDS, strict=True)
        }
        retail = {
            s: _parse(form, f"retail_{f}", parse_micro)
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


# -- plans --------------------------------------------------------------------------------


def _plan_input(form: PlanForm) -> PlanInput | None:
    price = _parse(form, "price", parse_minor)
    overage = {
        name: _parse(form, name, parse_minor)
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
    form.host_id.choices = _host_choices()
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
    form.host_id.choices = _host_choices()
    return _render_editor(form, plan, 200)


@bp.route("/plans/<code>", methods=["POST"])
@staff_required("plans.manage")
def plan_save(code: str) -> Any:
    plan = _latest_plan(code)
    form = PlanForm()
    form.host_id.choices = _host_choices()
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
    form.host_id.choices = _host_choices()
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


# -- add-ons ------------------------------------------------------------------------------


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
        price = _parse(form, "price", parse_minor)
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
