"""Each subscriber's choice at a market exit: transfer to the host or terminate and refund.

Rules (DESIGN §12):

* A choice is made per line once the exit is announced and until its
  instant, and may be changed until then; the latest counts.
* The subscriber chooses in self-care for the lines of their own customer;
  staff may record a choice the subscriber gave by phone, with the agent's
  note (required). Both are audited with the choice before and after.
* No choice means terminate and refund — and the subscriber's personal data
  goes to the host only for a line whose subscriber chose transfer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.errors import N_, Forbidden, InvalidInput, clean_text
from app.exit.errors import ExitRefused
from app.exit.models import CHOICES, ExitChoice, MarketExit
from app.exit.schedule import get_current_exit
from app.subscribers.models import FINAL_LINE_STATUSES, Line
from app.subscribers.services import get_line_by_msisdn


def _open_for_choices(session: Session, *, now: datetime) -> MarketExit:
    found = get_current_exit(session)
    if found.state != "announced":
        raise ExitRefused(
            N_("Choices are taken between the announcement and the exit date."),
            state=found.state,
        )
    if now >= found.exit_at:
        raise ExitRefused(N_("The exit date has come; choices can no longer be changed."))
    return found


def choose(
    session: Session,
    *,
    msisdn: str,
    choice: str,
    actor: Actor,
    now: datetime,
    customer_id: int | None = None,
    note: str = "",
) -> ExitChoice:
    """Record the choice for the line of `msisdn`: the subscriber's own, or given to staff
    (a staff user must write a note; the CLI and API keys may).

    `customer_id` is the signed-in subscriber's customer: the line must be theirs.
    :raises InvalidInput: unknown choice, or a staff choice without a note.
    :raises LineNotFound: no line with that number.
    :raises Forbidden: the line is not the subscriber's.
    :raises ExitRefused: no announced exit, its date has come, or the line has ended.
    """
    if choice not in CHOICES:
        raise InvalidInput(
            N_("Choose transfer or terminate."), field="choice", choices=", ".join(CHOICES)
        )
    staff = actor.kind != "subscriber"
    note = clean_text(note, field="note", max_length=limits.NOTE, required=actor.kind == "staff")
    found = _open_for_choices(session, now=now)
    line = get_line_by_msisdn(session, msisdn)
    if customer_id is not None and line.customer_id != customer_id:
        raise Forbidden(N_("This line is not yours."))
    if line.status in FINAL_LINE_STATUSES:
        raise ExitRefused(
            N_("Line %(msisdn)s has already ended."), field="msisdn", msisdn=line.msisdn
        )
    assert found.id is not None and line.id is not None
    row = session.exec(
        select(ExitChoice).where(ExitChoice.exit_id == found.id, ExitChoice.line_id == line.id)
    ).first()
    before = row.choice if row else None
    if row is None:
        row = ExitChoice(
            exit_id=found.id, line_id=line.id, choice=choice, given_by="", chosen_at=now
        )
    row.choice, row.chosen_at, row.note = choice, now, note
    row.given_by = "staff" if staff else "customer"
    row.actor_label = actor.label or actor.kind
    session.add(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="exit.choose",
        now=now,
        target_type="line",
        target_id=line.id,
        details={"msisdn": line.msisdn, "from": before, "to": choice, "note": note},
    )
    return row


def choices_of(session: Session, *, exit_id: int) -> dict[int, str]:
    """line id → the latest choice recorded at the exit."""
    return dict(
        session.exec(
            select(ExitChoice.line_id, ExitChoice.choice).where(ExitChoice.exit_id == exit_id)
        ).all()
    )


def choice_of_lines(
    session: Session, *, exit_id: int, line_ids: list[int]
) -> dict[int, ExitChoice]:
    """line id → its choice row, for the lines given (a subscriber's page)."""
    if not line_ids:
        return {}
    rows = session.exec(
        select(ExitChoice).where(
            ExitChoice.exit_id == exit_id, col(ExitChoice.line_id).in_(line_ids)
        )
    )
    return {row.line_id: row for row in rows}


def count_choices(session: Session, *, exit_id: int) -> dict[str, int]:
    """How many live lines chose each way; lines without a choice are "none"."""
    counted = dict(
        session.exec(
            select(ExitChoice.choice, func.count())
            .join(Line, col(Line.id) == col(ExitChoice.line_id))
            .where(ExitChoice.exit_id == exit_id)
            .where(col(Line.status).not_in(FINAL_LINE_STATUSES))
            .group_by(col(ExitChoice.choice))
        ).all()
    )
    live = session.exec(
        select(func.count()).select_from(Line).where(col(Line.status).not_in(FINAL_LINE_STATUSES))
    ).one()
    result = {choice: int(counted.get(choice, 0)) for choice in CHOICES}
    result["none"] = int(live) - sum(result.values())
    return result
