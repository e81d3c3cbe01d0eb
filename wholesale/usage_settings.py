"""A host's usage-file columns and reconciliation tolerances (DESIGN §7).

* **Columns.** A host may name the columns of its usage files its own way:
  `cdr_columns` maps each of our fields (`record_id`, `msisdn`, `service`,
  `start_time`, `quantity`, `called_number`) to its header name, and
  `ignore` lists further columns it sends that we do not use. Fields left
  out keep their default names; two fields may not share a column.
* **Tolerances.** Reconciliation counts a difference between the host's
  invoice and our settlement as a match when the amount differs by at most
  `reconcile_amount_tolerance_minor` and the quantity by at most
  `reconcile_quantity_tolerance_bp` basis points of ours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from app.core.audit import Actor, record_audit
from app.core.errors import N_, InvalidInput
from wholesale.errors import HostNotFound
from wholesale.models import HostCarrier

USAGE_FIELDS = ("record_id", "msisdn", "service", "start_time", "quantity", "called_number")
MAX_COLUMN_NAME = 64
MAX_AMOUNT_TOLERANCE_MINOR = 100_000_00
MAX_QUANTITY_TOLERANCE_BP = 10_000


def _column_name(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_COLUMN_NAME:
        raise InvalidInput(
            N_("A column name is 1 to %(max)s characters of text."),
            field=f"cdr_columns.{field}",
            max=MAX_COLUMN_NAME,
        )
    return value.strip()


def validate_cdr_columns(columns: Any) -> dict[str, Any] | None:
    """The cleaned column mapping, or None for the default columns.

    :raises InvalidInput: an unknown field, a bad name, or one column for two fields.
    """
    if columns is None or columns == {}:
        return None
    if not isinstance(columns, dict):
        raise InvalidInput(
            N_("The usage columns must be a table of field = column."), field="cdr_columns"
        )
    cleaned: dict[str, Any] = {}
    for field, value in columns.items():
        if field == "ignore":
            if not isinstance(value, list):
                raise InvalidInput(
                    N_("ignore must be a list of column names."), field="cdr_columns.ignore"
                )
            cleaned["ignore"] = [_column_name(name, field="ignore") for name in value]
        elif field in USAGE_FIELDS:
            cleaned[field] = _column_name(value, field=field)
        else:
            raise InvalidInput(
                N_("Unknown usage field %(name)s; known: %(known)s."),
                field="cdr_columns",
                name=field,
                known=", ".join((*USAGE_FIELDS, "ignore")),
            )
    names = {field: cleaned.get(field, field) for field in USAGE_FIELDS}
    taken = list(names.values()) + list(cleaned.get("ignore", []))
    if len(set(taken)) != len(taken):
        raise InvalidInput(N_("Two usage fields share one column."), field="cdr_columns")
    return cleaned


def validate_tolerances(amount_minor: Any, quantity_bp: Any) -> tuple[int, int]:
    """Both tolerances as integers. :raises InvalidInput: negative, too large or not whole."""
    checks = (
        ("reconcile_amount_tolerance", amount_minor, MAX_AMOUNT_TOLERANCE_MINOR),
        ("reconcile_quantity_tolerance_bp", quantity_bp, MAX_QUANTITY_TOLERANCE_BP),
    )
    for field, value, most in checks:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
            raise InvalidInput(
                N_("A tolerance is a whole number from 0 to %(max)s."), field=field, max=most
            )
    return int(amount_minor), int(quantity_bp)


def set_usage_settings(
    session: Session,
    *,
    host_id: int,
    cdr_columns: Any,
    amount_tolerance_minor: int,
    quantity_tolerance_bp: int,
    actor: Actor,
    now: datetime,
) -> HostCarrier:
    """Set the host's usage columns and tolerances; audited, idempotent. Locks the host.

    :raises HostNotFound: :raises InvalidInput: see the validators.
    """
    columns = validate_cdr_columns(cdr_columns)
    amount, quantity = validate_tolerances(amount_tolerance_minor, quantity_tolerance_bp)
    host = session.exec(
        select(HostCarrier).where(HostCarrier.id == host_id).with_for_update()
    ).first()
    if host is None:
        raise HostNotFound(N_("No host carrier %(id)s."), id=host_id)
    before = {
        "cdr_columns": host.cdr_columns,
        "reconcile_amount_tolerance_minor": host.reconcile_amount_tolerance_minor,
        "reconcile_quantity_tolerance_bp": host.reconcile_quantity_tolerance_bp,
    }
    after = {
        "cdr_columns": columns,
        "reconcile_amount_tolerance_minor": amount,
        "reconcile_quantity_tolerance_bp": quantity,
    }
    if before == after:
        return host
    host.cdr_columns = columns
    host.reconcile_amount_tolerance_minor = amount
    host.reconcile_quantity_tolerance_bp = quantity
    session.add(host)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="host.usage_settings",
        now=now,
        target_type="host_carrier",
        target_id=host.id,
        details={"before": before, "after": after},
    )
    return host
