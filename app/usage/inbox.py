"""The host's inbox: usage files dropped in `instance/inbox/<HOST>/`, imported by a job.

Each file directly in a host's folder (not hidden, not still growing:
unchanged for `SETTLE_SECONDS`) is imported in its own transaction, as
`mvno cdr import` would, then moved to `done/` — or to `failed/` with a
`<name>.reason.txt` beside it when the file as a whole was refused (rows
that cannot be used are rejects of an imported file, not a failure). A
file already imported (same SHA-256) goes to `done/` too. A crash before
the move leaves the file in place; the next run imports it (the import was
rolled back) or finds it imported and moves it. Folders of unknown hosts
are left alone and reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.core.audit import Actor
from app.core.db import Database
from app.core.errors import DomainError
from app.usage.importer import import_usage_file
from wholesale.services import find_host_by_code

SETTLE_SECONDS = 5.0
ACTOR = Actor.system("usage inbox")


@dataclass
class InboxRun:
    """What one pass over the inbox did."""

    imported: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    unknown_hosts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the scheduler's log and the API."""
        return {
            "imported": self.imported,
            "failed": self.failed,
            "unknown_hosts": self.unknown_hosts,
        }


def inbox_root(instance_path: Path) -> Path:
    """The inbox folder of an instance."""
    return instance_path / "inbox"


def _ready(folder: Path, *, settle_seconds: float) -> list[Path]:
    now = time.time()
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith(".")
        and now - path.stat().st_mtime >= settle_seconds
    )


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        stem = f"{path.stem}.{int(time.time())}"
        target = folder / f"{stem}{path.suffix}"
    path.replace(target)
    return target


def process_inbox(
    db: Database, *, instance_path: Path, now: datetime, settle_seconds: float = SETTLE_SECONDS
) -> InboxRun:
    """Import every ready file of every host's inbox folder (see the module)."""
    run = InboxRun()
    root = inbox_root(instance_path)
    if not root.is_dir():
        return run
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        with db.transaction(write=False) as session:
            host = find_host_by_code(session, folder.name)
        if host is None:
            run.unknown_hosts.append(folder.name)
            continue
        for path in _ready(folder, settle_seconds=settle_seconds):
            try:
                with db.transaction() as session:
                    result = import_usage_file(
                        session, host_code=host.code, path=path, actor=ACTOR, now=now
                    )
            except DomainError as exc:
                moved = _move(path, folder / "failed")
                reason = moved.with_name(moved.name + ".reason.txt")
                reason.write_text(exc.message + "\n", encoding="utf-8")
                run.failed.append({"host": host.code, "file": path.name, "reason": exc.message})
                continue
            _move(path, folder / "done")
            run.imported.append({"host": host.code, **result.as_dict(), "file": path.name})
    return run
