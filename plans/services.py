"""Retail plans and their versions (DESIGN §8).

Rules:

* A plan is identified by its code; its versions are 1, 2, … Only the
  latest version may be a draft, and a draft is edited in place. Editing a
  published or retired plan makes a new draft version with the new terms
  and leaves the old version untouched: subscribers keep what they bought.
* Publishing a draft retires the previously published version of the same
  code in the same transaction (at most one published version per code, a
  partial unique index).
* A plan whose margin (plans/pricing.py) is negative is published only with
  an explicit override and a reason, which is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from app.core.audit import Actor, record_audit
from app.core.db import insert_unique
from app.core.errors import N_, InvalidInput, clean_text
from app.core.money import format_plain
from plans.errors import (
    NegativeMargin,
    PlanChangedConcurrently,
    PlanCodeTaken,
    PlanNotFound,
    PlanStatusConflict,
)
from plans.models import Plan
from plans.pricing import PlanMargin, plan_margin
from plans.terms import PlanInput, check_status, plan_terms, validate_plan_input
from wholesale.models import HostCarrier
from wholesale.services import get_host, host_date

MAX_REASON_LENGTH = 500


def _plan_host(session: Session, host_id: int) -> HostCarrier:
    host = session.get(HostCarrier, host_id)
    if host is None:
        raise InvalidInput(N_("No host carrier %(id)s."), field="host_id", id=host_id)
    return host


# -- plans ---------------------------------------------------------------------------


def create_plan(session: Session, *, data: PlanInput, actor: Actor, now: datetime) -> Plan:
    """Create version 1 of a new plan, as a draft.

    :raises InvalidInput: bad terms or unknown host. :raises PlanCodeTaken: the code exists.
    """
    data = validate_plan_input(data)
    terms = plan_terms(data, currency=_plan_host(session, data.host_id).currency)
    plan = Plan(code=data.code, version=1, status="draft", created_at=now, **terms)
    insert_unique(
        session,
        plan,
        PlanCodeTaken(
            N_("A plan with code %(plan)s already exists; edit it instead."),
            field="code",
            plan=data.code,
        ),
    )
    record_audit(
        session,
        actor=actor,
        action="plan.create",
        now=now,
        target_type="plan",
        target_id=plan.id,
        details={"code": plan.code, "version": plan.version, "terms": terms},
    )
    return plan


def _latest_version(session: Session, code: str, *, lock: bool = False) -> Plan | None:
    query = select(Plan).where(Plan.code == code).order_by(col(Plan.version).desc()).limit(1)
    return session.exec(query.with_for_update() if lock else query).first()


def update_plan(
    session: Session, *, code: str, data: PlanInput, actor: Actor, now: datetime
) -> Plan:
    """Change a plan's terms; returns the version that now holds them.

    A draft latest version is edited in place; a published or retired one
    stays as it is and a new draft version (version + 1) gets the new terms.
    Locks the latest version. Idempotent: unchanged terms write nothing.
    :raises PlanNotFound, InvalidInput (also for a different code),
        PlanChangedConcurrently.
    """
    code = code.strip()
    data = validate_plan_input(data)
    if data.code != code:
        raise InvalidInput(
            N_("The code of plan %(plan)s cannot change; create a new plan instead."),
            field="code",
            plan=code,
        )
    latest = _latest_version(session, code, lock=True)
    if latest is None:
        raise PlanNotFound(N_("No plan with code %(plan)s."), field="code", plan=code)
    terms = plan_terms(data, currency=_plan_host(session, data.host_id).currency)
    before = latest.terms()
    changes = {
        key: {"before": before[key], "after": value}
        for key, value in terms.items()
        if before[key] != value
    }
    if not changes:
        return latest
    if latest.status == "draft":
        for key, value in terms.items():
            setattr(latest, key, value)
        session.add(latest)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="plan.update",
            now=now,
            target_type="plan",
            target_id=latest.id,
            details={"code": code, "version": latest.version, "changes": changes},
        )
        return latest
    plan = Plan(code=code, version=latest.version + 1, status="draft", created_at=now, **terms)
    insert_unique(
        session,
        plan,
        PlanChangedConcurrently(
            N_("Plan %(plan)s was changed at the same time by someone else; try again."),
            plan=code,
        ),
    )
    record_audit(
        session,
        actor=actor,
        action="plan.new_version",
        now=now,
        target_type="plan",
        target_id=plan.id,
        details={
            "code": code,
            "version": plan.version,
            "previous_version": latest.version,
            "changes": changes,
        },
    )
    return plan


def _get_plan_locked(session: Session, plan_id: int) -> Plan:
    plan = session.exec(select(Plan).where(Plan.id == plan_id).with_for_update()).first()
    if plan is None:
        raise PlanNotFound(N_("No plan %(id)s."), id=plan_id)
    return plan


def _override_reason(
    plan: Plan, margin: PlanMargin, *, override_negative_margin: bool, reason: str
) -> str | None:
    """None for a margin of 0 or more; for a negative margin, the cleaned reason to override it.

    :raises NegativeMargin: a negative margin without `override_negative_margin`.
    :raises InvalidInput: an override without a reason.
    """
    if margin.margin_minor >= 0:
        return None
    if not override_negative_margin:
        raise NegativeMargin(
            N_(
                "Plan %(plan)s has a negative margin of %(margin)s %(currency)s a period. "
                "Publishing it needs an explicit override with a reason."
            ),
            field="override_negative_margin",
            plan=plan.code,
            margin=format_plain(margin.margin_minor),
            currency=plan.currency,
        )
    reason = clean_text(reason, field="reason", max_length=MAX_REASON_LENGTH)
    if not reason:
        raise InvalidInput(
            N_("Publishing a plan with a negative margin needs a reason."), field="reason"
        )
    return reason


def _audit_publish(
    session: Session,
    plan: Plan,
    margin: PlanMargin,
    *,
    previous: Plan | None,
    override_reason: str | None,
    actor: Actor,
    now: datetime,
) -> None:
    """Record ``plan.publish``, and ``plan.publish_override`` with its reason if overridden."""
    details = {
        "code": plan.code,
        "version": plan.version,
        "margin_minor": margin.margin_minor,
        "currency": plan.currency,
        "rate_card_id": margin.rate_card_id,
        "retired_version": previous.version if previous is not None else None,
    }
    record_audit(
        session,
        actor=actor,
        action="plan.publish",
        now=now,
        target_type="plan",
        target_id=plan.id,
        details=details,
    )
    if override_reason is not None:
        record_audit(
            session,
            actor=actor,
            action="plan.publish_override",
            now=now,
            target_type="plan",
            target_id=plan.id,
            details={**details, "reason": override_reason},
        )


def publish_plan(
    session: Session,
    *,
    plan_id: int,
    override_negative_margin: bool = False,
    reason: str = "",
    actor: Actor,
    now: datetime,
) -> Plan:
    """Publish a draft and retire the version of the same code published before.

    The margin is computed at the rate card in force today in the host's time
    zone. A negative margin needs `override_negative_margin` and a reason;
    the plan is then marked `margin_override` and a ``plan.publish_override``
    audit record keeps the margin and the reason. Locks the plan and the
    published version.
    :raises PlanNotFound, PlanStatusConflict (not a draft), NoRateCard,
        NegativeMargin, InvalidInput (override without a reason).
    """
    plan = _get_plan_locked(session, plan_id)
    if plan.status != "draft":
        raise PlanStatusConflict(
            N_("Only a draft can be published; plan %(plan)s version %(version)s is %(status)s."),
            plan=plan.code,
            version=plan.version,
            status=plan.status,
        )
    host = get_host(session, plan.host_id)
    margin = plan_margin(session, plan=plan, on=host_date(host, now=now))
    override_reason = _override_reason(
        plan, margin, override_negative_margin=override_negative_margin, reason=reason
    )
    previous = session.exec(
        select(Plan).where(Plan.code == plan.code, Plan.status == "published").with_for_update()
    ).first()
    # Retire first and flush: the partial unique index allows one published version.
    if previous is not None:
        _retire(session, previous, actor=actor, now=now, superseded_by=plan.version)
    plan.status = "published"
    plan.published_at = now
    plan.margin_override = override_reason is not None
    session.add(plan)
    session.flush()
    _audit_publish(
        session,
        plan,
        margin,
        previous=previous,
        override_reason=override_reason,
        actor=actor,
        now=now,
    )
    return plan


def retire_plan(session: Session, *, plan_id: int, actor: Actor, now: datetime) -> Plan:
    """Stop selling a published plan; its subscribers keep its terms.

    Locks the plan. Idempotent on a retired plan.
    :raises PlanNotFound, PlanStatusConflict (a draft: it was never sold).
    """
    plan = _get_plan_locked(session, plan_id)
    if plan.status == "retired":
        return plan
    if plan.status != "published":
        raise PlanStatusConflict(
            N_("Plan %(plan)s version %(version)s is a draft; only a published plan is retired."),
            plan=plan.code,
            version=plan.version,
        )
    _retire(session, plan, actor=actor, now=now)
    return plan


def _retire(
    session: Session, plan: Plan, *, actor: Actor, now: datetime, superseded_by: int | None = None
) -> None:
    """Mark a published version retired (flushed at once) and audit it."""
    plan.status = "retired"
    plan.retired_at = now
    session.add(plan)
    session.flush()
    details: dict[str, Any] = {"code": plan.code, "version": plan.version}
    if superseded_by is not None:
        details["superseded_by"] = superseded_by
    record_audit(
        session,
        actor=actor,
        action="plan.retire",
        now=now,
        target_type="plan",
        target_id=plan.id,
        details=details,
    )


def get_plan(session: Session, plan_id: int) -> Plan:
    """The plan version `plan_id`, whatever its status. :raises PlanNotFound: no such plan."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise PlanNotFound(N_("No plan %(id)s."), id=plan_id)
    return plan


def find_plan_by_code(session: Session, code: str) -> Plan | None:
    """The latest version of the plan with this code, whatever its status."""
    return _latest_version(session, code.strip())


def list_plans(session: Session, *, status: str | None = None) -> list[Plan]:
    """The latest version of each plan, by code; `status` filters on that latest version."""
    latest = (
        select(Plan.code, func.max(Plan.version).label("version"))
        .group_by(col(Plan.code))
        .subquery()
    )
    query = select(Plan).join(
        latest, and_(col(Plan.code) == latest.c.code, col(Plan.version) == latest.c.version)
    )
    if status is not None:
        query = query.where(Plan.status == check_status(status))
    return list(session.exec(query.order_by(col(Plan.code))))


def list_plan_versions(session: Session, *, code: str) -> list[Plan]:
    """Every version of a plan, newest first."""
    return list(
        session.exec(
            select(Plan).where(Plan.code == code.strip()).order_by(col(Plan.version).desc())
        )
    )


def published_plans(session: Session) -> list[Plan]:
    """What the store sells: the published version of each plan, by code."""
    return list(
        session.exec(select(Plan).where(Plan.status == "published").order_by(col(Plan.code)))
    )
