"""The market exit as the console and the API hand it out (DESIGN §12, §14).

The figures are app/exit's (`workflow.preview`, the execution's summary);
this module only arranges them, JSON-ready — money in minor units, per
currency beside the totals — so the API returns them as they are and the
console's wizard formats them for the viewer.

Files. An exit's files are written into `workflow.exit_folder(settings)`.
Only the names an exit writes are ever served — `handover_<HOST>_<date>.csv`,
`refunds_<date>.csv`, `exit_report_<date>.csv`, `regulator_report_<date>.csv`
— as a CSV attachment, byte for byte; any other name is simply not found,
so no path outside the folder can be asked for. A handover file holds the
consenting subscribers' ID numbers in clear: it is served only to those who
may see them (`pii.reveal`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Response
from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.core.config import Settings
from app.core.errors import N_, Forbidden, NotFound
from app.exit.models import DEFAULT_NOTICE_DAYS, MIN_NOTICE_DAYS, ExitCustomer, MarketExit
from app.exit.owed import Breakdown
from app.exit.schedule import current_exit, earliest_exit_date
from app.exit.workflow import exit_folder, preview
from wholesale.services import HOST_CODE_RE

DATE = r"\d{4}-\d{2}-\d{2}"
FILE_NAME_RE = re.compile(
    rf"(?P<kind>handover_(?P<host>{HOST_CODE_RE.pattern})|refunds|exit_report|regulator_report)"
    rf"_(?P<date>{DATE})\.csv"
)
# The longest name an exit writes; a longer one is refused before any pattern is tried.
MAX_FILE_NAME = 64


class ExitFileNotFound(NotFound):
    """No exit file of that name."""

    code = "exit_file_not_found"


def is_exit_file_name(name: str) -> bool:
    """Whether `name` is one an exit writes (no folders, nothing else)."""
    return len(name) <= MAX_FILE_NAME and FILE_NAME_RE.fullmatch(name) is not None


def is_handover(name: str) -> bool:
    """Whether `name` is a handover file (clear personal data of consenting subscribers)."""
    return name.startswith("handover_")


def list_exit_files(settings: Settings, *, exit_date: str | None = None) -> list[str]:
    """The exit files in the folder (of the exit of `exit_date` only, when given), by name."""
    folder = exit_folder(settings)
    if not folder.is_dir():
        return []
    names = []
    for path in folder.iterdir():
        match = FILE_NAME_RE.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        if exit_date is None or match.group("date") == exit_date:
            names.append(path.name)
    return sorted(names)


def exit_file_path(settings: Settings, name: str, *, may_see_pii: bool) -> Path:
    """The exit file called `name`.

    :raises ExitFileNotFound: not a name an exit writes, or no such file.
    :raises Forbidden: a handover file, for someone who may not see clear ID numbers.
    """
    if not is_exit_file_name(name):
        raise ExitFileNotFound(N_("No exit file of that name."))
    path = exit_folder(settings) / name
    if not path.is_file():
        raise ExitFileNotFound(N_("No exit file of that name."))
    if is_handover(name) and not may_see_pii:
        raise Forbidden(N_("A handover file holds ID numbers; your role may not download it."))
    return path


def exit_file_response(settings: Settings, name: str, *, may_see_pii: bool) -> Response:
    """An exit file as a CSV attachment, byte for byte as written."""
    path = exit_file_path(settings, name, may_see_pii=may_see_pii)
    response = Response(path.read_bytes(), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=name)
    response.headers.set("X-Content-Type-Options", "nosniff")
    return response


def by_currency(breakdown: Breakdown) -> list[dict[str, Any]]:
    """The money of a breakdown per currency: what is owed and where it goes."""
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: {"liability_before": 0, "refunds": 0, "transferred_balances": 0, "written_off": 0}
    )
    for customer in breakdown.customers:
        row = totals[customer.currency]
        row["liability_before"] += customer.owed_minor
        row["refunds"] += customer.refund_minor
        row["transferred_balances"] += customer.carried_minor
        row["written_off"] += customer.written_off_minor
    return [{"currency": currency, **totals[currency]} for currency in sorted(totals)]


def exit_out(found: MarketExit) -> dict[str, Any]:
    """The exit itself: its state and dates."""
    return {
        "id": found.id,
        "state": found.state,
        "exit_date": found.exit_date.isoformat(),
        "exit_at": found.exit_at,
        "notice_days": found.notice_days,
        "announced_at": found.announced_at,
        "executed_at": found.executed_at,
        "completed_at": found.completed_at,
    }


def _executed_by_currency(session: Session, exit_id: int) -> list[dict[str, Any]]:
    """What the execution did with the money, per currency (from what it kept)."""
    rows = session.execute(
        sa_select(
            col(ExitCustomer.currency),
            func.sum(ExitCustomer.unused_minor),
            func.sum(
                case((col(ExitCustomer.balance_minor) > 0, ExitCustomer.balance_minor), else_=0)
            ),
            func.sum(ExitCustomer.refund_minor),
            func.sum(ExitCustomer.carried_minor),
            func.sum(ExitCustomer.written_off_minor),
        )
        .where(col(ExitCustomer.exit_id) == exit_id)
        .group_by(col(ExitCustomer.currency))
        .order_by(col(ExitCustomer.currency))
    ).all()
    return [
        {
            "currency": currency,
            "liability_before": int(unused or 0) + int(positive or 0),
            "refunds": int(refunds or 0),
            "transferred_balances": int(carried or 0),
            "written_off": int(written_off or 0),
        }
        for currency, unused, positive, refunds, carried, written_off in rows
    ]


def _result(session: Session, found: MarketExit) -> dict[str, Any]:
    summary = found.summary or {}
    keys = (
        "lines",
        "transferred",
        "terminated",
        "refunds",
        "transferred_balances",
        "liability_before",
        "written_off",
        "numbers_returned",
        "customers",
    )
    assert found.id is not None
    return {
        **{key: int(summary.get(key, 0)) for key in keys},
        "balance_policy": found.balance_policy,
        "by_currency": _executed_by_currency(session, found.id),
    }


def exit_status(session: Session, *, settings: Settings, now: datetime) -> dict[str, Any]:
    """Where the exit stands and what the next step would do, money in minor units.

    * `exit`: the exit in progress or done, or None when none is planned;
    * `earliest_exit_date`: the first date a plan with the default notice accepts now;
    * `preview`: before execution, what executing it would do with today's
      balances and choices (`workflow.preview`), with the money per currency;
    * `result`: after execution, what it did (the execution's summary);
    * `executable`: whether the execution may run now (announced, and its instant has come);
    * `files`: the names of the exit's files written so far.
    """
    found = current_exit(session)
    status: dict[str, Any] = {
        "exit": None,
        "earliest_exit_date": earliest_exit_date(
            DEFAULT_NOTICE_DAYS, timezone=settings.timezone, now=now
        ).isoformat(),
        "default_notice_days": DEFAULT_NOTICE_DAYS,
        "min_notice_days": MIN_NOTICE_DAYS,
        "balance_policy": settings.exit_balance_policy,
        "preview": None,
        "result": None,
        "executable": False,
        "files": [],
    }
    if found is None:
        return status
    status["exit"] = exit_out(found)
    status["files"] = list_exit_files(settings, exit_date=found.exit_date.isoformat())
    status["executable"] = found.state in ("announced", "executed") and now >= found.exit_at
    if found.state in ("draft", "announced"):
        figures = preview(session, policy=settings.exit_balance_policy, now=now)
        status["preview"] = {
            **{
                key: value
                for key, value in figures.as_dict().items()
                if key not in ("state", "exit_date", "exit_at", "notice_days")
            },
            "by_currency": by_currency(figures.breakdown),
        }
    else:
        status["result"] = _result(session, found)
    return status
