"""What a scheduled job is, so each package can list its own in `<package>/jobs.py`.

A package's `jobs.py` exposes `JOBS: tuple[Job, ...]`; `app/jobs.py` gathers
them with `discover("jobs")` (lowest floor first) and runs them holding the
leader lock. A job id is unique across all packages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger


@dataclass(frozen=True)
class Job:
    """A scheduled job: `func(session, now)` in one transaction, or, when it
    calls out (Stripe) and must not hold a transaction open meanwhile,
    `func(db, settings, now)` opening its own (`own_transactions`)."""

    id: str
    func: Callable[..., Any]
    trigger: BaseTrigger
    description: str
    own_transactions: bool = False
