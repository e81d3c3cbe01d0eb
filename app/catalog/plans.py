"""The [[plans]] and [[addons]] tables of a catalog file: checks and how they apply.

A plan's host is its ``host`` key, else the only host in the file and the
database. A new code is created; changed terms go through `update_plan` (a
published plan gets a new version); ``status = "published"`` then publishes
it — without a margin override, so a negative margin is a problem;
``status = "retired"`` retires the published version (its terms in the file
are not loaded). Add-ons are keyed by code and upserted.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, select

from app.catalog.checking import Checker, row_key
from app.catalog.hosts import host_id, transient_card
from app.catalog.rows import AddOnRow, PlanRow, Rows
from app.core.audit import Actor
from app.core.money import format_plain, parse_minor
from plans.addons import upsert_addon, validate_addon_input
from plans.models import PLAN_STATUSES, AddOn, Plan
from plans.pricing import margin_with_rate_card
from plans.services import create_plan, find_plan_by_code, publish_plan, retire_plan, update_plan
from plans.terms import PlanInput, plan_terms, validate_plan_input
from wholesale.models import HostCarrier, RateCard
from wholesale.services import local_date, rate_card_on

PLAN_KEYS = (
    "code",
    "name",
    "description",
    "status",
    "host",
    "price",
    "validity_days",
    "data_mb",
    "voice_min",
    "sms",
    "overage_data_per_mb",
    "overage_voice_per_min",
    "overage_sms",
    "voice_increment_s",
    "auto_renew",
)
ADDON_KEYS = ("code", "name", "price", "data_mb", "status")
# Stands in for the id of a host that is only created when the file is applied.
_UNSAVED_HOST_ID = 1
# Valid stand-ins for fields already reported, so the rest of a row is still checked.
_VALID_PLAN: dict[str, Any] = {
    "code": "XX",
    "names": {"en": "x"},
    "descriptions": {},
    "host_id": _UNSAVED_HOST_ID,
    "price_minor": 0,
    "validity_days": 1,
    "data_mb": 0,
    "voice_min": 0,
    "sms": 0,
    "overage_data_per_mb_minor": 0,
    "overage_voice_per_min_minor": 0,
    "overage_sms_minor": 0,
    "voice_increment_s": 60,
    "auto_renew_default": True,
}
_VALID_ADDON: dict[str, Any] = {
    "code": "XX",
    "names": {"en": "x"},
    "price_minor": 0,
    "data_mb": 1,
    "status": "draft",
}


def check_plan(
    check: Checker,
    rows: Rows,
    index: int,
    row: dict[str, Any],
    known_hosts: set[str],
    db_hosts: dict[str, HostCarrier],
) -> None:
    """Check one [[plans]] row, including whether its status can be reached.

    Adds it to `rows` or reports its problems.
    """
    key = row_key(row, index)
    table = "plans"
    required = ("code", "name", "price", "validity_days")
    if not check.keys(table, key, row, allowed=PLAN_KEYS, required=required):
        return
    ok = True
    status = row.get("status", "draft")
    if status not in PLAN_STATUSES:
        check.problem(
            table, key, f"status must be one of {', '.join(PLAN_STATUSES)}; got {status!r}"
        )
        ok = False
    host = _plan_host(check, key, row, known_hosts)
    price, overage_data, overage_voice, overage_sms = (
        check.amount(table, key, name, row.get(name, "0"), parse_minor)
        for name in ("price", "overage_data_per_mb", "overage_voice_per_min", "overage_sms")
    )
    # An amount already reported stands in as 0 so the other fields are still checked.
    values = {
        "code": row["code"],
        "names": row["name"],
        "descriptions": row.get("description", {}),
        "host_id": _UNSAVED_HOST_ID,
        "price_minor": price or 0,
        "validity_days": row["validity_days"],
        "data_mb": row.get("data_mb", 0),
        "voice_min": row.get("voice_min", 0),
        "sms": row.get("sms", 0),
        "voice_increment_s": row.get("voice_increment_s", 60),
        "auto_renew_default": row.get("auto_renew", True),
        "overage_data_per_mb_minor": overage_data or 0,
        "overage_voice_per_min_minor": overage_voice or 0,
        "overage_sms_minor": overage_sms or 0,
    }
    data = check.every_problem(
        table, key, lambda v: validate_plan_input(PlanInput(**v)), values, _VALID_PLAN
    )
    amounts = (price, overage_data, overage_voice, overage_sms)
    if data is None or not ok or host is None or any(a is None for a in amounts):
        return
    if any(seen.data.code == data.code for seen in rows.plans):
        check.problem(table, key, "the same plan code appears more than once")
        return
    plan_row = PlanRow(key, host.strip(), status, data)
    if _plan_status_problem(check, rows, plan_row, db_hosts):
        return
    rows.plans.append(plan_row)


def _plan_host(check: Checker, key: str, row: dict[str, Any], known_hosts: set[str]) -> str | None:
    """The code of the plan's host, or None after reporting why there is none."""
    if "host" in row:
        host = row["host"]
        return host if check.host_ref("plans", key, host, known_hosts) else None
    if len(known_hosts) == 1:
        return next(iter(known_hosts))
    check.problem(
        "plans",
        key,
        f"no host: the file and the database have {len(known_hosts)} hosts, "
        'so name one with host = "CODE"',
    )
    return None


