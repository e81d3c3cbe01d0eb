"""Browser tests against the real server: gunicorn + Playwright driving Debian's Chromium.

Nothing here downloads a browser: Chromium is launched from /usr/bin/chromium
(`apt-get install chromium`), and a missing binary fails the run instead of
skipping it. The browser may talk to 127.0.0.1 only; any other request is
aborted and fails the test that made it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, Route, sync_playwright

from app.core.config import VARIABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv's bin: mvno and gunicorn live beside python
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
E2E_DIR = Path(__file__).resolve().parent
CONFIG_NAMES = frozenset(name for name, _default, _meaning in VARIABLES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is an e2e test (`-m "not e2e"` leaves them out)."""
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _env(instance: Path) -> dict[str, str]:
    # The app's own variables are not inherited: the server runs on the documented
    # defaults (the tests check the default hotline numbers), plus these.
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_NAMES}
    env.update(
        DATABASE_URL=f"sqlite:///{instance / 'mvno.db'}",
        INSTANCE_PATH=str(instance),
        # Fixed, so both gunicorn workers sign and accept the same sessions.
        SECRET_KEY="e2e-secret-key-not-for-production",
        COOKIE_SECURE="0",
        PASSWORD_HASH_PROFILE="cheap",
    )
    return env


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} not found: install the project into the virtualenv (pip install -e .)")
    return str(path)


def _run(instance: Path, *args: str, timeout: int = 60) -> None:
    result = subprocess.run(
        [_tool("mvno"), *args],
        cwd=REPO_ROOT,
        env=_env(instance),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`mvno {' '.join(args)}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    instance: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def demo_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated instance folder with the demo data; servers run on copies of it."""
    instance = tmp_path_factory.mktemp("demo-instance")
    _run(instance, "db", "upgrade")
    # The basics only (logins, catalog, SIMs, the two sample subscribers): the browser
    # tests count orders and lines from there. The three-month business is tested in
    # tests/integration/test_demo_business.py.
    _run(instance, "demo", "load", "--size", "0", timeout=120)
    return instance


def _start(instance: Path) -> LiveServer:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = instance / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _tool("gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                # gunicorn 27 otherwise opens a control socket under ~/.gunicorn,
                # shared by every gunicorn of this user.
                "--no-control-socket",
                "wsgi:app",
            ],
            cwd=REPO_ROOT,
            env=_env(instance),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"gunicorn exited with status {process.returncode} before answering:\n"
                f"{log.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{url}/", timeout=2) as response:
                if response.status == 200:
                    return LiveServer(url, instance, process)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(
                f"gunicorn did not answer GET {url}/ within {STARTUP_TIMEOUT:.0f} s:\n"
                f"{log.read_text(errors='replace')}"
            )
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def server_factory(
    demo_instance: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], LiveServer]]:
    """Start a gunicorn on a private copy of the demo instance; all are stopped at the end."""
    started: list[LiveServer] = []

    def start() -> LiveServer:
        instance = tmp_path_factory.mktemp("instance")
        shutil.copytree(demo_instance, instance, dirs_exist_ok=True)
        server = _start(instance)
        started.append(server)
        return server

    yield start
    for server in started:
        _stop(server.process)


@pytest.fixture(scope="session")
def live_server(server_factory: Callable[[], LiveServer]) -> str:
    """Base URL of a server holding exactly the demo data (tests must not add subscribers)."""
    return server_factory().url


@pytest.fixture
def fresh_server(server_factory: Callable[[], LiveServer]) -> Iterator[str]:
    """Base URL of a server of this test's own, for tests that change data."""
    server = server_factory()
    yield server.url
    _stop(server.process)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the e2e tests need Debian's Chromium "
            "(`apt-get install chromium`). Do not run `playwright install`."
        )
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no cookies) per test; requests off 127.0.0.1 are blocked and fail it."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5_000)
    outside: list[str] = []

    def only_local(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    yield page
    context.close()
    assert not outside, f"the page tried to reach beyond 127.0.0.1: {outside}"
