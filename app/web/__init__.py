"""The web layer: wires extensions, the request transaction, errors and blueprints."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Request, Response, current_app, flash, g, jsonify, render_template, request
from flask_babel import Babel, get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, IntegerConverter

from app.auth import passwords
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import DomainError
from app.core.floors import discover
from app.core.money import format_money
from app.web.context import runs_own_units_of_work
from app.web.formatting import time_tag

log = logging.getLogger(__name__)

LOCALES = ("zh_Hans", "en")
DEFAULT_LOCALE = "zh_Hans"
LANG_COOKIE = "mvno_lang"

csrf = CSRFProtect()


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/"))


def select_locale() -> str:
    chosen = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


MAX_ROW_ID = 2**31 - 1


def _path_parameter_schemas() -> dict[str, dict[str, Any]]:
    """What each string path parameter accepts, by the path's first segment after /api/v1."""
    from numbering.golden import TIER_CODES
    from plans.terms import PLAN_CODE_RE
    from wholesale.services import HOST_CODE_RE

    return {
        "hosts": {"pattern": f"^{HOST_CODE_RE.pattern}$"},
        "plans": {"pattern": f"^{PLAN_CODE_RE.pattern}$"},
        "addons": {"pattern": f"^{PLAN_CODE_RE.pattern}$"},
        "golden-tiers": {"enum": list(TIER_CODES)},
    }


# What a multipart body holds beyond its file: the boundaries and the other fields.
MULTIPART_SLACK = 1024 * 1024


class UploadRequest(Request):
    """A request whose body limit is raised for a view that takes a large file.

    The app's `MAX_CONTENT_LENGTH` holds for every other view; a view marked
    with `accepts_upload(n)` takes bodies up to `n` plus `MULTIPART_SLACK`.
    """

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is None and self.url_rule is not None:
            limit = getattr(
                current_app.view_functions.get(self.endpoint or ""), "max_upload_bytes", None
            )
            if limit is not None:
                return int(limit) + MULTIPART_SLACK
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


class RowIdConverter(IntegerConverter):
    """`<int:…>` in our routes is always a row id: 1 … 2**31-1.

    Larger numbers do not match the route (a 404) instead of overflowing the
    database's integer type (a 500).
    """

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


class IsoDateConverter(BaseConverter):
    """`<isodate:…>`: a path segment shaped like a date, YYYY-MM-DD (read by the view's schema).

    Anything else does not match the route, so `/sla-holidays/load` stays its own route.
    """

    regex = r"\d{4}-\d{2}-\d{2}"


def _configure(app: APIFlask, settings: Settings) -> None:
    """Cookies, sessions, upload limit, Babel and the API's error schema."""
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="mvno_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        REMEMBER_COOKIE_SECURE=settings.cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        BABEL_DEFAULT_LOCALE=DEFAULT_LOCALE,
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).resolve().parents[1] / "translations"),
        JSON_SORT_KEYS=False,
        # The API's error bodies are ours (DESIGN §14), and so is their schema.
        HTTP_ERROR_SCHEMA=ERROR_SCHEMA,
        VALIDATION_ERROR_SCHEMA=ERROR_SCHEMA,
        VALIDATION_ERROR_STATUS_CODE=422,
        AUTO_404_RESPONSE=True,
        INFO={
            "description": "JSON API of the MVNO platform. Authenticate with "
            "`Authorization: Bearer <API key>`; keys are created by admins in the console."
        },
    )


def init_web(app: APIFlask, settings: Settings, *, pages: bool = True) -> None:
    """Wire the web layer into `app`: configuration, database, extensions, hooks, and
    (unless `pages` is false) the blueprints."""
    _configure(app, settings)
    app.request_class = UploadRequest
    app.url_map.converters["int"] = RowIdConverter
    app.url_map.converters["isodate"] = IsoDateConverter
    app.extensions["mvno.settings"] = settings
    app.extensions["mvno.db"] = Database(settings.database_url)
    passwords.configure(settings.password_hash_profile)

    Babel(app, locale_selector=select_locale, timezone_selector=lambda: settings.timezone)
    csrf.init_app(app)

    from app.web.auth import init_login

    init_login(app)
    _register_input_guard(app)
    _register_transaction_hooks(app)
    _register_error_handlers(app)
    _register_template_helpers(app, settings)
    _register_security_headers(app, settings)
    if pages:
        _register_blueprints(app)


