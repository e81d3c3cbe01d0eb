"""The shape STYLE asks of the floor packages: modules one can hold in one's head.

A module of a floor package (app/core/floors.py) stays within `MODULE_LINES`,
a function within `FUNCTION_LINES`, and every public top-level function
says in a docstring what it guarantees. The entry points (web, CLI, jobs,
demo) are held to the function limit only.
"""

from __future__ import annotations

import ast

import pytest

from tests.unit.test_layering import all_modules, entry_point_of, floor_modules

MODULE_LINES = 600
FUNCTION_LINES = 80


def _tree(module: str) -> ast.Module:
    return ast.parse(all_modules()[module].read_text(encoding="utf-8"))


@pytest.mark.parametrize("module", floor_modules())
def test_floor_module_stays_small(module: str) -> None:
    lines = len(all_modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MODULE_LINES, f"{module} has {lines} lines; split it along its seams"


@pytest.mark.parametrize("module", sorted(all_modules()))
def test_functions_stay_short(module: str) -> None:
    long_ones = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
        for node in ast.walk(_tree(module))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES  # type: ignore[operator]
    ]
    assert long_ones == []


@pytest.mark.parametrize("module", floor_modules())
def test_public_functions_say_what_they_guarantee(module: str) -> None:
    silent = [
        node.name
        for node in _tree(module).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
        and ast.get_docstring(node) is None
    ]
    assert silent == []


def test_entry_points_are_not_held_to_the_floor_limits() -> None:
    assert entry_point_of("app.web.store.purchase") == "app.web"
    assert "app.web.store.purchase" not in floor_modules()
