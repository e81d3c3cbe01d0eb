"""Retail plans, their versions and margin; add-ons (DESIGN §8, §5).

Rules:

* A plan is identified by its code; its versions are 1, 2, … Only the
  latest version may be a draft, and a draft is edited in place. Editing a
  published or retired plan makes a new draft version with the new terms
  and leaves the old version untouched: subscribers keep what they bought.
* Publishing a draft retires the previously published version of the same
  code in the same transaction (at most one published version per code, a
  partial unique index).
* Margin = price − wholesale cost of the full allowances of one period −
  line fee, against the host's rate card in force (`plan_margin`). A plan
  whose margin is negative is published only with an explicit override and
  a reason, which is audited.
* Money: plan amounts are minor units; rate card prices micro-units. Each
  cost component is computed exactly in micro-units and converted once,
  round-half-up (`micro_to_minor`); the line fee is pro-rated by days over a
  30-day month inside that one rounding.
* The §5 prepaid cap uses `monthly_fee_minor` = round_half_up(price × 30 /
  validity_days).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from app.core.audit import Actor, apply_changes, record_audit
from app.core.db import insert_unique
from app.core.errors import N_, InvalidInput, clean_text
from app.core.money import format_plain, round_half_up
from plans.errors import (
    AddOnCodeTaken,
    AddOnNotFound,
    NegativeMargin,
    NoRateCard,
    PlanChangedConcurrently,
    PlanCodeTaken,
    PlanNotFound,
    PlanStatusConflict,
)
from plans.models import MAX_VALIDITY_DAYS, PLAN_STATUSES, AddOn, Plan
from wholesale.models import HostCarrier, RateCard
from wholesale.services import get_host, host_date, rate_card_on

LOCALES = ("zh_Hans", "en")
PLAN_CODE_RE = re.compile(r"[A-Z0-9_-]{2,40}")
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 1000
MAX_VOICE_INCREMENT_S = 3600
MAX_REASON_LENGTH = 500
# Amounts are stored in INTEGER columns; larger values would fail in PostgreSQL.
MAX_INT = 2**31 - 1
MICRO_PER_MINOR = 10_000
DAYS_PER_MONTH = 30


@dataclass(frozen=True, kw_only=True)
class PlanInput:
    """The terms of a plan as staff, the API or a catalog file give them."""

    code: str
    names: dict[str, str]
    descriptions: dict[str, str] = field(default_factory=dict)
    host_id: int
    price_minor: int
    validity_days: int
    data_mb: int = 0
    voice_min: int = 0
    sms: int = 0
    overage_data_per_mb_minor: int = 0
    overage_voice_per_min_minor: int = 0
    overage_sms_minor: int = 0
    voice_increment_s: int = 60
    auto_renew_default: bool = True

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict, under the name pydantic models use for it (the web layer's)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PlanMargin:
    """One period of a plan against the wholesale prices of `rate_card_id`, in minor units."""

    price_minor: int
    data_cost_minor: int
    voice_cost_minor: int
    sms_cost_minor: int
    line_fee_minor: int
    margin_minor: int
    rate_card_id: int | None

    @property
    def cost_minor(self) -> int:
        return (
            self.data_cost_minor + self.voice_cost_minor + self.sms_cost_minor + self.line_fee_minor
        )


# -- validation ----------------------------------------------------------------------


def _check_int(value: object, *, name: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(N_("%(name)s must be a whole number."), field=name, name=name)
    if value < 0 and minimum == 0:
        raise InvalidInput(N_("%(name)s must not be negative."), field=name, name=name)
    if not minimum <= value <= maximum:
        raise InvalidInput(
            N_("%(name)s must be from %(min)s to %(max)s; got %(value)s."),
            field=name,
            name=name,
            min=minimum,
            max=maximum,
            value=value,
        )
    return value


def _check_code(code: object, *, name: str = "code") -> str:
    text = code.strip() if isinstance(code, str) else ""
    if not PLAN_CODE_RE.fullmatch(text):
        raise InvalidInput(
            N_("A code is 2 to 40 characters of A-Z, 0-9, _ and -; got %(value)r."),
            field=name,
            value=text,
        )
    return text


def clean_localized(
    values: object, *, name: str, max_length: int, required: bool
) -> dict[str, str]:
    """Texts per locale (zh_Hans, en): known locales only, no control characters.

    Empty texts are dropped; `required` asks for at least one.
    :raises InvalidInput: naming ``name.locale`` for a bad text.
    """
    if not isinstance(values, dict):
        raise InvalidInput(
            N_("%(name)s must give a text per language (%(locales)s)."),
            field=name,
            name=name,
            locales=", ".join(LOCALES),
        )
    cleaned: dict[str, str] = {}
    for locale, text in values.items():
        if locale not in LOCALES:
            raise InvalidInput(
                N_("%(name)s has an unknown language %(locale)r; use %(locales)s."),
                field=name,
                name=name,
                locale=locale,
                locales=", ".join(LOCALES),
            )
        key = f"{name}.{locale}"
        if not isinstance(text, str):
            raise InvalidInput(N_("%(name)s must be text."), field=key, name=key)
        text = clean_text(text, field=key, max_length=max_length)
        if text:
            cleaned[locale] = text
    if required and not cleaned:
        raise InvalidInput(
            N_("%(name)s needs a text in at least one of %(locales)s."),
            field=name,
            name=name,
            locales=", ".join(LOCALES),
        )
    return cleaned


def validate_plan_input(data: PlanInput) -> PlanInput:
    """Check every field of a plan's terms and return them cleaned (trimmed texts).

    Pure. :raises InvalidInput: naming the first bad field.
    """
    code = _check_code(data.code)
    names = clean_localized(data.names, name="names", max_length=MAX_NAME_LENGTH, required=True)
    descriptions = clean_localized(
        data.descriptions,
        name="descriptions",
        max_length=MAX_DESCRIPTION_LENGTH,
        required=False,
    )
    _check_int(data.host_id, name="host_id", minimum=1)
    _check_int(data.price_minor, name="price_minor")
    if (
        isinstance(data.validity_days, int)
        and not isinstance(data.validity_days, bool)
        and not 1 <= data.validity_days <= MAX_VALIDITY_DAYS
    ):
        # Nothing may be prepaid more than 24 months ahead (§5), so no period is longer.
        raise InvalidInput(
            N_(
                "validity_days must be from 1 to %(max)s days (at most 24 months of "
                "prepaid service); got %(value)s."
            ),
            field="validity_days",
            max=MAX_VALIDITY_DAYS,
            value=data.validity_days,
        )
    _check_int(data.validity_days, name="validity_days", minimum=1, maximum=MAX_VALIDITY_DAYS)
    for name in (
        "data_mb",
        "voice_min",
        "sms",
        "overage_data_per_mb_minor",
        "overage_voice_per_min_minor",
        "overage_sms_minor",
    ):
        _check_int(getattr(data, name), name=name)
    _check_int(
        data.voice_increment_s, name="voice_increment_s", minimum=1, maximum=MAX_VOICE_INCREMENT_S
    )
    if not isinstance(data.auto_renew_default, bool):
        raise InvalidInput(
            N_("%(name)s must be true or false."),
            field="auto_renew_default",
            name="auto_renew_default",
        )
    return dataclasses.replace(data, code=code, names=names, descriptions=descriptions)


def plan_terms(data: PlanInput, *, currency: str) -> dict[str, Any]:
    """The terms of validated input, keyed like `Plan.terms()`, priced in `currency`."""
    return {
        "names": dict(data.names),
        "descriptions": dict(data.descriptions),
        "host_id": data.host_id,
        "currency": currency,
        "price_minor": data.price_minor,
        "validity_days": data.validity_days,
        "data_mb": data.data_mb,
        "voice_min": data.voice_min,
        "sms": data.sms,
        "overage_data_per_mb_minor": data.overage_data_per_mb_minor,
        "overage_voice_per_min_minor": data.overage_voice_per_min_minor,
        "overage_sms_minor": data.overage_sms_minor,
        "voice_increment_s": data.voice_increment_s,
        "auto_renew_default": data.auto_renew_default,
    }


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


def micro_to_minor(amount_micro: int) -> int:
    """Micro-units to minor units, round-half-up (10,000 micro-units to the fen/cent)."""
    return round_half_up(amount_micro, MICRO_PER_MINOR)


def margin_with_rate_card(plan: Plan, card: RateCard) -> PlanMargin:
    """The margin of one period of `plan` at the prices of `card`. Pure.

    Each component is the exact micro-unit cost of the full allowance,
    rounded half-up to minor units on its own; the line fee is the monthly
    line price pro-rated by days, ``line × validity_days / 30``, inside that
    one rounding. Margin = price − the four rounded components.
    """
    data_cost = micro_to_minor(plan.data_mb * card.price("data"))
    voice_cost = micro_to_minor(plan.voice_min * card.price("voice"))
    sms_cost = micro_to_minor(plan.sms * card.price("sms"))
    line_fee = round_half_up(
        card.price("line") * plan.validity_days, DAYS_PER_MONTH * MICRO_PER_MINOR
    )
    return PlanMargin(
        price_minor=plan.price_minor,
        data_cost_minor=data_cost,
        voice_cost_minor=voice_cost,
        sms_cost_minor=sms_cost,
        line_fee_minor=line_fee,
        margin_minor=plan.price_minor - data_cost - voice_cost - sms_cost - line_fee,
        rate_card_id=card.id,
    )


def plan_margin(session: Session, *, plan: Plan, on: date) -> PlanMargin:
    """The margin of one period of `plan` at the host's rate card in force on `on`.

    :raises NoRateCard: the host has no card in force that day.
    """
    card = rate_card_on(session, host_id=plan.host_id, on=on)
    if card is None:
        host = get_host(session, plan.host_id)
        raise NoRateCard(
            N_(
                "Host %(host)s has no rate card in force on %(date)s, so the margin of "
                "plan %(plan)s cannot be computed. Add a rate card first."
            ),
            host=host.code,
            date=on.isoformat(),
            plan=plan.code,
        )
    return margin_with_rate_card(plan, card)


def _get_plan_locked(session: Session, plan_id: int) -> Plan:
    plan = session.exec(select(Plan).where(Plan.id == plan_id).with_for_update()).first()
    if plan is None:
        raise PlanNotFound(N_("No plan %(id)s."), id=plan_id)
    return plan


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
    overridden = False
    if margin.margin_minor < 0:
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
        overridden = True
    previous = session.exec(
        select(Plan).where(Plan.code == plan.code, Plan.status == "published").with_for_update()
    ).first()
    # Retire first and flush: the partial unique index allows one published version.
    if previous is not None:
        _retire(session, previous, actor=actor, now=now, superseded_by=plan.version)
    plan.status = "published"
    plan.published_at = now
    plan.margin_override = overridden
    session.add(plan)
    session.flush()
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
    if overridden:
        record_audit(
            session,
            actor=actor,
            action="plan.publish_override",
            now=now,
            target_type="plan",
            target_id=plan.id,
            details={**details, "reason": reason},
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
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise PlanNotFound(N_("No plan %(id)s."), id=plan_id)
    return plan


def find_plan_by_code(session: Session, code: str) -> Plan | None:
    """The latest version of the plan with this code, whatever its status."""
    return _latest_version(session, code.strip())


def _check_status(status: str, *, name: str = "status") -> str:
    if status not in PLAN_STATUSES:
        raise InvalidInput(
            N_("Status must be one of %(statuses)s; got %(status)r."),
            field=name,
            statuses=", ".join(PLAN_STATUSES),
            status=status,
        )
    return status


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
        query = query.where(Plan.status == _check_status(status))
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


def monthly_fee_minor(plan: Plan) -> int:
    """A plan's fee for 30 days, round-half-up: price × 30 / validity_days (the §5 cap)."""
    return monthly_fee_of(plan.price_minor, plan.validity_days)


def monthly_fee_of(price_minor: int, validity_days: int) -> int:
    """`monthly_fee_minor` from a plan's price and validity."""
    return round_half_up(price_minor * DAYS_PER_MONTH, validity_days)


# -- add-ons -------------------------------------------------------------------------


def validate_addon_input(
    *, code: str, names: dict[str, str], price_minor: int, data_mb: int, status: str
) -> dict[str, Any]:
    """Check an add-on's fields and return them cleaned, keyed by column.

    Pure. :raises InvalidInput: naming the field.
    """
    return {
        "code": _check_code(code),
        "names": clean_localized(names, name="names", max_length=MAX_NAME_LENGTH, required=True),
        "price_minor": _check_int(price_minor, name="price_minor"),
        "data_mb": _check_int(data_mb, name="data_mb", minimum=1),
        "status": _check_status(status),
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
    """Draft, publish or retire an add-on. Idempotent. :raises AddOnNotFound, InvalidInput."""
    _check_status(status)
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
    """Add-ons by code; `status` filters."""
    query = select(AddOn)
    if status is not None:
        query = query.where(AddOn.status == _check_status(status))
    return list(session.exec(query.order_by(col(AddOn.code))))