def _register_blueprints(app: APIFlask) -> None:
    from app.web.api import bp as api_bp
    from app.web.console import bp as console_bp
    from app.web.store import bp as store_bp
    from app.web.webhooks import bp as webhooks_bp

    # APIFlask types the processor for a spec that may be a string; ours is the dict it builds.
    app.spec_processor(_complete_spec)  # type: ignore[arg-type]
    app.register_blueprint(store_bp)
    app.register_blueprint(console_bp, url_prefix="/console")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)
    app.register_blueprint(webhooks_bp, url_prefix="/webhooks")
    csrf.exempt(webhooks_bp)


def _complete_spec(spec: dict[str, Any] | str) -> dict[str, Any] | str:
    """Say what APIFlask leaves out: bodies are required and may be malformed (400),
    and path parameters say what they accept."""
    if isinstance(spec, str):
        return spec
    string_params = _path_parameter_schemas()
    for path, operations in spec.get("paths", {}).items():
        resource = path.removeprefix("/api/v1/").split("/")[0]
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
                operation["responses"].setdefault(
                    "400",
                    {
                        "description": "Malformed JSON body",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/HTTPError"}
                            }
                        },
                    },
                )
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    continue
                if parameter["schema"].get("type") == "integer":
                    parameter["schema"].update(minimum=1, maximum=MAX_ROW_ID)
                elif parameter["name"] == "code" and resource in string_params:
                    parameter["schema"].update(string_params[resource])
    return spec


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "details": {"type": "object"},
            },
        }
    },
}


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def _register_input_guard(app: APIFlask) -> None:
    @app.before_request
    def refuse_nul_characters() -> Any:
        """No text we keep may hold NUL (PostgreSQL cannot); refuse it at the door."""
        suspects: list[Any] = [request.args.to_dict(flat=False), request.form.to_dict(flat=False)]
        if request.is_json:
            suspects.append(request.get_json(silent=True))
        if any(_contains_nul(s) for s in suspects):
            message = _("Input must not contain NUL characters.")
            if wants_json():
                return json_error("invalid_input", message, 422)
            return _error_page(422, _("Request refused"), message)
        return None


