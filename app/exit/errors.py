"""Market exit refusals (DESIGN §12)."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class ExitNotFound(NotFound):
    """No market exit is planned."""

    code = "exit_not_found"


class ExitRefused(Conflict):
    """A step the exit's state, its dates or the clock forbids."""

    code = "exit_refused"


class ExitInvariantBroken(Conflict):
    """The money of an execution does not add up; nothing of it is kept."""

    code = "exit_invariant_broken"
