"""Named crash points, for tests that kill a real process in the middle of its work.

`crash_point(name)` does nothing unless the environment variable
`MVNO_CRASH_AT` names that point; then the process kills itself with
SIGKILL on the spot — no exception handlers, no rollback, no cleanup — as
`kill -9` or a power cut would. The crash tests (tests/integration) run a
command with it set and check that a rerun finishes the job exactly.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "MVNO_CRASH_AT"


def crash_point(name: str) -> None:
    """Die here with SIGKILL when `MVNO_CRASH_AT` is `name`."""
    if os.environ.get(ENVIRONMENT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
