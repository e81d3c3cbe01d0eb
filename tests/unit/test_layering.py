"""The floors of DESIGN §2, checked on every import of every module.

Derived from `app.core.floors.FLOORS`: every module of the tree belongs to
a floor package or an entry point; a floor package imports only lower
floors (never its own floor's neighbours, never an entry point, never the
web framework); and the modules of the floor packages import each other
without a cycle. Imports inside functions and under TYPE_CHECKING count:
a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from app.core.floors import ENTRY_POINTS, FLOORS, package_of

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = ("app", "numbering", "plans", "wholesale")
PROJECT_TOPS = {"app", "numbering", "plans", "wholesale", "wsgi"}
WEB_ONLY = ("flask", "flask_login", "flask_wtf", "flask_babel", "apiflask", "werkzeug")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def all_modules() -> dict[str, Path]:
    """Every Python module of the project, by dotted name."""
    modules = {"wsgi": ROOT / "wsgi.py"}
    for top in SOURCE_ROOTS:
        for path in sorted((ROOT / top).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def entry_point_of(module: str) -> str | None:
    for entry in ENTRY_POINTS:
        if module == entry or (entry != "app" and module.startswith(entry + ".")):
            return entry
    return None


def imports_of(module: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in `module`, relative ones resolved.

    `from package import name` names the submodule when `name` is one.
    """
    path = all_modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    known = all_modules()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in known else base


def project_imports(module: str) -> Iterator[tuple[int, str]]:
    for line, target in imports_of(module):
        if target.split(".")[0] in PROJECT_TOPS:
            yield line, target


def floor_modules() -> list[str]:
    return [m for m in all_modules() if package_of(m) is not None and entry_point_of(m) is None]


def test_every_module_has_a_place_in_the_floor_table():
    homeless = [m for m in all_modules() if package_of(m) is None and entry_point_of(m) is None]
    assert homeless == [], "add these packages to FLOORS in app/core/floors.py"


def test_the_floor_table_matches_the_tree():
    existing = {package_of(m) for m in all_modules()} - {None}
    assert existing, "no floor package found"
    assert {"app.core", "app.ledger", "app.subscribers", "numbering"} <= existing
    for package in existing:
        assert package in FLOORS


@pytest.mark.parametrize("module", floor_modules())
def test_module_imports_only_lower_floors(module):
    own = package_of(module)
    assert own is not None
    problems = []
    for line, target in project_imports(module):
        other = package_of(target)
        if other == own:
            continue
        if other is None:
            problems.append(f"{line}: {target} is an entry point or outside the floor table")
        elif FLOORS[other] >= FLOORS[own]:
            relation = "the same floor" if FLOORS[other] == FLOORS[own] else "a higher floor"
            problems.append(f"{line}: {target} is on {relation} ({other}, floor {FLOORS[other]})")
    assert problems == [], f"{module} (floor {FLOORS[own]}) imports upward"


@pytest.mark.parametrize("module", floor_modules())
def test_domain_module_does_not_import_the_web(module):
    offending = [
        target
        for _, target in imports_of(module)
        if target.split(".")[0] in WEB_ONLY or target.startswith("app.web")
    ]
    assert offending == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def module_graph() -> dict[str, set[str]]:
    modules = set(floor_modules())
    graph: dict[str, set[str]] = {}
    for module in modules:
        graph[module] = {
            target
            for _, target in project_imports(module)
            if target in modules and target != module
        }
    return graph


def test_cycle_detection_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    assert _cycles(module_graph()) == []


def test_there_are_modules_to_check():
    assert len(floor_modules()) >= 60
