"""Files in and out of the console and the API.

* **Uploads.** An importer reads a path (DuckDB reads the file itself), so
  an upload is saved to a temporary file that is removed afterwards; its
  name is kept only as a label (no folders, no control characters).
* **Downloads.** A settlement run's CSV or JSON file is sent as an
  attachment with its own type, byte for byte as written — never as a page.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Response
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from app.web.context import upload_limit
from wholesale.models import SettlementRun

MIB = 1024 * 1024


def upload_name(upload: FileStorage, fallback: str = "upload.csv") -> str:
    """The uploaded file's own name, without folders or control characters, at most 255."""
    raw = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in raw if ch.isprintable()).strip()
    return name[:255] or fallback


@contextmanager
def saved_upload(upload: FileStorage) -> Iterator[Path]:
    """The upload saved to a temporary file, removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="mvno-upload-") as folder:
        path = Path(folder) / "upload"
        upload.save(path)
        yield path


def too_large(path: Path) -> bool:
    """Whether the saved file is larger than this request's view accepts (`accepts_upload`)."""
    limit = upload_limit()
    return limit is not None and path.stat().st_size > limit


def too_large_message() -> str:
    """The refusal of a file beyond this request's view's limit, naming it in MiB."""
    limit = upload_limit() or 0
    return _(
        "The file is larger than %(limit)s MiB; split it and upload the parts.",
        limit=max(limit // MIB, 1),
    )


def run_file_response(run: SettlementRun, kind: str) -> Response:
    """A settlement run's `csv` or `json` file as a download."""
    if kind == "csv":
        body, name, mimetype = run.csv_text, run.csv_name, "text/csv"
    else:
        body, name, mimetype = run.json_text, run.json_name, "application/json"
    response = Response(body, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=name)
    return response
