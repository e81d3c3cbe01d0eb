"""Add-ons: data packs bought on top of a plan (DESIGN §8).

Add-ons are not versioned: a pack is used up in the period it is bought
in, so an add-on is edited in place and keeps its code. Its status is
draft, published (on sale) or retired, like a plan's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.core.audit import Actor, apply_changes, record_audit
from app.core.db import insert_unique
from app.core.errors import N_
from plans.errors import AddOnCodeTaken, AddOnNotFound
from plans.models import AddOn
from plans.terms import MAX_NAME_LENGTH, check_code, check_int, check_status, clean_localized


def validate_addon_input(
    *, code: str, names: dict[str, str], price_minor: int, data_mb: int, status: str
) -> dict[str, Any]:
    """Check an add-on's fields and return them cleaned, keyed by column.

    Pure. :raises InvalidInput: naming the field.
    """
    return {
        "code": check_code(code),
        "names": clean_localized(names, name="names", max_length=MAX_NAME_LENGTH, required=True),
        "price_minor": check_int(price_minor, name="price_minor"),
        "data_mb": check_int(data_mb, name="data_mb", minimum=1),
        "status": check_status(status),
    }


def upsert_addon(
    session: Session,
    *,
    code: str,
    names: dict[str, str],
    price_minor: int,
    data_mb: int,
    status: str = "draft",
    actor: Actor,
    now: datetime,
) -> AddOn:
    """Create an add-on or update the one with this code.

    Add-ons are not versioned: a pack is used up in the period it is bought
    in. Locks an existing add-on. Idempotent: unchanged fields write nothing.
    :raises InvalidInput, AddOnCodeTaken (created concurrently).
    """
    fields = validate_addon_input(
        code=code, names=names, price_minor=price_minor, data_mb=data_mb, status=status
    )
    addon = session.exec(
        select(AddOn).where(AddOn.code == fields["code"]).with_for_update()
    ).first()
    if addon is None:
        addon = AddOn(**fields, created_at=now)
        insert_unique(
            session,
            addon,
            AddOnCodeTaken(
                N_("Add-on %(addon)s was created at the same time by someone else; try again."),
                field="code",
                addon=fields["code"],
            ),
        )
        record_audit(
            session,
            actor=actor,
            action="addon.create",
            now=now,
            target_type="addon",
            target_id=addon.id,
            details=fields,
        )
        return addon
    changes = apply_changes(addon, fields)
    if changes:
        session.add(addon)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="addon.update",
            now=now,
            target_type="addon",
            target_id=addon.id,
            details={"code": addon.code, "changes": changes},
        )
    return addon


def set_addon_status(
    session: Session, *, code: str, status: str, actor: Actor, now: datetime
) -> AddOn:
    """Draft, publish or retire an add-on.

    Locks the add-on. Idempotent: the same status again writes nothing.
    :raises AddOnNotFound, InvalidInput (an unknown status).
    """
    check_status(status)
    addon = session.exec(select(AddOn).where(AddOn.code == code.strip()).with_for_update()).first()
    if addon is None:
        raise AddOnNotFound(N_("No add-on with code %(addon)s."), field="code", addon=code)
    if addon.status != status:
        before, addon.status = addon.status, status
        session.add(addon)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="addon.status",
            now=now,
            target_type="addon",
            target_id=addon.id,
            details={"code": addon.code, "before": before, "after": status},
        )
    return addon


def list_addons(session: Session, *, status: str | None = None) -> list[AddOn]:
    """Add-ons by code; `status` filters. :raises InvalidInput: an unknown status."""
    query = select(AddOn)
    if status is not None:
        query = query.where(AddOn.status == check_status(status))
    return list(session.exec(query.order_by(col(AddOn.code))))
