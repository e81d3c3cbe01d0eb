"""The SLA calendar: public holidays and make-up working days (DESIGN §11).

Rules:

* **One row per local date** of `TIMEZONE` (`SlaDay`): a `holiday` has no
  working hours; a `workday` is a Saturday or Sunday worked 09:00–18:00 (a
  make-up working day, 调休). A date without a row follows the week:
  Monday to Friday. app/care/sla.py does the arithmetic on the
  `WorkCalendar` read here (`work_calendar`, one query of two columns).
* **Public holidays** of a country and year come from the `holidays`
  library, with their names in the country's own language (中文 for CN):
  its holidays and — for CN — the weekend days the State Council declares
  working days. Loading inserts only dates not set yet (`ON CONFLICT DO
  NOTHING`): a day staff added or edited, or one loaded before, is kept as
  it is, so loading a year twice changes nothing. The library knows a
  year's make-up days once they are published (each December for the
  next year); before that a load brings the fixed holidays only, and
  loading again later adds what is new.
* **Admins** set one day (a new one, or a correction of any) and remove one.
* **Never closed for long.** A change that would leave more than
  `MAX_DAYS_OFF_IN_A_ROW` days in a row without working hours is refused
  (`SlaCalendarClosed`): no care desk closes for a month, and a due instant
  must always be found.
* **Years** 2000 to 2099. Changes already made leave the due instants of open
  tickets as they were; the calendar counts from the next ticket opened
  or pause ended.

Every change is audited (`sla_day.set`, `sla_day.remove`, `sla_day.load`,
target the ISO date) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.care.errors import SlaCalendarClosed, SlaDayInvalid, SlaDayNotFound
from app.care.models import SLA_DAY_KINDS, SLA_DAY_NAME_MAX, SlaDay
from app.care.sla import WorkCalendar
from app.core.audit import Actor, AuditEntry, audit_row, record_audit
from app.core.db import insert_rows, insert_unique
from app.core.errors import N_, Conflict, clean_text

FIRST_YEAR, LAST_YEAR = 2000, 2099
MAX_DAYS_OFF_IN_A_ROW = 31
DEFAULT_COUNTRY = "CN"
WEEKEND = (5, 6)
# The library names holidays, not the weekend days worked instead: these are our names,
# by the library's language for the country.
WORKDAY_NAMES = {"zh_CN": "调休上班", "zh_TW": "補班"}
WORKDAY_NAME = "Make-up working day"


class SlaDayTaken(Conflict):
    """The day was set by someone else at the same moment."""

    code = "sla_day_taken"


@dataclass(frozen=True)
class LoadReport:
    """What loading a country's public holidays for a year did."""

    country: str
    year: int
    holidays: list[date] = field(default_factory=list)
    workdays: list[date] = field(default_factory=list)
    kept: list[date] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "year": self.year,
            "holidays": [d.isoformat() for d in self.holidays],
            "workdays": [d.isoformat() for d in self.workdays],
            "kept": [d.isoformat() for d in self.kept],
        }


def check_year(year: int) -> int:
    """The year, if the calendar covers it. :raises SlaDayInvalid: outside 2000–2099."""
    if isinstance(year, bool) or not isinstance(year, int) or not FIRST_YEAR <= year <= LAST_YEAR:
        raise SlaDayInvalid(
            N_("Choose a year from %(first)s to %(last)s."),
            field="year",
            first=FIRST_YEAR,
            last=LAST_YEAR,
        )
    return year


def parse_day(text: str) -> date:
    """A date written YYYY-MM-DD. :raises SlaDayInvalid: another form, or no such date."""
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise SlaDayInvalid(N_("Write the date as YYYY-MM-DD."), field="day")
    return day


def work_calendar(session: Session) -> WorkCalendar:
    """The whole calendar as the SLA arithmetic reads it (one query)."""
    holidays: set[date] = set()
    workdays: set[date] = set()
    for day, kind in session.execute(sa_select(col(SlaDay.day), col(SlaDay.kind))):
        (holidays if kind == "holiday" else workdays).add(day)
    return WorkCalendar(frozenset(holidays), frozenset(workdays))


def list_sla_days(session: Session, *, year: int | None = None) -> list[SlaDay]:
    """The calendar's days in date order; with `year`, that year's only."""
    query = select(SlaDay)
    if year is not None:
        query = query.where(
            col(SlaDay.day) >= date(year, 1, 1), col(SlaDay.day) <= date(year, 12, 31)
        )
    return list(session.exec(query.order_by(col(SlaDay.day))))


