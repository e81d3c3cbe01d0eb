"""Planning, announcing and cancelling a market exit (DESIGN §12).

Rules:

* The exit instant is 00:00 of the exit date in `TIMEZONE`.
* Notice: the exit date must be at least `notice_days` away (default 90,
  never under 30), checked when the exit is planned and again when it is
  announced — a draft left lying cannot shorten the notice.
* One exit at a time: planning again while a draft exists re-plans that
  draft; an announced, executed or completed exit refuses a new plan.
* Announcing stops sales and lowers the cap (the policies in
  `handlers.py` read the announced exit), notifies every customer with an
  address in their language with a link to choose, and produces the
  regulator report (`files.regulator_report`).
* Cancelling is allowed from draft or announced; sales and the cap are
  back to normal at once.
Every step is audited.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from app.core.audit import Actor, record_audit
from app.core.db import lock_by_id
from app.core.errors import N_, InvalidInput
from app.exit.errors import ExitNotFound, ExitRefused
from app.exit.models import (
    DEFAULT_NOTICE_DAYS,
    LIVE_EXIT_STATES,
    MAX_NOTICE_DAYS,
    MIN_NOTICE_DAYS,
    MarketExit,
)


def exit_instant(exit_date: date, timezone: str) -> datetime:
    """00:00 of `exit_date` in `timezone`, in UTC."""
    local = datetime.combine(exit_date, time(0), tzinfo=ZoneInfo(timezone))
    return local.astimezone(ZoneInfo("UTC"))


def current_exit(session: Session) -> MarketExit | None:
    """The exit in progress or done (not cancelled), if any."""
    return session.exec(
        select(MarketExit)
        .where(col(MarketExit.state).in_(LIVE_EXIT_STATES))
        .order_by(col(MarketExit.id).desc())
    ).first()


def announced_exit(session: Session) -> MarketExit | None:
    """The announced exit whose execution has not happened yet, if any."""
    return session.exec(select(MarketExit).where(MarketExit.state == "announced")).first()


def get_current_exit(session: Session) -> MarketExit:
    """The exit in progress or done. :raises ExitNotFound: none is planned."""
    found = current_exit(session)
    if found is None:
        raise ExitNotFound(N_("No market exit is planned."))
    return found


def lock_current_exit(session: Session) -> MarketExit:
    """The exit in progress, locked for a change. :raises ExitNotFound: none is planned."""
    found = get_current_exit(session)
    assert found.id is not None
    locked = lock_by_id(session, MarketExit, found.id)
    assert locked is not None
    return locked


def _notice_days(value: int | None) -> int:
    if value is None:
        return DEFAULT_NOTICE_DAYS
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_NOTICE_DAYS:
        raise InvalidInput(
            N_("The notice period is at least %(days)s days."),
            field="notice_days",
            days=MIN_NOTICE_DAYS,
        )
    if value > MAX_NOTICE_DAYS:
        raise InvalidInput(
            N_("The notice period is at most %(days)s days."),
            field="notice_days",
            days=MAX_NOTICE_DAYS,
        )
    return value


def earliest_exit_date(notice_days: int, *, timezone: str, now: datetime) -> date:
    """The first exit date whose instant is at least `notice_days` after `now`."""
    first = now + timedelta(days=notice_days)
    day = first.astimezone(ZoneInfo(timezone)).date()
    return day if exit_instant(day, timezone) >= first else day + timedelta(days=1)


def check_notice(exit_at: datetime, notice_days: int, *, timezone: str, now: datetime) -> None:
    """Refuse an exit instant less than `notice_days` after `now`.

    :raises ExitRefused: naming the earliest exit date allowed.
    """
    if exit_at - now < timedelta(days=notice_days):
        earliest = earliest_exit_date(notice_days, timezone=timezone, now=now)
        raise ExitRefused(
            N_(
                "The exit date must be at least %(days)s days away;"
                " the earliest allowed now is %(earliest)s."
            ),
            field="exit_date",
            days=notice_days,
            earliest=earliest.isoformat(),
        )


def plan_exit(
    session: Session,
    *,
    exit_date: date,
    notice_days: int | None,
    timezone: str,
    actor: Actor,
    now: datetime,
) -> MarketExit:
    """Plan the exit (or re-plan the draft): its date and notice period.

    :raises InvalidInput: a notice period under 30 days.
    :raises ExitRefused: the date is too close, or an exit is already announced or done.
    """
    days = _notice_days(notice_days)
    try:
        exit_at = exit_instant(exit_date, timezone)
    except OverflowError:
        # 0001-01-01 east of UTC (or 9999-12-31 west of it) has no UTC instant.
        raise InvalidInput(
            N_("%(date)s is not a date an exit can be planned for."),
            field="exit_date",
            date=exit_date.isoformat(),
        ) from None
    check_notice(exit_at, days, timezone=timezone, now=now)
    found = current_exit(session)
    if found is not None and found.state != "draft":
        raise ExitRefused(
            N_("A market exit is already %(state)s; cancel it before planning another."),
            state=found.state,
        )
    if found is None:
        found = MarketExit(
            exit_date=exit_date,
            exit_at=exit_at,
            notice_days=days,
            created_at=now,
            created_by=actor.label or actor.kind,
        )
    else:
        found.exit_date, found.exit_at, found.notice_days = exit_date, exit_at, days
    session.add(found)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="exit.plan",
        now=now,
        target_type="market_exit",
        target_id=found.id,
        details={"exit_date": exit_date.isoformat(), "notice_days": days},
    )
    return found


def announce_exit(session: Session, *, timezone: str, actor: Actor, now: datetime) -> MarketExit:
    """Announce the planned exit: sales stop and the cap drops from now.

    The caller notifies the customers and writes the regulator report in the
    same transaction (`notices.notify_customers`, `files.regulator_report`).
    Idempotent: an announced exit is returned as it is.
    :raises ExitNotFound: nothing is planned.
    :raises ExitRefused: the exit is past announcing, or its notice is now too short.
    """
    found = lock_current_exit(session)
    if found.state == "announced":
        return found
    if found.state != "draft":
        raise ExitRefused(N_("The market exit is already %(state)s."), state=found.state)
    check_notice(found.exit_at, found.notice_days, timezone=timezone, now=now)
    found.state = "announced"
    found.announced_at = now
    found.announced_by = actor.label or actor.kind
    session.add(found)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="exit.announce",
        now=now,
        target_type="market_exit",
        target_id=found.id,
        details={"exit_date": found.exit_date.isoformat()},
    )
    return found


def cancel_exit(session: Session, *, reason: str, actor: Actor, now: datetime) -> MarketExit:
    """Cancel the exit before its execution; sales and the cap are as before at once.

    :raises ExitNotFound: nothing is planned.
    :raises ExitRefused: the exit was executed.
    """
    found = lock_current_exit(session)
    if found.state not in ("draft", "announced"):
        raise ExitRefused(
            N_("The market exit was executed; it cannot be cancelled."), state=found.state
        )
    before = found.state
    found.state = "cancelled"
    found.cancelled_at = now
    found.cancelled_by = actor.label or actor.kind
    session.add(found)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="exit.cancel",
        now=now,
        target_type="market_exit",
        target_id=found.id,
        details={"from": before, "reason": reason},
    )
    return found
