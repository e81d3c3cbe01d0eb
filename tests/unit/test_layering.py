"""Domain code never imports Flask (DESIGN §2, STYLE 'The shape of a domain package')."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_DIRS = [
    "app/core",
    "app/auth",
    "app/ledger",
    "app/payments",
    "app/subscribers",
    "wholesale",
    "numbering",
    "plans",
]
WEB_ONLY = ("flask", "flask_login", "flask_wtf", "flask_babel", "apiflask", "werkzeug")


def domain_modules():
    for folder in DOMAIN_DIRS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def imported_names(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("path", list(domain_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_does_not_import_the_web(path):
    offending = [
        name
        for name in imported_names(path)
        if name.split(".")[0] in WEB_ONLY or name.startswith("app.web")
    ]
    assert offending == []


def test_there_are_domain_modules_to_check():
    assert len(list(domain_modules())) >= 10
