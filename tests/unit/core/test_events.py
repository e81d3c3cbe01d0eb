"""The domain-event registry: handlers in registration order, same session, errors propagate."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest

from app.core import events
from app.core.events import emit, handlers_of, on
from app.ledger.events import CustomerCredited
from app.provisioning.events import ActivationDelivered
from app.subscribers.events import LineActivated


@dataclass(frozen=True)
class Pinged:
    value: int


@dataclass(frozen=True)
class Unheard:
    value: int


class Refused(Exception):
    pass


seen: list[tuple[str, object, int]] = []


@on(Pinged)
def first(session: object, event: Pinged) -> None:
    seen.append(("first", session, event.value))


@on(Pinged)
def second(session: object, event: Pinged) -> None:
    seen.append(("second", session, event.value))
    if event.value < 0:
        raise Refused("negative")


def test_handlers_run_in_registration_order_with_the_callers_session() -> None:
    seen.clear()
    token = object()
    emit(token, Pinged(3))  # type: ignore[arg-type]
    assert seen == [("first", token, 3), ("second", token, 3)]


def test_registering_a_handler_twice_runs_it_once() -> None:
    on(Pinged)(first)
    assert handlers_of(Pinged).count(first) == 1


def test_a_handlers_error_reaches_the_announcer() -> None:
    seen.clear()
    with pytest.raises(Refused):
        emit(object(), Pinged(-1))  # type: ignore[arg-type]
    assert [name for name, _, _ in seen] == ["first", "second"]


def test_an_event_nobody_handles_is_a_no_op() -> None:
    emit(object(), Unheard(1))  # type: ignore[arg-type]
    assert handlers_of(Unheard) == []


def test_every_packages_handlers_are_found_without_importing_them() -> None:
    events.load_handlers()
    names = {h.__module__ for t in (ActivationDelivered, LineActivated) for h in handlers_of(t)}
    assert {"app.subscribers.handlers", "app.charging.handlers"} <= names


def test_events_are_frozen() -> None:
    event = Pinged(1)
    with pytest.raises(FrozenInstanceError):
        event.value = 2  # type: ignore[misc]
    assert CustomerCredited.__dataclass_params__.frozen  # type: ignore[attr-defined]