def days_off_around(calendar: WorkCalendar, day: date) -> int:
    """How many days in a row without working hours include `day` (0 on a working day).

    Counts at most `MAX_DAYS_OFF_IN_A_ROW` + 1 on each side.
    """
    if calendar.is_working_day(day):
        return 0
    run = 1
    for step in (timedelta(days=-1), timedelta(days=1)):
        other = day + step
        for _ in range(MAX_DAYS_OFF_IN_A_ROW + 1):
            if calendar.is_working_day(other):
                break
            run += 1
            other += step
    return run


def _refuse_long_closures(calendar: WorkCalendar, days: Iterable[date]) -> None:
    for day in sorted(days):
        if days_off_around(calendar, day) > MAX_DAYS_OFF_IN_A_ROW:
            raise SlaCalendarClosed(
                N_(
                    "That would leave more than %(max)s days in a row without working hours"
                    " around %(day)s."
                ),
                field="day",
                max=MAX_DAYS_OFF_IN_A_ROW,
                day=day.isoformat(),
            )


def _check_day(day: date, kind: str, name: str) -> str:
    check_year(day.year)
    if kind not in SLA_DAY_KINDS:
        raise SlaDayInvalid(N_("Unknown kind of day %(value)s."), field="kind", value=kind)
    if kind == "workday" and day.weekday() not in WEEKEND:
        raise SlaDayInvalid(
            N_("A make-up working day is a Saturday or a Sunday; %(day)s is a weekday."),
            field="kind",
            day=day.isoformat(),
        )
    return clean_text(name, field="name", max_length=SLA_DAY_NAME_MAX, required=True)


def _amended(calendar: WorkCalendar, day: date, kind: str | None) -> WorkCalendar:
    holidays = calendar.holidays - {day}
    workdays = calendar.workdays - {day}
    if kind == "holiday":
        holidays |= {day}
    elif kind == "workday":
        workdays |= {day}
    return WorkCalendar(holidays, workdays)


