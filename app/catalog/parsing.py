"""Reading a catalog file's text as a TOML document."""

from __future__ import annotations

import tomllib
from typing import Any

from app.catalog.errors import CatalogInvalid, Problem


def parse_document(text: str, *, filename: str) -> dict[str, Any]:
    """The TOML document of a catalog file.

    :raises CatalogInvalid: malformed TOML, one problem with its line and column.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = Problem(filename, "", "", f"malformed TOML: {exc}")
        raise CatalogInvalid(filename=filename, problems=[problem]) from None
