"""JSON API of the SLA calendar (DESIGN §11): public holidays and make-up working days.

`tickets.view` reads the calendar (care and auditors see why a ticket is
due when it is); `sla_targets.manage` (admins) sets and removes days and
loads a year's public holidays, as it edits the SLA targets. Days are local
dates of `TIMEZONE` (app/care/sla_calendar.py states the rules).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import RAISE

from app.care import sla_calendar
from app.care.models import SlaDay
from app.core.clock import utcnow
from app.web.api import bp
from app.web.api.security import requires
from app.web.api.tickets_schemas import (
    SlaDayIn,
    SlaDayList,
    SlaDayOut,
    SlaDayPath,
    SlaDayQuery,
    SlaLoadIn,
    SlaLoadOut,
)
from app.web.context import current_actor, db_session

CLOSED_409 = {409: "The change would leave more than 31 days in a row without working hours"}


def _day_out(row: SlaDay) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SlaDayOut().fields}


@bp.get("/sla-holidays")
@requires("tickets.view")
@bp.input(SlaDayQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(SlaDayList)
def sla_day_list(query: dict[str, Any]) -> Any:
    """The SLA calendar's holidays and make-up working days, in date order."""
    rows = sla_calendar.list_sla_days(db_session(), year=query.get("year"))
    return {"items": [_day_out(row) for row in rows]}


@bp.put("/sla-holidays/<isodate:day>")
@requires("sla_targets.manage")
@bp.input(SlaDayPath, location="path", arg_name="path")
@bp.input(SlaDayIn, arg_name="data")
@bp.output(SlaDayOut)
@bp.doc(responses=CLOSED_409)
def sla_day_put(day: str, path: dict[str, date], data: dict[str, Any]) -> Any:
    """Make a day a holiday or a make-up working day (a Saturday or Sunday), or correct it."""
    row = sla_calendar.set_sla_day(
        db_session(), day=path["day"], actor=current_actor(), now=utcnow(), **data
    )
    return _day_out(row)


@bp.delete("/sla-holidays/<isodate:day>")
@requires("sla_targets.manage")
@bp.input(SlaDayPath, location="path", arg_name="path")
@bp.output({}, status_code=204)
@bp.doc(responses={404: "The day is not in the calendar", **CLOSED_409})
def sla_day_delete(day: str, path: dict[str, date]) -> Any:
    """Take a day out of the calendar: it follows the working week again."""
    sla_calendar.remove_sla_day(db_session(), day=path["day"], actor=current_actor(), now=utcnow())
    return ""


@bp.post("/sla-holidays/load")
@requires("sla_targets.manage")
@bp.input(SlaLoadIn, arg_name="data")
@bp.output(SlaLoadOut)
@bp.doc(responses=CLOSED_409)
def sla_day_load(data: dict[str, Any]) -> Any:
    """Add a year's public holidays and make-up working days; days already set are kept."""
    report = sla_calendar.load_public_holidays(
        db_session(),
        year=data["year"],
        country=data["country"],
        actor=current_actor(),
        now=utcnow(),
    )
    return {
        "country": report.country,
        "year": report.year,
        "holidays": report.holidays,
        "workdays": report.workdays,
        "kept": report.kept,
    }
