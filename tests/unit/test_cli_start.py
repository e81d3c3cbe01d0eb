"""`mvno` builds the pages only for Flask's commands that serve or list them."""

from __future__ import annotations

import pytest

from app import create_app
from app.cli import _needs_pages
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("argv", "pages"),
    [
        ([], True),
        (["--help"], True),
        (["run", "--port", "8001"], True),
        (["routes"], True),
        (["-e", "routes", "cdr", "import"], False),  # "routes" is the env file's name
        (["--app", "x", "shell"], True),
        (["cdr", "import", "f.csv", "--host", "HOSTA"], False),
        (["db", "upgrade"], False),
        (["demo", "load", "run"], False),
    ],
)
def test_only_page_commands_build_the_pages(argv, pages):
    assert _needs_pages(argv) is pages


def test_an_app_without_pages_has_its_commands_and_no_routes(tmp_path):
    app = create_app(make_settings(f"sqlite:///{tmp_path}/cli.db", tmp_path), pages=False)
    assert "cdr" in app.cli.commands and "exit" in app.cli.commands
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert not any(r.startswith(("/console", "/webhooks", "/api/v1/c")) for r in rules), rules
    assert len(rules) <= 2  # static files and the (empty) OpenAPI document
    assert "mvno.db" in app.extensions and "babel" in app.extensions
