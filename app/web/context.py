"""Per-request access to settings, the database session and the acting user.

The request's session is opened on first use and committed by the
`after_request` hook in `app.web` — the only place a web request commits.
On SQLite, a request that may write (anything but GET/HEAD/OPTIONS, and
every API call, which may touch its key) opens with BEGIN IMMEDIATE —
except in a view marked `own_units_of_work`, whose service writes in its
own transactions through `database()` (it calls Stripe between them): its
request session only reads, and so holds no write lock meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, request
from sqlmodel import Session

from app.core.audit import Actor
from app.core.config import Settings
from app.core.db import Database

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    return cast(Settings, current_app.extensions["mvno.settings"])


def database() -> Database:
    return cast(Database, current_app.extensions["mvno.db"])


def own_units_of_work(view: F) -> F:
    """Mark a view whose service runs its own units of work through `database()`.

    The view's request session is opened read-only (a deferred BEGIN on
    SQLite), so it holds no write lock while the service's transactions run;
    the view only reads through `db_session()` (the signed-in user, its own
    order) and writes nothing there.
    """
    view.own_units_of_work = True  # type: ignore[attr-defined]
    return view


def own_units_of_work_when(test: Callable[[], bool]) -> Callable[[F], F]:
    """Mark a view as `own_units_of_work` for the requests `test()` accepts.

    For a page whose one URL takes two forms, only one of which is handled
    by a service with its own units of work (the store's top-up: card or
    voucher); `test` reads only the request.
    """

    def mark(view: F) -> F:
        view.own_units_of_work = test  # type: ignore[attr-defined]
        return view

    return mark


def accepts_upload(max_bytes: int) -> Callable[[F], F]:
    """Mark a view that takes one uploaded file of up to `max_bytes`.

    Its requests may be that much larger than the app's `MAX_CONTENT_LENGTH`
    (see `UploadRequest` in `app.web`); the view refuses a larger file itself
    (`upload_limit`), with a message of its own.
    """

    def mark(view: F) -> F:
        view.max_upload_bytes = max_bytes  # type: ignore[attr-defined]
        return view

    return mark


def upload_limit() -> int | None:
    """The largest file this request's view accepts (`accepts_upload`), or None."""
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, "max_upload_bytes", None)
    return int(limit) if limit is not None else None


def runs_own_units_of_work() -> bool:
    """Whether this request's view runs its own units of work (see `own_units_of_work`)."""
    view = current_app.view_functions.get(request.endpoint or "")
    mark = getattr(view, "own_units_of_work", False)
    return bool(mark()) if callable(mark) else bool(mark)


def db_session() -> Session:
    session = g.get("db_session")
    if session is None:
        write = (
            request.method not in SAFE_METHODS or request.blueprint == "api"
        ) and not runs_own_units_of_work()
        session = database().session(write=write)
        g.db_session = session
    return cast(Session, session)


def client_ip() -> str:
    # Behind a proxy, configure ProxyFix in wsgi.py; we trust only what WSGI says.
    return (request.remote_addr or "")[:64]


def current_actor() -> Actor:
    """The acting staff user or API key for audit records."""
    from flask_login import current_user

    api_key = g.get("api_key")
    if api_key is not None:
        return Actor("api_key", api_key.id, f"{api_key.name} ({api_key.prefix})")
    if current_user.is_authenticated:
        return Actor(current_user.kind, current_user.id, current_user.email)
    return Actor.system("anonymous")
