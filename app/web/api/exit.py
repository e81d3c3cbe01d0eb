"""JSON API of the market exit (DESIGN §12, §14): the console wizard's every step.

`exit.view` reads where the exit stands and what executing it would do
(`GET /exit`) and downloads its files (a handover file also needs
`pii.reveal`: it holds ID numbers in clear); `exit.manage` plans, announces
(`{"confirm": true}`), records a choice the subscriber gave, executes at or
after the exit instant (`{"confirm": true}`) and cancels with a reason.
Every step is audited by its service; every change answers the status as
`GET /exit` does.
"""

from __future__ import annotations

from typing import Any

from flask import g

from app.auth.permissions import role_can
from app.core.clock import utcnow
from app.exit.choices import choose
from app.exit.schedule import cancel_exit, plan_exit
from app.exit.workflow import announce, exit_folder, run_execution
from app.web.api import bp
from app.web.api.exit_schemas import (
    ExitCancelIn,
    ExitChoiceIn,
    ExitChoiceOut,
    ExitConfirmIn,
    ExitFileList,
    ExitPlanIn,
    ExitStatusOut,
)
from app.web.api.security import requires
from app.web.context import current_actor, database, db_session, own_units_of_work, settings
from app.web.exit_status import exit_file_response, exit_status, list_exit_files

REFUSED = "The exit's state, its dates or the clock forbid this step (`exit_refused`)"
NOT_PLANNED = "No market exit is planned (`exit_not_found`)"
FILE_DOC: dict[int | str, Any] = {
    200: {
        "description": "The file as written (a CSV attachment)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    403: "A handover file, for a key whose role may not see ID numbers",
    404: "No exit file of that name",
}


def _status() -> dict[str, Any]:
    return exit_status(db_session(), settings=settings(), now=utcnow())


@bp.get("/exit")
@requires("exit.view")
@bp.output(ExitStatusOut)
def exit_get() -> Any:
    """Where the market exit stands and what executing it would do now (minor units)."""
    return _status()


@bp.post("/exit/plan")
@requires("exit.manage")
@bp.input(ExitPlanIn, arg_name="data")
@bp.output(ExitStatusOut)
@bp.doc(responses={409: REFUSED + ": the date is too close, or an exit is past its draft"})
def exit_plan(data: dict[str, Any]) -> Any:
    """Plan the exit, or change the draft's date and notice period."""
    plan_exit(
        db_session(),
        exit_date=data["exit_date"],
        notice_days=data.get("notice_days"),
        timezone=settings().timezone,
        actor=current_actor(),
        now=utcnow(),
    )
    return _status()


@bp.post("/exit/announce")
@requires("exit.manage")
@bp.input(ExitConfirmIn, arg_name="data")
@bp.output(ExitStatusOut)
@bp.doc(responses={404: NOT_PLANNED, 409: REFUSED, 500: "The regulator report cannot be written"})
def exit_announce(data: dict[str, Any]) -> Any:
    """Announce the planned exit: sales stop, the customers are notified, the regulator
    report is written (its name is in `files`). Announcing again changes nothing."""
    announce(
        db_session(),
        settings=settings(),
        actor=current_actor(),
        now=utcnow(),
        out_dir=exit_folder(settings()),
    )
    return _status()


@bp.post("/exit/choices")
@requires("exit.manage")
@bp.input(ExitChoiceIn, arg_name="data")
@bp.output(ExitChoiceOut)
@bp.doc(
    responses={
        404: "No line with this number, or no exit planned",
        409: REFUSED + ": not announced, its date has come, or the line has ended",
    }
)
def exit_choice(data: dict[str, Any]) -> Any:
    """Record the choice a subscriber gave for a line: transfer to the host or terminate."""
    row = choose(
        db_session(),
        msisdn=data["msisdn"].strip(),
        choice=data["choice"],
        note=data["note"],
        actor=current_actor(),
        now=utcnow(),
    )
    return {
        "msisdn": data["msisdn"].strip(),
        "choice": row.choice,
        "given_by": row.given_by,
        "chosen_at": row.chosen_at,
    }


@bp.post("/exit/execute")
@own_units_of_work
@requires("exit.manage")
@bp.input(ExitConfirmIn, arg_name="data")
@bp.output(ExitStatusOut)
@bp.doc(
    responses={
        404: NOT_PLANNED,
        409: REFUSED + " (before the exit instant), or the money does not add up "
        "(`exit_invariant_broken`, nothing kept)",
    }
)
def exit_execute(data: dict[str, Any]) -> Any:
    """Execute the announced exit at or after its instant and write its files.

    Refunds to cards are queued; the scheduler's refund job sends them. Running
    it again after a completed execution pays nothing twice and writes the same files.
    """
    run_execution(
        database(),
        settings=settings(),
        actor=current_actor(),
        now=utcnow(),
        out_dir=exit_folder(settings()),
    )
    return _status()


@bp.post("/exit/cancel")
@requires("exit.manage")
@bp.input(ExitCancelIn, arg_name="data")
@bp.output(ExitStatusOut)
@bp.doc(responses={404: NOT_PLANNED, 409: REFUSED + ": the exit was executed"})
def exit_cancel(data: dict[str, Any]) -> Any:
    """Cancel the exit before its execution; sales and prepayment return to normal."""
    cancel_exit(db_session(), reason=data["reason"], actor=current_actor(), now=utcnow())
    return _status()


@bp.get("/exit/files")
@requires("exit.view")
@bp.output(ExitFileList)
def exit_file_list() -> Any:
    """Every exit file written so far, by name (those of earlier exits too)."""
    return {"items": list_exit_files(settings())}


@bp.get("/exit/files/<name>")
@requires("exit.view")
@bp.doc(responses=FILE_DOC)
def exit_file(name: str) -> Any:
    """One exit file: `handover_<HOST>_<date>.csv`, `refunds_<date>.csv`,
    `exit_report_<date>.csv` or `regulator_report_<date>.csv`; no other name."""
    may_see_pii = role_can(g.api_key.role, "pii.reveal")
    return exit_file_response(settings(), name, may_see_pii=may_see_pii)
