"""Every module of the project imports, and every project name it imports exists.

mypy runs with `ignore_missing_imports`, which also hides a wrong path to one
of our own modules; this reads the imports instead: each module is imported,
each `from app.x import name` must name something there, and each
`module_alias.attribute` on an imported project module must exist.
"""

from __future__ import annotations

import ast
import importlib
from types import ModuleType

import pytest

from tests.unit.test_layering import PROJECT_TOPS, all_modules

MODULES = sorted(name for name in all_modules() if name != "wsgi")


def _project_module_aliases(tree: ast.Module) -> dict[str, ModuleType]:
    aliases: dict[str, ModuleType] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PROJECT_TOPS:
                continue
            imported = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(imported, alias.name, None)
                if value is None:
                    value = importlib.import_module(f"{node.module}.{alias.name}")
                if isinstance(value, ModuleType):
                    aliases[alias.asname or alias.name] = value
    return aliases


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_and_names_what_exists(module: str) -> None:
    importlib.import_module(module)
    tree = ast.parse(all_modules()[module].read_text(encoding="utf-8"))
    aliases = _project_module_aliases(tree)
    missing = [
        f"{node.lineno}: {node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and not hasattr(aliases[node.value.id], node.attr)
    ]
    assert missing == []


def test_there_are_modules_to_import() -> None:
    assert len(MODULES) >= 150
