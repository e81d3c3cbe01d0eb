"""The dependency order of the packages (DESIGN §2), and discovery by it.

`FLOORS` is the one table of which package sits on which floor. A package
imports only from packages on lower floors (and from itself); two packages
on the same floor never import each other. The entry points may import
anything and nothing imports them. `tests/unit/test_layering.py` walks every
import of every module against this table and fails on an upward import, a
same-floor import, a package missing from the table, or a cycle.

`discover(name)` imports the module `name` (``"models"``, ``"jobs"``,
``"handlers"``, ``"commands"``) of every package that has one, floor by
floor, so a new capability registers its tables, jobs, event handlers and
command group by having them in its own package and nothing else by hand.
It imports by name at run time and is the only place below the entry
points that reaches every package.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

FLOORS: dict[str, int] = {
    "app.core": 0,
    "app.auth": 1,
    "app.notifications": 1,
    "wholesale": 1,
    "numbering": 2,
    "plans": 2,
    "app.provisioning": 2,
    "app.ledger": 3,
    "app.subscribers": 4,
    "app.payments": 5,
    "app.charging": 5,
    "app.usage": 6,
    "app.care": 6,
    "app.onboarding": 6,
    "app.catalog": 6,
    "app.analytics": 6,
    "app.exit": 7,
}

# Modules and packages that may import any floor and that no floor imports.
ENTRY_POINTS: tuple[str, ...] = ("app", "app.web", "app.cli", "app.jobs", "app.demo", "wsgi")


def package_of(module: str) -> str | None:
    """The floor package a dotted module name belongs to, or None (an entry point, a library)."""
    best: str | None = None
    for package in FLOORS:
        if module == package or module.startswith(package + "."):
            if best is None or len(package) > len(best):
                best = package
    return best


def floor_packages() -> list[str]:
    """The packages of the table in floor order (ties in table order)."""
    return sorted(FLOORS, key=lambda package: FLOORS[package])


def discover(name: str) -> list[ModuleType]:
    """Import `<package>.<name>` for every package that has it, lowest floor first."""
    modules: list[ModuleType] = []
    for package in floor_packages():
        spec = importlib.util.find_spec(package)
        if spec is None or spec.submodule_search_locations is None:
            continue
        dotted = f"{package}.{name}"
        if importlib.util.find_spec(dotted) is None:
            continue
        modules.append(importlib.import_module(dotted))
    return modules
