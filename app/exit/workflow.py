"""The exit workflow as the entry points call it: one function per step (DESIGN §12, §13).

Each takes a session (the caller commits) except `run_execution`, which
opens its own units of work: the execution commits first, then its files
are written and the exit is `completed` — so a crash between the two
leaves an executed exit whose rerun writes the files (the same bytes) and
completes it, paying nothing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.auth.models import SubscriberAccount
from app.core.audit import Actor
from app.core.config import Settings
from app.core.db import Database
from app.core.faults import crash_point
from app.core.pii import PiiCipher
from app.exit.choices import choices_of, count_choices
from app.exit.execute import execute_exit
from app.exit.files import exit_files, regulator_report
from app.exit.models import MarketExit
from app.exit.owed import Breakdown, exit_breakdown
from app.exit.schedule import announce_exit, get_current_exit
from app.notifications.services import notify_many
from app.subscribers.models import Customer


def exit_folder(settings: Settings) -> Path:
    """Where the scheduler and the console keep an exit's files."""
    return settings.instance_path / "exit"


@dataclass
class Preview:
    """What executing the exit would do now: the console wizard's and `--json`'s figures."""

    found: MarketExit
    breakdown: Breakdown
    choices: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Plain figures, money in minor units."""
        b = self.breakdown
        return {
            "state": self.found.state,
            "exit_date": self.found.exit_date.isoformat(),
            "exit_at": self.found.exit_at.isoformat(),
            "notice_days": self.found.notice_days,
            "lines": len(b.lines),
            "transferred": b.count("transferred"),
            "terminated": b.count("terminated"),
            "choices": self.choices,
            "refunds": b.refunds_minor,
            "transferred_balances": b.carried_minor,
            "liability_before": b.liability_minor,
            "written_off": b.written_off_minor,
            "currencies": sorted({c.currency for c in b.customers}),
        }


def preview(session: Session, *, policy: str, now: datetime) -> Preview:
    """The exit's figures if it were executed at its instant with today's balances and choices."""
    found = get_current_exit(session)
    assert found.id is not None
    breakdown = exit_breakdown(
        session,
        at=max(found.exit_at, now),
        choices=choices_of(session, exit_id=found.id),
        carry=policy == "carry",
    )
    return Preview(found, breakdown, count_choices(session, exit_id=found.id))


def announce(
    session: Session, *, settings: Settings, actor: Actor, now: datetime, out_dir: Path
) -> tuple[MarketExit, Path]:
    """Announce the exit, notify every customer with an address, write the regulator report.

    A second call (already announced) notifies nobody twice (dedupe keys)
    and writes the report again.
    """
    found = announce_exit(session, timezone=settings.timezone, actor=actor, now=now)
    assert found.id is not None
    notices = [
        {
            "kind": "exit_notice",
            "recipient": email,
            "customer_id": customer_id,
            "account_id": account_id,
            "locale": locale,
            "dedupe_key": f"exit_notice:{found.id}:{customer_id}",
            "data": {
                "brand": settings.brand_name,
                "exit_date": found.exit_date.isoformat(),
                "choose_url": f"{settings.public_url}/exit",
                "hotline": settings.service_hotline,
            },
        }
        for customer_id, email, account_id, locale in session.execute(
            sa_select(
                col(Customer.id),
                col(Customer.email),
                col(Customer.subscriber_account_id),
                col(SubscriberAccount.locale),
            )
            .outerjoin(
                SubscriberAccount,
                col(SubscriberAccount.id) == col(Customer.subscriber_account_id),
            )
            .where(col(Customer.email).is_not(None))
            .order_by(col(Customer.id))
        )
    ]
    notify_many(session, notices, now=now)
    figures = exit_breakdown(
        session, at=found.exit_at, choices={}, carry=settings.exit_balance_policy == "carry"
    )
    report = regulator_report(
        found,
        figures,
        brand=settings.brand_name,
        hotline=settings.service_hotline,
        out_dir=out_dir,
    )
    return found, report


def execution_result(found: MarketExit, files: list[Path]) -> dict[str, Any]:
    """`mvno exit execute --json` (DESIGN §13), money in minor units."""
    summary = found.summary
    return {
        "lines": summary.get("lines", 0),
        "transferred": summary.get("transferred", 0),
        "terminated": summary.get("terminated", 0),
        "refunds": summary.get("refunds", 0),
        "transferred_balances": summary.get("transferred_balances", 0),
        "liability_before": summary.get("liability_before", 0),
        "files": [str(path) for path in files],
    }


def run_execution(
    db: Database, *, settings: Settings, actor: Actor, now: datetime, out_dir: Path
) -> dict[str, Any]:
    """Execute the exit (one transaction), then write its files and complete it.

    :raises ExitNotFound, ExitRefused, ExitInvariantBroken: from `execute_exit`.
    """
    with db.transaction() as session:
        execute_exit(session, policy=settings.exit_balance_policy, actor=actor, now=now)
    crash_point("exit.executed")
    cipher = PiiCipher(settings.pii_key)
    with db.transaction() as session:
        found = get_current_exit(session)
        files = exit_files(session, found, cipher=cipher, out_dir=out_dir)
        if found.state == "executed":
            found.state, found.completed_at = "completed", now
            found.summary = {**found.summary, "files": [path.name for path in files]}
            session.add(found)
        return execution_result(found, files)