def _locked(session: Session, day: date) -> SlaDay | None:
    return session.exec(
        select(SlaDay)
        .where(SlaDay.day == day)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _snapshot(row: SlaDay | None) -> dict[str, str] | None:
    return None if row is None else {"kind": row.kind, "name": row.name, "source": row.source}


def set_sla_day(
    session: Session, *, day: date, kind: str, name: str, actor: Actor, now: datetime
) -> SlaDay:
    """Make `day` a holiday or a make-up working day, named; a day set before is corrected.

    Locks the day's row; audited with what it was. Idempotent for the same values.
    :raises SlaDayInvalid: a year outside 2000–2099, an unknown kind, a
        workday that is not a Saturday or Sunday, or a bad name.
    :raises SlaCalendarClosed: more than 31 days in a row off.
    :raises SlaDayTaken: set at the same moment by someone else.
    """
    text = _check_day(day, kind, name)
    _refuse_long_closures(_amended(work_calendar(session), day, kind), [day])
    row = _locked(session, day)
    before = _snapshot(row)
    if row is None:
        row = SlaDay(day=day, kind=kind, name=text, source="staff", updated_at=now)
        insert_unique(session, row, SlaDayTaken(N_("%(day)s was just set; try again."), day=day))
    elif before == {"kind": kind, "name": text, "source": "staff"}:
        return row
    else:
        row.kind, row.name, row.source, row.updated_at = kind, text, "staff", now
        session.add(row)
        session.flush()
    record_audit(
        session,
        actor=actor,
        action="sla_day.set",
        now=now,
        target_type="sla_day",
        target_id=day.isoformat(),
        details={"kind": kind, "name": text, "before": before},
    )
    return row


def remove_sla_day(session: Session, *, day: date, actor: Actor, now: datetime) -> None:
    """Take a day out of the calendar: it follows the week again. Locks it; audited.

    :raises SlaDayNotFound: the day is not in the calendar.
    :raises SlaCalendarClosed: removing a make-up day would close the desk too long.
    """
    row = _locked(session, day)
    if row is None:
        raise SlaDayNotFound(N_("%(day)s is not in the SLA calendar."), day=day.isoformat())
    _refuse_long_closures(_amended(work_calendar(session), day, None), [day])
    before = _snapshot(row)
    session.delete(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="sla_day.remove",
        now=now,
        target_type="sla_day",
        target_id=day.isoformat(),
        details={"before": before},
    )


def public_holiday_countries() -> list[str]:
    """The two-letter country codes (ISO 3166-1) whose public holidays can be loaded, sorted."""
    import holidays

    return sorted(code for code in holidays.list_supported_countries() if len(code) == 2)


@dataclass(frozen=True)
class PublicDays:
    """A country's public holidays of a year by date, named in its own language, and
    the weekend days worked instead (CN's 调休) with the name they are given."""

    holidays: dict[date, str]
    workdays: frozenset[date]
    workday_name: str


def public_days(country: str, year: int) -> PublicDays:
    """A country's public days of `year` from the `holidays` library.

    :raises SlaDayInvalid: an unknown country, or a year outside 2000–2099 or
        outside the years the library knows for the country.
    """
    import holidays

    check_year(year)
    code = (country or "").strip().upper()
    if code not in public_holiday_countries():
        raise SlaDayInvalid(
            N_("No public holidays are known for %(value)s."), field="country", value=country[:10]
        )
    known = holidays.country_holidays(code)
    if not known.start_year <= year <= known.end_year:
        raise SlaDayInvalid(
            N_("The public holidays of %(country)s are known from %(first)s to %(last)s."),
            field="year",
            country=code,
            first=known.start_year,
            last=known.end_year,
        )
    language = known.default_language
    # The neighbouring years too: a make-up day can be declared in the next year's schedule.
    years = [y for y in (year - 1, year, year + 1) if known.start_year <= y <= known.end_year]
    entity = holidays.country_holidays(code, years=years, language=language)
    names = {day: str(name)[:SLA_DAY_NAME_MAX] for day, name in entity.items() if day.year == year}
    workdays = frozenset(day for day in entity.weekend_workdays if day.year == year) - set(names)
    return PublicDays(names, workdays, WORKDAY_NAMES.get(str(language), WORKDAY_NAME))


def load_public_holidays(
    session: Session, *, year: int, actor: Actor, now: datetime, country: str = DEFAULT_COUNTRY
) -> LoadReport:
    """Add a country's public holidays and make-up working days of `year` to the calendar.

    Dates already in the calendar are kept as they are (`kept`). Idempotent;
    each day added is audited. :raises SlaDayInvalid: an unknown country, or
    a year outside 2000–2099. :raises SlaCalendarClosed: the days added would
    close the desk for more than 31 days in a row.
    """
    found = public_days(country, year)
    code = country.strip().upper()
    wanted = {day: ("holiday", name) for day, name in found.holidays.items()}
    wanted.update({day: ("workday", found.workday_name) for day in found.workdays})
    calendar = work_calendar(session)
    already = calendar.holidays | calendar.workdays
    new = {day: value for day, value in wanted.items() if day not in already}
    new_holidays = {day for day, (kind, _name) in new.items() if kind == "holiday"}
    amended = WorkCalendar(
        calendar.holidays | new_holidays, calendar.workdays | (set(new) - new_holidays)
    )
    _refuse_long_closures(amended, new_holidays)
    added = _insert_new(session, new, now=now)
    rows = [
        audit_row(
            actor,
            "sla_day.load",
            now,
            target_type="sla_day",
            target_id=day.isoformat(),
            details={"kind": new[day][0], "name": new[day][1], "country": code, "year": year},
        )
        for day in sorted(added)
    ]
    insert_rows(session, AuditEntry.__table__, rows)  # type: ignore[attr-defined]
    return LoadReport(
        code,
        year,
        holidays=sorted(added & new_holidays),
        workdays=sorted(added - new_holidays),
        kept=sorted(set(wanted) - added),
    )


def _insert_new(session: Session, new: dict[date, tuple[str, str]], *, now: datetime) -> set[date]:
    """Insert the days not set yet in one statement; the dates actually inserted."""
    if not new:
        return set()
    table = SlaDay.__table__  # type: ignore[attr-defined]
    values = [
        {"day": day, "kind": kind, "name": name, "source": "public", "updated_at": now}
        for day, (kind, name) in sorted(new.items())
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["day"])
        .returning(table.c.day)
    )
    return {row[0] for row in session.connection().execute(statement)}
