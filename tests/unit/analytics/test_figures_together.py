"""The dashboard's figures computed side by side (one read-only session per group)
are the figures computed one after the other, on committed data of both backends."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from app.core.db import Database
from app.web import dashboard
from app.web.dashboard import (
    FIGURE_GROUPS,
    FIGURE_PERMISSIONS,
    Context,
    build_figure,
    build_figures,
    figure_parameters,
)
from tests.concurrency import fresh_database
from tests.unit.analytics.business import AT, CURRENCY, TIMEZONE, build

PARAMS = figure_parameters({})


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Any:
    """A fresh, migrated database of the backend, outside the per-test rollback."""
    yield from fresh_database(backend, tmp_path, "figures", pool_size=len(FIGURE_GROUPS) + 2)


def _context() -> Context:
    return Context(now=AT, timezone=TIMEZONE, currency=CURRENCY)


def test_every_figure_is_in_exactly_one_group() -> None:
    grouped = [name for group in FIGURE_GROUPS for name in group]
    assert sorted(grouped) == sorted(FIGURE_PERMISSIONS)


def test_side_by_side_gives_the_figures_of_one_after_the_other(
    own_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with own_database.transaction() as session:
        build(session, tmp_path / "exports")
    with own_database.session(write=False) as session:
        alone = {
            name: build_figure(name, session, _context(), PARAMS) for name in FIGURE_PERMISSIONS
        }
        session.rollback()

    threads: dict[str, str] = {}
    real = dashboard.build_figure

    def spy(name: str, session: Any, context: Context, params: dict[str, Any]) -> Any:
        threads[name] = threading.current_thread().name
        return real(name, session, context, params)

    monkeypatch.setattr(dashboard, "build_figure", spy)
    with own_database.session(write=False) as session:
        together = build_figures(FIGURE_PERMISSIONS, own_database, session, _context(), PARAMS)
        session.rollback()

    assert together == alone
    assert list(together) == list(FIGURE_PERMISSIONS)
    assert together["revenue"]["months"][-1]["revenue_minor"] > 0  # a business, not zeros
    # Each group ran whole on one thread, and the groups on different threads.
    per_group = [{threads[name] for name in group} for group in FIGURE_GROUPS]
    assert all(len(names) == 1 for names in per_group)
    assert len(set.union(*per_group)) == len(FIGURE_GROUPS)


def test_only_the_figures_asked_for_are_built(own_database: Database) -> None:
    with own_database.session(write=False) as session:
        figures = build_figures(["counts", "usage"], own_database, session, _context(), PARAMS)
        session.rollback()
    assert list(figures) == ["counts", "usage"]


def test_bound_to_one_connection_the_figures_run_on_the_callers_session(
    session: Any, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    real = dashboard.build_figure

    def spy(name: str, own: Any, context: Context, params: dict[str, Any]) -> Any:
        seen.append(own)
        return real(name, own, context, params)

    monkeypatch.setattr(dashboard, "build_figure", spy)
    build_figures(FIGURE_PERMISSIONS, db, session, _context(), PARAMS)
    assert seen and all(own is session for own in seen)
