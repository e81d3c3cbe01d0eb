"""Fixtures: every database test runs on SQLite and on PostgreSQL.

* `backend` is a session-scoped parameter; the schema of each backend is
  built once by the real Alembic migrations.
* Each test runs inside one outer transaction that is rolled back at the
  end; the app's units of work become savepoints inside it
  (`join_transaction_mode="create_savepoint"`).
* PostgreSQL is `TEST_DATABASE_URL` (default: the local server, database
  `mvno_test_<8 hex digits of the checkout's path>`, created when
  missing). When it is unreachable its tests are skipped — unless
  `REQUIRE_POSTGRES=1` (as in CI), which makes them fail.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app import create_app
from app.core.config import Settings
from app.core.db import Database
from app.core.migrate import recreate_postgres_database, upgrade

# One database per checkout: two checkouts testing at once (a CI clone beside
# a work tree) never empty each other's schema.
_CHECKOUT = hashlib.sha1(str(Path(__file__).resolve().parents[1]).encode()).hexdigest()[:8]
DEFAULT_PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/mvno_test_{_CHECKOUT}"
BACKENDS = ("sqlite", "postgresql")


def pg_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)


def require_postgres() -> bool:
    return os.environ.get("REQUIRE_POSTGRES", "") not in ("", "0")


def make_settings(database_url: str, instance: Path, **extra: str) -> Settings:
    env = {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "PASSWORD_HASH_PROFILE": "cheap",
        "SERVICE_HOTLINE": "10100-1234",
        "SUPERVISION_PHONE": "12300",
        **extra,
    }
    return Settings.from_env(env)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database URL of one backend, migrated to head."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    else:
        url = pg_url()
        try:
            recreate_postgres_database(url)
        except OperationalError as exc:
            message = f"PostgreSQL unreachable at {url}: {str(exc.orig).strip()}"
            if require_postgres():
                pytest.fail(message + " (REQUIRE_POSTGRES=1)")
            pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def app(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    instance = tmp_path_factory.mktemp("instance")
    flask_app = create_app(make_settings(backend, instance))
    flask_app.config["TESTING"] = True
    upgrade(flask_app.extensions["mvno.db"].engine)
    yield flask_app
    flask_app.extensions["mvno.db"].dispose()


@pytest.fixture
def db(app: Any) -> Iterator[Database]:
    """The app's Database, bound to one connection whose transaction is rolled back."""
    database: Database = app.extensions["mvno.db"]
    connection = database.engine.connect()
    outer = connection.begin()
    database.bind_connection(connection)
    try:
        yield database
    finally:
        database.bind_connection(None)
        outer.rollback()
        connection.close()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    s = db.session()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def client(app: Any, db: Database) -> Any:
    """A browser that chose English, so assertions read naturally; `zh_client` keeps the default."""
    test_client = app.test_client()
    test_client.set_cookie("mvno_lang", "en")
    return test_client


@pytest.fixture
def zh_client(app: Any, db: Database) -> Any:
    """A first-time visitor: no language chosen, so Simplified Chinese."""
    return app.test_client()


@pytest.fixture
def is_postgres(backend: str) -> bool:
    return backend.startswith("postgresql")


CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def csrf_token(client: Any, path: str) -> str:
    """The CSRF token from a form page, as a browser would read it."""
    response = client.get(path)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {response.status_code})"
    return match.group(1)


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[Any]:
    """The local Stripe stand-in (tests/stripe_server.py), one per test session."""
    from tests.stripe_server import FakeStripe

    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_on(app: Any, stripe_server: Any) -> Iterator[Any]:
    """The app with Stripe configured against the local server, for one test."""
    from dataclasses import replace

    from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET

    before = app.extensions["mvno.settings"]
    app.extensions["mvno.settings"] = replace(
        before,
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=stripe_server.base_url,
    )
    stripe_server.reset()
    try:
        yield stripe_server
    finally:
        app.extensions["mvno.settings"] = before
