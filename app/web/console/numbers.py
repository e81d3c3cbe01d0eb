"""Console pages of numbers and SIMs (DESIGN §6): number blocks, golden tiers, the
number search and SIM stock with its import.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.core.money import parse_minor
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import host_choices, parse_field
from app.web.context import current_actor, db_session
from app.web.forms import (
    GoldenTierForm,
    NumberBlockForm,
    NumberSearchForm,
    SimImportForm,
    attach_error,
)
from numbering.blocks import add_number_block, list_blocks
from numbering.errors import SimImportRejected
from numbering.search import search_numbers
from numbering.sim_import import import_sims
from numbering.sims import count_sims_by_status, list_sims
from numbering.tiers import list_tiers, set_tier_surcharge


@bp.route("/numbers")
@staff_required("numbers.view")
def numbers() -> Any:
    session = db_session()
    block_form = NumberBlockForm()
    block_form.host_id.choices = host_choices()
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
    form.host_id.choices = host_choices()
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
    surcharge = parse_field(form, "surcharge", parse_minor) if form.validate_on_submit() else None
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
    form.host_id.choices = host_choices()
    return _render_sims(form, None, 200)


@bp.route("/sims", methods=["POST"])
@staff_required("numbers.manage")
def sims_import() -> Any:
    form = SimImportForm()
    form.host_id.choices = host_choices()
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
