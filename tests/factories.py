"""Factories for tests: real services, so the rules they enforce apply."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from app.auth import api_keys
from app.auth.models import ApiKey, StaffUser, SubscriberAccount
from app.auth.services import create_staff, register_subscriber
from app.core.audit import Actor

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def make_staff(
    session: Session,
    *,
    role: str = "admin",
    email: str | None = None,
    password: str = PASSWORD,
    now: datetime = NOW,
    **kwargs: Any,
) -> StaffUser:
    email = email or f"staff{next(_seq)}-{role}@example.com"
    return create_staff(
        session,
        email=email,
        role=role,
        password=password,
        actor=Actor.system("test"),
        now=now,
        **kwargs,
    )


def make_subscriber(
    session: Session,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    now: datetime = NOW,
) -> SubscriberAccount:
    email = email or f"sub{next(_seq)}@example.com"
    return register_subscriber(session, email=email, password=password, now=now)


def make_api_key(
    session: Session, *, role: str = "admin", name: str = "integration", now: datetime = NOW
) -> tuple[ApiKey, str]:
    return api_keys.create_api_key(
        session, name=name, role=role, actor=Actor.system("test"), now=now
    )


def login_staff(client: Any, email: str, password: str = PASSWORD) -> Any:
    from tests.conftest import csrf_token

    token = csrf_token(client, "/console/login")
    return client.post(
        "/console/login", data={"email": email, "password": password, "csrf_token": token}
    )
