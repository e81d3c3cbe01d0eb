"""Helpers for tests that run committed transactions in threads: a database of
their own outside the per-test rollback, and a start-together race."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url

from app.core.db import Database
from app.core.migrate import recreate_postgres_database, upgrade

T = TypeVar("T")


def fresh_database(
    backend: str, tmp_path: Path, name: str, *, pool_size: int
) -> Iterator[Database]:
    """A fresh, migrated database of the backend (SQLite file `<name>.db`, or the
    PostgreSQL test database's name + `_<name>`), disposed of afterwards.

    For a fixture: `yield from fresh_database(backend, tmp_path, "orders", pool_size=10)`.
    """
    if backend.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
    else:
        parsed = make_url(backend)
        url = parsed.set(database=f"{parsed.database}_{name}").render_as_string(hide_password=False)
        recreate_postgres_database(url)
    database = Database(url, pool_size=pool_size, max_overflow=4)
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


def race(
    work: Callable[[T], object],
    args: Sequence[T],
    refusals: dict[type[BaseException], str] | None = None,
) -> Counter[str]:
    """Run `work(arg)` for every arg, each in its own thread, all starting at once.

    Counts the outcomes: `ok`, the name `refusals` gives an expected exception,
    or `error: …` for anything else.
    """
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(args))
    named = tuple((refusals or {}).items())

    def run(arg: T) -> None:
        start.wait()
        try:
            work(arg)
            result = "ok"
        except Exception as exc:
            result = next(
                (name for kind, name in named if isinstance(exc, kind)), f"error: {exc!r}"
            )
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes
