"""API schemas of the platform's administration: the calling key, staff, API keys and
the audit trail.
"""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, Email, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.auth.permissions import ROLES
from app.core import limits
from app.web.api.schemas import NON_BLANK_TEXT, PLAIN_TEXT, JsonBool, WholeNumber


class StaffOut(Schema):
    id = WholeNumber(required=True)
    email = String(required=True)
    name = String(required=True)
    role = String(required=True)
    is_active = Boolean(required=True)
    created_at = DateTime(required=True)
    last_login_at = DateTime(allow_none=True)


class StaffListItem(StaffOut):
    """StaffOut inside a list (a separate component keeps apispec's references unique)."""


class StaffList(Schema):
    items = List(Nested(StaffListItem), required=True)


class StaffIn(Schema):
    email = Email(required=True, validate=Length(max=254))
    role = String(required=True, validate=OneOf(ROLES))
    password = String(required=True, validate=Length(min=10, max=256), load_only=True)
    name = String(load_default="", validate=[Length(max=limits.PERSON_NAME), PLAIN_TEXT])


class StaffActiveIn(Schema):
    active = JsonBool(required=True)


class ApiKeyOut(Schema):
    id = WholeNumber(required=True)
    name = String(required=True)
    prefix = String(required=True)
    role = String(required=True)
    created_at = DateTime(required=True)
    revoked_at = DateTime(allow_none=True)
    last_used_at = DateTime(allow_none=True)


class ApiKeyCreated(ApiKeyOut):
    token = String(
        required=True, metadata={"description": "The key itself. Shown only in this response."}
    )


class ApiKeyListItem(ApiKeyOut):
    """ApiKeyOut inside a list."""


class ApiKeyList(Schema):
    items = List(Nested(ApiKeyListItem), required=True)


class ApiKeyIn(Schema):
    name = String(required=True, validate=[Length(min=1, max=limits.LABEL), NON_BLANK_TEXT])
    role = String(required=True, validate=OneOf(ROLES))


class AuditOut(Schema):
    id = WholeNumber(required=True)
    at = DateTime(required=True)
    actor_kind = String(required=True)
    actor_id = WholeNumber(allow_none=True)
    actor_label = String(required=True)
    action = String(required=True)
    target_type = String(required=True)
    target_id = String(required=True)
    details = Dict(required=True)


class AuditPage(Schema):
    items = List(Nested(AuditOut), required=True)
    total = WholeNumber(required=True)
    page = WholeNumber(required=True)
    per_page = WholeNumber(required=True)


class AuditQuery(Schema):
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=50, validate=Range(min=1, max=200))
    action = String(validate=[Length(max=80), PLAIN_TEXT])


class MeOut(Schema):
    id = WholeNumber(required=True)
    name = String(required=True)
    prefix = String(required=True)
    role = String(required=True)
    permissions = List(String(), required=True)
