"""The `mvno care` group: customer service settings — the SLA calendar (app/care/sla_calendar.py).

`mvno care holidays load --year Y [--country CN]` adds a year's public
holidays and make-up working days, keeping every date already set;
`list [--year Y]`, `add DATE --kind holiday|workday --name TEXT` (a new day
or a correction) and `remove DATE` manage single days. Dates are local
dates of `TIMEZONE`, written YYYY-MM-DD; a bad date, kind, name or year is
refused with one line and exit status 1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, fail, json_option, now_option, refusals
from app.core.audit import Actor

care_cli = AppGroup("care", help="Customer service: the SLA calendar.")
holidays_cli = AppGroup("holidays", help="Public holidays and make-up working days of SLA time.")
care_cli.add_command(holidays_cli)


def _year(text: str) -> int:
    from app.care.sla_calendar import FIRST_YEAR, LAST_YEAR, check_year

    if not text.strip().isdigit() or len(text.strip()) != 4:
        fail(f"--year: write a year from {FIRST_YEAR} to {LAST_YEAR}")
    return check_year(int(text))


def _day_out(row: Any) -> dict[str, Any]:
    return {"day": row.day.isoformat(), "kind": row.kind, "name": row.name, "source": row.source}


@holidays_cli.command("load")
@click.option("--year", "year_text", required=True, metavar="YYYY", help="The year to load.")
@click.option("--country", default="CN", show_default=True, help="ISO 3166 country code.")
@json_option
@now_option
@refusals
def holidays_load(year_text: str, country: str, as_json: bool, now: datetime) -> None:
    """Add a year's public holidays and make-up working days; days already set are kept."""
    from app.care.sla_calendar import load_public_holidays

    year = _year(year_text)
    with database().transaction() as session:
        report = load_public_holidays(
            session, country=country, year=year, actor=Actor.cli(), now=now
        ).as_dict()
    emit(
        report,
        as_json=as_json,
        text=(
            f"{report['country']} {report['year']}: {len(report['holidays'])} holidays and "
            f"{len(report['workdays'])} make-up working days added, "
            f"{len(report['kept'])} days already set kept"
        ),
    )


@holidays_cli.command("list")
@click.option("--year", "year_text", metavar="YYYY", help="Only this year's days.")
@json_option
@refusals
def holidays_list(year_text: str | None, as_json: bool) -> None:
    """The calendar's days in date order."""
    from app.care.sla_calendar import list_sla_days

    year = _year(year_text) if year_text is not None else None
    with database().transaction() as session:
        found = [_day_out(row) for row in list_sla_days(session, year=year)]
    text = "\n".join(f"{d['day']}  {d['kind']:<7}  {d['source']:<6}  {d['name']}" for d in found)
    emit({"days": found}, as_json=as_json, text=text or "no days in the SLA calendar")


@holidays_cli.command("add")
@click.argument("day_text", metavar="DATE")
@click.option(
    "--kind", required=True, help="holiday (no working hours) or workday (a weekend day worked)."
)
@click.option("--name", required=True, help="What the day is, at most 100 characters.")
@json_option
@now_option
@refusals
def holidays_add(day_text: str, kind: str, name: str, as_json: bool, now: datetime) -> None:
    """Set one day (YYYY-MM-DD), or correct a day already set."""
    from app.care.sla_calendar import parse_day, set_sla_day

    day = parse_day(day_text)
    with database().transaction() as session:
        row = _day_out(
            set_sla_day(session, day=day, kind=kind, name=name, actor=Actor.cli(), now=now)
        )
    emit(row, as_json=as_json, text=f"{row['day']} is a {row['kind']}: {row['name']}")


@holidays_cli.command("remove")
@click.argument("day_text", metavar="DATE")
@json_option
@now_option
@refusals
def holidays_remove(day_text: str, as_json: bool, now: datetime) -> None:
    """Take one day out of the calendar: it follows the working week again."""
    from app.care.sla_calendar import parse_day, remove_sla_day

    day = parse_day(day_text)
    with database().transaction() as session:
        remove_sla_day(session, day=day, actor=Actor.cli(), now=now)
    emit({"day": day.isoformat(), "removed": True}, as_json=as_json, text=f"{day} removed")
