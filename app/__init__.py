"""The Flask application factory.

Kept light on purpose: blueprints and Flask extensions are imported inside
`create_app`, so domain packages can import `app.core` without pulling in
the web layer (DESIGN §2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apiflask import APIFlask

    from app.core.config import Settings

API_VERSION = "1.0.0"


def create_app(
    settings: Settings | None = None, *, pages: bool = True, **overrides: Any
) -> APIFlask:
    """Build the Flask application from `settings` (else the environment) and its web layer.

    `pages=False` leaves out the store, console, API and webhook pages: what
    a command line run needs (settings, database, translations) starts in
    about half the time.
    """
    from apiflask import APIFlask

    from app.core.config import Settings
    from app.core.events import load_handlers
    from app.web import init_web

    settings = settings or Settings.from_env()
    load_handlers()  # every package's event handlers and policies, before the first request
    app = APIFlask(
        __name__,
        title="MVNO platform API",
        version=API_VERSION,
        spec_path="/api/v1/openapi.json",
        docs_path=None,
        json_errors=False,
        instance_path=str(settings.instance_path),
    )
    app.config.update(overrides)
    init_web(app, settings, pages=pages)

    from app import cli

    cli.register(app)
    return app