def _plan_status_problem(
    check: Checker, rows: Rows, plan_row: PlanRow, db_hosts: dict[str, HostCarrier]
) -> bool:
    """Report what would stop the row's status from being reached; True if reported."""
    table, key = "plans", plan_row.key
    latest = find_plan_by_code(check.session, plan_row.data.code)
    if plan_row.status == "retired":
        versions = [] if latest is None else _statuses(check.session, plan_row.data.code)
        if not {"published", "retired"} & set(versions):
            check.problem(
                table,
                key,
                "only a plan that was published can be retired; this one never was",
            )
            return True
        return False
    if plan_row.status != "published" or check.rate_cards_incomplete:
        return False
    file_host = next((h.fields for h in rows.hosts if h.fields["code"] == plan_row.host), None)
    db_host = db_hosts.get(plan_row.host)
    currency = file_host["currency"] if file_host else db_host.currency if db_host else ""
    if latest is not None and latest.status == "published":
        terms = plan_terms(
            dataclasses.replace(plan_row.data, host_id=latest.host_id), currency=currency
        )
        if db_host is not None and db_host.id == latest.host_id and terms == latest.terms():
            return False  # already published as it is: nothing will be published
    timezone = file_host["timezone"] if file_host else db_host.timezone if db_host else "UTC"
    on = local_date(timezone, now=check.now)
    card = _card_in_force(check, rows, plan_row.host, db_host, on)
    if card is None:
        check.problem(
            table,
            key,
            f"host {plan_row.host} has no rate card in force on {on.isoformat()}, "
            "so the margin cannot be computed and the plan cannot be published",
        )
        return True
    return _negative_margin_problem(check, plan_row, card, currency)


def _negative_margin_problem(
    check: Checker, plan_row: PlanRow, card: RateCard, currency: str
) -> bool:
    """Report a negative margin against `card`; True if reported."""
    data = plan_row.data
    margin = margin_with_rate_card(
        Plan(
            code=data.code,
            host_id=data.host_id,
            price_minor=data.price_minor,
            validity_days=data.validity_days,
            data_mb=data.data_mb,
            voice_min=data.voice_min,
            sms=data.sms,
            created_at=check.now,
        ),
        card,
    )
    if margin.margin_minor < 0:
        check.problem(
            "plans",
            plan_row.key,
            f"negative margin of {format_plain(margin.margin_minor)} {currency} a period "
            f"(price {format_plain(margin.price_minor)}, wholesale cost "
            f"{format_plain(margin.cost_minor)}); a catalog cannot publish it — "
            "publish it in the console with an override and a reason",
        )
        return True
    return False


