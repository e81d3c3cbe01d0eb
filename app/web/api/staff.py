"""JSON API of the platform's own administration (DESIGN §14).

The calling key and what it may do, staff users, API keys and the audit
trail (the dashboard's figures are in dashboard.py).
"""

from __future__ import annotations

from typing import Any

from flask import g
from marshmallow import RAISE

from app.auth import api_keys
from app.auth.permissions import PERMISSIONS
from app.auth.services import create_staff, list_staff, set_staff_active
from app.core.audit import list_audit
from app.core.clock import utcnow
from app.web.api import bp
from app.web.api.common import page_out
from app.web.api.security import requires
from app.web.api.staff_schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyList,
    ApiKeyOut,
    AuditPage,
    AuditQuery,
    MeOut,
    StaffActiveIn,
    StaffIn,
    StaffList,
    StaffOut,
)
from app.web.context import current_actor, db_session


@bp.get("/me")
@requires("dashboard.view")
@bp.output(MeOut)
def me() -> Any:
    """The API key making the call and what its role may do."""
    key = g.api_key
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "role": key.role,
        "permissions": sorted(p for p, roles in PERMISSIONS.items() if key.role in roles),
    }


@bp.get("/staff")
@requires("staff.view")
@bp.output(StaffList)
def staff_list() -> Any:
    """All staff users."""
    return {"items": list_staff(db_session())}


@bp.post("/staff")
@requires("staff.manage")
@bp.input(StaffIn, arg_name="data")
@bp.output(StaffOut, status_code=201)
@bp.doc(responses={409: "E-mail already used"})
def staff_create(data: dict[str, Any]) -> Any:
    """Create a staff user (the password must have at least 10 characters)."""
    return create_staff(
        db_session(),
        email=data["email"],
        role=data["role"],
        password=data["password"],
        name=data.get("name", ""),
        actor=current_actor(),
        now=utcnow(),
    )


@bp.post("/staff/<int:staff_id>/active")
@requires("staff.manage")
@bp.input(StaffActiveIn, arg_name="data")
@bp.output(StaffOut)
def staff_set_active(staff_id: int, data: dict[str, Any]) -> Any:
    """Enable or disable a staff login."""
    return set_staff_active(
        db_session(),
        staff_id=staff_id,
        active=data["active"],
        actor=current_actor(),
        now=utcnow(),
    )


@bp.get("/api-keys")
@requires("api_keys.manage")
@bp.output(ApiKeyList)
def api_key_list() -> Any:
    """All API keys, newest first (never their tokens)."""
    return {"items": api_keys.list_api_keys(db_session())}


@bp.post("/api-keys")
@requires("api_keys.manage")
@bp.input(ApiKeyIn, arg_name="data")
@bp.output(ApiKeyCreated, status_code=201)
def api_key_create(data: dict[str, Any]) -> Any:
    """Create an API key; the token is in this response only."""
    key, token = api_keys.create_api_key(
        db_session(), name=data["name"], role=data["role"], actor=current_actor(), now=utcnow()
    )
    return {**key.model_dump(), "token": token}


@bp.post("/api-keys/<int:key_id>/revoke")
@requires("api_keys.manage")
@bp.output(ApiKeyOut)
def api_key_revoke(key_id: int) -> Any:
    """Revoke an API key (idempotent)."""
    return api_keys.revoke_api_key(db_session(), key_id=key_id, actor=current_actor(), now=utcnow())


@bp.get("/audit")
@requires("audit.view")
@bp.input(AuditQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(AuditPage)
def audit(query: dict[str, Any]) -> Any:
    """The audit log, newest first."""
    entries, total = list_audit(
        db_session(),
        page=query["page"],
        per_page=query["per_page"],
        action=query.get("action") or None,
    )
    return page_out(entries, total, query)