def _register_transaction_hooks(app: APIFlask) -> None:
    @app.after_request
    def commit_request(response: Response) -> Response:
        session = g.get("db_session")
        if session is not None and not g.get("db_rolled_back"):
            session.commit()
        return response

    @app.teardown_request
    def close_request(exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()


def localized(exc: DomainError) -> str:
    """A domain message in the viewer's language (the template is translated, then filled)."""
    return _(exc.template, **exc.params)


def _rollback() -> None:
    session = g.get("db_session")
    # A view running its own units of work only reads in the request's
    # session: there is nothing to undo there, and what its service committed
    # stays committed (under the tests' one connection those units are
    # savepoints inside the request's, which a rollback would take with it).
    if session is not None and not runs_own_units_of_work():
        session.rollback()
        g.db_rolled_back = True


def undo_refused(exc: DomainError) -> None:
    """Undo the request's unit of work after a refusal, unless the refusal keeps it.

    A view that catches a DomainError to show it beside a form must call
    this (`attach_error` does), or what the service flushed before refusing
    would be committed by `commit_request`.
    """
    if not exc.keeps_transaction:
        _rollback()


def flash_refusal(exc: DomainError) -> None:
    """Undo a refused action (`undo_refused`) and flash why, for the page redirected to."""
    undo_refused(exc)
    flash(localized(exc), "error")


def json_error(
    code: str,
    message: str,
    status: int,
    field: str | None = None,
    details: dict[str, Any] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    if details is not None:
        error["details"] = details
    response = jsonify({"error": error})
    response.status_code = status
    return response


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), status


def _register_error_handlers(app: APIFlask) -> None:
    # Registered first: APIFlask's error_processor also installs a catch-all
    # HTTPException handler, which the page/JSON handler below replaces.
    @app.error_processor
    def api_error(error: HTTPError) -> Any:
        # Input validation (422) and abort() inside API views.
        _rollback()
        field, message = None, error.message
        if isinstance(error.detail, dict):
            for location in error.detail.values():
                if isinstance(location, dict) and location:
                    field, messages = next(iter(location.items()))
                    first = messages[0] if isinstance(messages, list) and messages else messages
                    message = f"{field}: {first}"
                    break
        code = "invalid_input" if error.status_code == 422 else f"http_{error.status_code}"
        return (
            {"error": {"code": code, "message": message, "field": field}},
            error.status_code,
            error.headers,
        )

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Any:
        undo_refused(exc)
        message = localized(exc)
        if wants_json():
            return json_error(exc.code, message, exc.http_status, exc.field, exc.details())
        return _error_page(exc.http_status, _("Request refused"), message)

    app.errorhandler(HTTPException)(http_error)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Any:
        _rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = _("Something went wrong on our side. It has been logged; please try again.")
        if wants_json():
            return json_error("internal_error", message, 500)
        return _error_page(500, _("Server error"), message)


def http_error(exc: HTTPException) -> Any:
    """The answer to an HTTP error (404, 405, 413 …): a page, or JSON under /api/."""
    _rollback()
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    message = _http_message(status, exc)
    if wants_json():
        response = json_error(code, message, status)
        # Keep Allow (405), Retry-After (429) and the like; drop the HTML type.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
    return _error_page(status, _("Error"), message)


def _http_message(status: int, exc: HTTPException) -> str:
    messages = {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You do not have permission to do this."),
        404: _("There is nothing at this address."),
        405: _("This address does not accept that method."),
        413: _("The upload is too large."),
        429: _("Too many requests. Please wait and try again."),
    }
    description = getattr(exc, "description", "") or ""
    if "CSRF" in description:
        return _("The form expired or was sent from elsewhere. Reload the page and try again.")
    return messages.get(status, exc.name or _("Error"))


def format_money_for_view(amount_minor: int, currency: str | None = None) -> str:
    """Minor units for the viewer, in their locale (the `money` filter in templates)."""
    from app.web.context import settings

    return format_money(amount_minor, currency or settings().currency, str(get_locale()))


@cache
def _labels() -> dict[str, dict[str, str]]:
    """Every models module's `LABELS`, merged by kind (read once)."""
    labels: dict[str, dict[str, str]] = {}
    for module in discover("models"):
        for kind, codes in getattr(module, "LABELS", {}).items():
            if kind in labels:
                raise ValueError(f"label kind {kind!r} is defined twice ({module.__name__})")
            labels[kind] = codes
    return labels


def label(kind: str, value: str) -> str:
    """A stored code (a status, a role) as words in the viewer's language.

    The kinds are those of the models modules' `LABELS`; an unknown code is
    shown as it is. :raises KeyError: an unknown kind.
    """
    text = _labels()[kind].get(value)
    return _(text) if text else value


def _register_template_helpers(app: APIFlask, settings: Settings) -> None:
    zone = ZoneInfo(settings.timezone)

    app.add_template_global(label)

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {
            "settings": settings,
            "current_locale": str(get_locale() or DEFAULT_LOCALE),
            "locales": LOCALES,
        }

    app.add_template_filter(format_money_for_view, "money")

    @app.template_filter("datetime")
    def datetime_filter(value: datetime | None) -> Markup:
        return time_tag(value, zone)


def _register_security_headers(app: APIFlask, settings: Settings) -> None:
    csp = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    )

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if settings.cookie_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.path.startswith(("/console", "/account", "/api/")):
            headers.setdefault("Cache-Control", "no-store")
        return response
