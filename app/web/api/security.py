"""Bearer API keys for integrations, scoped by role like staff users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiflask import HTTPTokenAuth
from apiflask.exceptions import HTTPError
from flask import g

from app.auth.api_keys import authenticate_api_key
from app.auth.models import ApiKey
from app.auth.permissions import PERMISSIONS
from app.core.clock import utcnow
from app.web.context import database, db_session, runs_own_units_of_work

auth = HTTPTokenAuth(
    scheme="Bearer",
    description="An API key created by an admin in the console (`mvno_<prefix>_<secret>`).",
)


@auth.verify_token
def _verify(token: str) -> ApiKey | None:
    if runs_own_units_of_work():
        # The key's last use is written in a unit of work of its own, so the
        # request's session only reads while the view's service runs.
        with database().transaction() as session:
            key = authenticate_api_key(session, token=token, now=utcnow())
    else:
        key = authenticate_api_key(db_session(), token=token, now=utcnow())
    if key is not None:
        g.api_key = key
    return key


@auth.get_user_roles
def _roles(key: ApiKey) -> list[str]:
    return [key.role]


@auth.error_processor
def _auth_error(error: HTTPError) -> Any:
    if error.status_code == 401:
        body = {"code": "unauthorized", "message": "A valid API key is required.", "field": None}
        headers = {"WWW-Authenticate": 'Bearer realm="mvno"'}
    else:
        body = {
            "code": "permission_denied",
            "message": "This API key's role may not do this.",
            "field": None,
        }
        headers = {}
    return {"error": body}, error.status_code, headers


def requires(permission: str) -> Callable[[Any], Any]:
    """Authenticate with an API key whose role grants `permission` (403 otherwise)."""
    from app.web.api import bp

    roles = sorted(PERMISSIONS[permission])

    def decorator(view: Any) -> Any:
        # Merge with responses already documented by @bp.doc below this decorator.
        documented = dict(getattr(view, "_spec", {}).get("responses") or {})
        documented[403] = "The key's role may not do this"
        view = bp.doc(responses=documented)(view)
        return bp.auth_required(auth, roles=roles)(view)

    return decorator