def _statuses(session: Session, code: str) -> list[str]:
    return list(session.exec(select(Plan.status).where(Plan.code == code)))


def _card_in_force(
    check: Checker, rows: Rows, host: str, db_host: HostCarrier | None, on: date
) -> RateCard | None:
    candidates: list[RateCard] = []
    if db_host is not None and db_host.id is not None:
        card = rate_card_on(check.session, host_id=db_host.id, on=on)
        if card is not None:
            candidates.append(card)
    for row in rows.rate_cards:
        if row.host == host and row.effective_from <= on:
            candidates.append(transient_card(row, now=check.now))
    return max(candidates, key=lambda card: card.effective_from, default=None)


def check_addon(check: Checker, rows: Rows, index: int, row: dict[str, Any]) -> None:
    """Check one [[addons]] row; add it to `rows` or report its problems."""
    key = row_key(row, index)
    table = "addons"
    required = ("code", "name", "price", "data_mb")
    if not check.keys(table, key, row, allowed=ADDON_KEYS, required=required):
        return
    price = check.amount(table, key, "price", row["price"], parse_minor)
    values = {
        "code": row["code"],
        "names": row["name"],
        "price_minor": price or 0,
        "data_mb": row["data_mb"],
        "status": row.get("status", "draft"),
    }
    fields = check.every_problem(
        table, key, lambda v: validate_addon_input(**v), values, _VALID_ADDON
    )
    if fields is None or price is None:
        return
    if any(seen.fields["code"] == fields["code"] for seen in rows.addons):
        check.problem(table, key, "the same add-on code appears more than once")
        return
    rows.addons.append(AddOnRow(key, fields))


# -- applying --------------------------------------------------------------------------


def apply_plan(session: Session, row: PlanRow, *, actor: Actor, now: datetime) -> str:
    """Create, update, publish or retire the row's plan; created, updated or unchanged.

    :raises DomainError: refused by the plan services.
    """
    data = dataclasses.replace(row.data, host_id=host_id(session, row.host))
    latest = find_plan_by_code(session, data.code)
    if latest is None:
        plan = create_plan(session, data=data, actor=actor, now=now)
        outcome = "created"
    elif row.status == "retired":
        published = session.exec(
            select(Plan).where(Plan.code == data.code, Plan.status == "published")
        ).first()
        if published is None or published.id is None:
            return "unchanged"
        retire_plan(session, plan_id=published.id, actor=actor, now=now)
        return "updated"
    else:
        before = (latest.id, latest.terms())
        plan = update_plan(session, code=data.code, data=data, actor=actor, now=now)
        outcome = "unchanged" if (plan.id, plan.terms()) == before else "updated"
    if row.status == "published" and plan.status != "published":
        assert plan.id is not None
        publish_plan(session, plan_id=plan.id, actor=actor, now=now)
        outcome = "created" if outcome == "created" else "updated"
    return outcome


def apply_addon(session: Session, row: AddOnRow, *, actor: Actor, now: datetime) -> str:
    """Create or update the row's add-on; returns created, updated or unchanged.

    :raises DomainError: refused by `upsert_addon`.
    """
    before = session.exec(select(AddOn).where(AddOn.code == row.fields["code"])).first()
    snapshot = _addon_snapshot(before) if before is not None else None
    addon = upsert_addon(session, **row.fields, actor=actor, now=now)
    if snapshot is None:
        return "created"
    return "unchanged" if _addon_snapshot(addon) == snapshot else "updated"


def _addon_snapshot(addon: AddOn) -> tuple[Any, ...]:
    return (addon.code, dict(addon.names), addon.price_minor, addon.data_mb, addon.status)
