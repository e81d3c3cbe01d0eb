"""The `mvno exit` group: leaving the market cleanly (DESIGN §12, §13)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, fail, json_option, now_option, refusals, settings
from app.core.money import format_plain

exit_cli = AppGroup("exit", help="Market exit: notice, choices, refunds, handover.")


def _exit_json(found: object) -> dict[str, object]:
    from app.exit.models import MarketExit

    assert isinstance(found, MarketExit)
    return {
        "state": found.state,
        "exit_date": found.exit_date.isoformat(),
        "exit_at": found.exit_at.isoformat(),
        "notice_days": found.notice_days,
        "announced_at": found.announced_at.isoformat() if found.announced_at else None,
    }


@exit_cli.command("plan")
@click.option(
    "--exit-date",
    "exit_date",
    required=True,
    metavar="YYYY-MM-DD",
    help="Last day is the day before",
)
@click.option(
    "--notice-days", type=int, default=None, help="Notice period in days (default 90, at least 30)"
)
@json_option
@now_option
@refusals
def exit_plan(exit_date: str, notice_days: int | None, as_json: bool, now: datetime) -> None:
    """Plan the exit (or re-plan the draft): service ends at 00:00 of --exit-date."""
    from app.core.audit import Actor
    from app.exit.schedule import plan_exit

    try:
        day = date.fromisoformat(exit_date)
    except ValueError:
        fail(f"--exit-date {exit_date!r} is not a date such as 2027-03-01")
    with database().transaction() as session:
        found = plan_exit(
            session,
            exit_date=day,
            notice_days=notice_days,
            timezone=settings().timezone,
            actor=Actor.cli(),
            now=now,
        )
        data = _exit_json(found)
    emit(
        data,
        as_json=as_json,
        text=f"exit planned for {data['exit_date']} ({data['notice_days']} days' notice)",
    )


@exit_cli.command("announce")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Folder for the regulator report"
)
@json_option
@now_option
@refusals
def exit_announce(out_dir: str | None, as_json: bool, now: datetime) -> None:
    """Announce the planned exit: sales stop, the cap drops, customers are notified."""
    from app.core.audit import Actor
    from app.exit.workflow import announce, exit_folder

    folder = Path(out_dir) if out_dir else exit_folder(settings())
    try:
        with database().transaction() as session:
            found, report = announce(
                session, settings=settings(), actor=Actor.cli(), now=now, out_dir=folder
            )
            data = {**_exit_json(found), "files": [str(report)]}
    except OSError as exc:
        fail(f"{folder}: {exc.strerror or exc}")
    emit(data, as_json=as_json, text=f"exit on {data['exit_date']} announced; report {report}")


@exit_cli.command("choose")
@click.argument("msisdn")
@click.argument("choice", type=click.Choice(["transfer", "terminate"]))
@click.option("--note", default="", help="What the subscriber said (a choice given by phone)")
@json_option
@now_option
@refusals
def exit_choose(msisdn: str, choice: str, note: str, as_json: bool, now: datetime) -> None:
    """Record a subscriber's choice for a line: transfer to the host or terminate."""
    from app.core.audit import Actor
    from app.exit.choices import choose

    with database().transaction() as session:
        row = choose(session, msisdn=msisdn, choice=choice, note=note, actor=Actor.cli(), now=now)
        data = {"msisdn": msisdn, "choice": row.choice, "chosen_at": row.chosen_at.isoformat()}
    emit(data, as_json=as_json, text=f"{msisdn}: {choice}")


@exit_cli.command("status")
@json_option
@now_option
@refusals
def exit_status(as_json: bool, now: datetime) -> None:
    """Show the exit and what executing it would do now."""
    from app.exit.workflow import preview

    with database().transaction(write=False) as session:
        data = preview(session, policy=settings().exit_balance_policy, now=now).as_dict()
    emit(
        data,
        as_json=as_json,
        text=(
            f"exit {data['state']} for {data['exit_date']}: {data['lines']} lines"
            f" ({data['transferred']} to transfer, {data['terminated']} to terminate),"
            f" refunds {format_plain(data['refunds'])}"
        ),
    )


@exit_cli.command("execute")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the files"
)
@json_option
@now_option
@refusals
def exit_execute(out_dir: str, as_json: bool, now: datetime) -> None:
    """Execute the announced exit at or after its instant and write its files."""
    from app.core.audit import Actor
    from app.exit.workflow import run_execution
    from app.payments.jobs import send_refunds

    try:
        result = run_execution(
            database(), settings=settings(), actor=Actor.cli(), now=now, out_dir=Path(out_dir)
        )
    except OSError as exc:
        fail(f"{out_dir}: {exc.strerror or exc}")
    send_refunds(database(), settings(), now)
    emit(
        result,
        as_json=as_json,
        text=(
            f"{result['lines']} lines: {result['transferred']} transferred,"
            f" {result['terminated']} terminated; refunds {format_plain(result['refunds'])},"
            f" carried {format_plain(result['transferred_balances'])}; "
            + ", ".join(result["files"])
        ),
    )


@exit_cli.command("cancel")
@click.option("--reason", default="", help="Why the exit is called off")
@json_option
@now_option
@refusals
def exit_cancel(reason: str, as_json: bool, now: datetime) -> None:
    """Cancel the exit before it is executed; sales and the cap return to normal."""
    from app.core.audit import Actor
    from app.exit.schedule import cancel_exit

    with database().transaction() as session:
        data = _exit_json(cancel_exit(session, reason=reason, actor=Actor.cli(), now=now))
    emit(data, as_json=as_json, text=f"exit for {data['exit_date']} cancelled")
