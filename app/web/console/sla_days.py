"""Console pages of the SLA calendar (DESIGN §11), a section of the SLA targets page.

Everyone who reads the targets (`tickets.view`) sees a year's holidays and
make-up working days (`?year=`, this year in `TIMEZONE` by default); admins
(`sla_targets.manage`) add or correct a day, remove one, and load a year's
public holidays. Each change posts to its own route, calls one service and
goes back to the page at the calendar with a message; a refusal is flashed
and undoes the request's unit of work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from app.care import sla_calendar
from app.core.clock import utcnow
from app.core.errors import DomainError
from app.web import flash_refusal, label
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import refused_form
from app.web.context import current_actor, db_session, settings
from app.web.forms import ActionForm
from app.web.tickets import SlaDayForm, SlaLoadForm


def chosen_year(raw: str | None = None) -> int:
    """The year asked for (`?year=`), or this year in TIMEZONE when none or out of range."""
    raw = request.args.get("year", "") if raw is None else raw
    if raw.isdigit() and len(raw) == 4:
        year = int(raw)
        if sla_calendar.FIRST_YEAR <= year <= sla_calendar.LAST_YEAR:
            return year
    return datetime.now(ZoneInfo(settings().timezone)).year


def calendar_context() -> dict[str, Any]:
    """What the SLA targets page shows of the calendar: the year's days and the forms."""
    year = chosen_year()
    load_form = SlaLoadForm(formdata=None, prefix="load")
    load_form.year.data = year
    return {
        "year": year,
        "years": (max(year - 1, sla_calendar.FIRST_YEAR), min(year + 1, sla_calendar.LAST_YEAR)),
        "days": sla_calendar.list_sla_days(db_session(), year=year),
        "day_form": SlaDayForm(formdata=None, prefix="day"),
        "load_form": load_form,
    }


def _back(year: int) -> Any:
    return redirect(url_for("console.sla_targets", year=year, _anchor="calendar"))


@bp.route("/sla-calendar/days", methods=["POST"])
@staff_required("sla_targets.manage")
def sla_day_add() -> Any:
    form = SlaDayForm(prefix="day")
    if refused_form(form):
        return _back(chosen_year(request.form.get("year", "")))
    day = form.day.data
    assert day is not None
    try:
        sla_calendar.set_sla_day(
            db_session(),
            day=day,
            kind=form.kind.data or "",
            name=form.name.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        kind = label("sla_day_kind", form.kind.data or "")
        flash(_("%(day)s saved as %(kind)s.", day=day.isoformat(), kind=kind), "success")
    return _back(chosen_year(str(day.year)))


@bp.route("/sla-calendar/days/<day>/remove", methods=["POST"])
@staff_required("sla_targets.manage")
def sla_day_remove(day: str) -> Any:
    year = chosen_year(day[:4])
    if refused_form(ActionForm()):
        return _back(year)
    try:
        found = sla_calendar.parse_day(day[:10])
        sla_calendar.remove_sla_day(db_session(), day=found, actor=current_actor(), now=utcnow())
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(_("%(day)s removed from the calendar.", day=found.isoformat()), "success")
    return _back(year)


@bp.route("/sla-calendar/load", methods=["POST"])
@staff_required("sla_targets.manage")
def sla_days_load() -> Any:
    form = SlaLoadForm(prefix="load")
    if refused_form(form):
        return _back(chosen_year(request.form.get("load-year", "")))
    year = form.year.data or 0
    try:
        report = sla_calendar.load_public_holidays(
            db_session(),
            year=year,
            country=form.country.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        flash_refusal(exc)
    else:
        flash(
            _(
                "Public holidays of %(country)s for %(year)s loaded: %(holidays)s holidays and"
                " %(workdays)s make-up working days added, %(kept)s days already set kept.",
                country=report.country,
                year=year,
                holidays=len(report.holidays),
                workdays=len(report.workdays),
                kept=len(report.kept),
            ),
            "success",
        )
    return _back(year)
