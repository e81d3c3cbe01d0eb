"""Domain events: how a lower floor starts work above it (DESIGN §2).

A package announces what happened with `emit(session, SomethingHappened(...))`
(an event is a frozen dataclass named in the past tense, defined in the
announcing package or below it); a package above registers a handler with
`@on(SomethingHappened)` in its own `handlers.py`. Handlers run at once, in
registration order, in the caller's session and unit of work: nothing
commits inside them, so a refusal in a handler rolls back the change that
announced it, and a rolled-back change leaves no follow-up behind.

Handler modules are found by `app.core.floors.discover("handlers")` the first
time anything is emitted, so an event is never announced to an empty room
because nobody happened to import the package that listens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel import Session

E = TypeVar("E")
Handler = Callable[[Session, Any], None]
EventHandler = Callable[[Session, E], None]

_handlers: dict[type, list[Handler]] = {}
_loaded = False
_loading = threading.Lock()


def on(event_type: type[E]) -> Callable[[EventHandler[E]], EventHandler[E]]:
    """Register the decorated function as a handler of `event_type` (once per function)."""

    def register(handler: EventHandler[E]) -> EventHandler[E]:
        registered = _handlers.setdefault(event_type, [])
        if handler not in registered:
            registered.append(handler)
        return handler

    return register


def load_handlers() -> None:
    """Import every package's `handlers` module (idempotent, thread-safe)."""
    global _loaded
    if _loaded:
        return
    with _loading:
        if not _loaded:
            from app.core.floors import discover

            discover("handlers")
            _loaded = True


def handlers_of(event_type: type) -> list[Handler]:
    """The handlers registered for exactly `event_type`, in registration order."""
    load_handlers()
    return list(_handlers.get(event_type, ()))


def emit(session: Session, event: object) -> None:
    """Run every handler of `event`'s type now, in `session`; their errors propagate."""
    for handler in handlers_of(type(event)):
        handler(session, event)
