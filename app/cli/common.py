"""What every `mvno` command shares: the app's database and settings, one-line
refusals with exit status 1, the `--now` and `--json` options and JSON output,
passwords and text files read from the operator."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, TypeVar, cast

import click
from flask import current_app
from sqlalchemy.exc import OperationalError

from app.core.clock import parse_instant, utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import DomainError

F = TypeVar("F", bound=Callable[..., Any])


def database() -> Database:
    """The database of the running app (`mvno.db`)."""
    return cast(Database, current_app.extensions["mvno.db"])


def settings() -> Settings:
    """The settings the running app was created with."""
    return cast(Settings, current_app.extensions["mvno.settings"])


def fail(message: str) -> NoReturn:
    """Print a one-line refusal on stderr and exit with status 1."""
    click.echo(f"mvno: {' '.join(message.split())}", err=True)
    sys.exit(1)


def refusals(f: F) -> F:
    """Turn domain refusals and an unreachable database into a message and exit 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except DomainError as exc:
            fail(exc.message)
        except OperationalError as exc:
            fail(f"database error: {str(exc.orig or exc).splitlines()[0]}")

    return cast(F, wrapper)


def now_option(f: F) -> F:
    """Add `--now ISO8601`; the command receives `now` as an aware UTC datetime."""

    @click.option(
        "--now",
        "now_text",
        metavar="ISO8601",
        help="Act as if it were this time (with offset). Default: the clock.",
    )
    @functools.wraps(f)
    def wrapper(*args: Any, now_text: str | None, **kwargs: Any) -> Any:
        try:
            now = parse_instant(now_text) if now_text else utcnow()
        except DomainError as exc:
            fail(exc.message)
        return f(*args, now=now, **kwargs)

    return cast(F, wrapper)


def json_option(f: F) -> F:
    """Add `--json`; the command receives `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def emit(data: dict[str, Any], *, as_json: bool, text: str) -> None:
    """Print `data` as one line of JSON (datetimes in ISO 8601), or `text`."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=_json_default))
    else:
        click.echo(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_password(prompt: str) -> str:
    """A password from the terminal (asked twice) or the first line of stdin."""
    stdin = sys.stdin
    if stdin.isatty():
        answer: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
        return answer
    line = stdin.readline()
    if not line:
        fail("no password given on standard input")
    return line.rstrip("\r\n")


def read_text_file(path: str) -> str:
    """A UTF-8 text file, or a one-line refusal."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a folder, not a file")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
    except OSError as exc:
        fail(f"{path}: {exc.strerror}")
    raise AssertionError("unreachable")
