"""Reading a catalog file's text as a TOML document.

A catalog is a short file written by people: it is refused whole when it is
larger than `MAX_FILE_BYTES` or nested deeper than the TOML parser can
follow (tomllib recurses once per level of arrays and inline tables, and
gives up with `RecursionError` a few hundred levels down).
"""

from __future__ import annotations

import tomllib
from typing import Any

from app.catalog.errors import CatalogInvalid, CatalogRefused, Problem

MAX_FILE_BYTES = 4 * 1024 * 1024


def parse_document(text: str, *, filename: str) -> dict[str, Any]:
    """The TOML document of a catalog file.

    :raises CatalogRefused: larger than `MAX_FILE_BYTES`, or nested too deeply.
    :raises CatalogInvalid: malformed TOML, one problem with its line and column.
    """
    # A character is at least one byte, so the cheap length bounds the encoded one.
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise CatalogRefused(
            "larger than %(limit)s MiB; a catalog file is at most that",
            filename=filename,
            limit=MAX_FILE_BYTES // (1024 * 1024),
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = Problem(filename, "", "", f"malformed TOML: {exc}")
        raise CatalogInvalid(filename=filename, problems=[problem]) from None
    except RecursionError:
        raise CatalogRefused(
            "arrays or inline tables nested too deeply to read; "
            "a catalog nests at most a few levels",
            filename=filename,
        ) from None
