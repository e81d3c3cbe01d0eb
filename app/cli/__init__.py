"""The `mvno` command line (DESIGN §13); also reachable as `flask --app wsgi …`.

One module per command group; `COMMANDS` below is the one list of what the
root `mvno` group carries. Conventions every command follows (helpers in
`app/cli/common.py`):

* `--now ISO8601` where the clock is read, so operators and tests replay time;
* `--json` where results are printed, money as integers in minor units;
* one transaction per command, committed when it succeeds;
* a refusal prints one line on stderr and exits with status 1.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import FlaskGroup

from app.cli import (
    api_key,
    care,
    catalog,
    cdr,
    db,
    demo,
    exit,
    fraud,
    ledger,
    line,
    notifications,
    provisioning,
    refunds,
    renewals,
    scheduler,
    settlement,
    sims,
    staff,
    subscribers,
    topup,
    vouchers,
)
from app.cli.common import fail
from app.core.errors import DomainError

COMMANDS: tuple[click.Command, ...] = (
    db.db_cli,
    staff.staff_cli,
    api_key.api_key_cli,
    catalog.catalog_cli,
    sims.sims_cli,
    cdr.cdr_cli,
    settlement.settlement_cli,
    exit.exit_cli,
    subscribers.subscribers_cli,
    line.line_cli,
    ledger.ledger_cli,
    topup.topup,
    renewals.renewals_cli,
    refunds.refunds_cli,
    provisioning.provisioning_cli,
    notifications.notifications_cli,
    vouchers.vouchers_cli,
    care.care_cli,
    fraud.fraud_cli,
    demo.demo_cli,
    scheduler.scheduler_cli,
)


def register(app: Any) -> None:
    """Attach every command of `COMMANDS` to the Flask app's command line."""
    for command in COMMANDS:
        app.cli.add_command(command)


# Flask's own commands that serve or list the pages; every other command runs without them.
_PAGE_COMMANDS = frozenset({"run", "routes", "shell"})


_VALUED_OPTIONS = frozenset({"-e", "--env-file", "-A", "--app"})


def _needs_pages(argv: list[str]) -> bool:
    """Whether the command line names one of Flask's page commands (or none at all)."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word in _PAGE_COMMANDS
    return True


def _create_app() -> Any:
    from app import create_app

    try:
        return create_app(pages=_needs_pages(sys.argv[1:]))
    except DomainError as exc:
        fail(exc.message)


def main() -> None:
    """The `mvno` console script: the root group, with the app created on demand."""
    cli = FlaskGroup(
        name="mvno",
        create_app=_create_app,
        add_default_commands=True,
        set_debug_flag=False,
        help="MVNO platform command line.",
    )
    cli.main(prog_name="mvno")
