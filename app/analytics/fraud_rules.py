"""The fraud rules' settings: switches and thresholds, edited by admins, audited.

A rule runs with `RULE_PARAMS`' defaults until its first edit writes its
row (app/analytics/models.py). Every threshold is a whole number within its
bounds; the voucher rule names a customer, not a line, so it cannot suspend
one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from app.analytics.errors import RuleInvalid
from app.analytics.models import LINE_RULES, RULE_PARAMS, RULES, FraudRule, default_params
from app.core.audit import Actor, apply_changes, record_audit
from app.core.errors import N_


@dataclass(frozen=True)
class RuleSettings:
    """What a scan runs a rule with."""

    rule: str
    enabled: bool
    auto_suspend: bool
    params: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "enabled": self.enabled,
            "auto_suspend": self.auto_suspend,
            "params": dict(self.params),
        }


def _settings(rule: str, row: FraudRule | None) -> RuleSettings:
    params = default_params(rule)
    if row is None:
        return RuleSettings(rule, True, False, params)
    # A threshold added after the row was written keeps its default.
    params.update({k: int(v) for k, v in row.params.items() if k in params})
    return RuleSettings(rule, row.enabled, row.auto_suspend, params)


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise RuleInvalid(N_("Unknown rule %(value)s."), field="rule", value=rule)


def list_rule_settings(session: Session) -> list[RuleSettings]:
    """Every rule's settings in the order of `RULES`; reads only."""
    rows = {row.rule: row for row in session.exec(select(FraudRule))}
    return [_settings(rule, rows.get(rule)) for rule in RULES]


def get_rule_settings(session: Session, rule: str) -> RuleSettings:
    """One rule's settings. :raises RuleInvalid: an unknown rule."""
    _check_rule(rule)
    return _settings(rule, session.get(FraudRule, rule))


def _checked_params(rule: str, params: dict[str, Any]) -> dict[str, int]:
    checked: dict[str, int] = {}
    for name, (_default, least, greatest) in RULE_PARAMS[rule].items():
        value = params.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= greatest:
            raise RuleInvalid(
                N_("%(name)s must be a whole number from %(min)s to %(max)s."),
                field=name,
                name=name,
                min=least,
                max=greatest,
            )
        checked[name] = value
    unknown = sorted(set(params) - set(checked))
    if unknown:
        raise RuleInvalid(N_("Unknown setting %(value)s."), field=unknown[0], value=unknown[0])
    return checked


def update_rule_settings(
    session: Session,
    *,
    rule: str,
    enabled: bool,
    auto_suspend: bool,
    params: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> RuleSettings:
    """Set one rule's switches and every threshold; audited with what changed.

    Locks the row. Alerts already raised keep their figures.
    :raises RuleInvalid: unknown rule, a threshold missing, unknown or out of
        bounds, or automatic suspension asked of the voucher rule.
    """
    _check_rule(rule)
    checked = _checked_params(rule, params)
    if auto_suspend and rule not in LINE_RULES:
        raise RuleInvalid(
            N_("This rule names a customer, not a line: it cannot suspend one."),
            field="auto_suspend",
        )
    row = session.exec(
        select(FraudRule).where(FraudRule.rule == rule).with_for_update()
    ).first() or FraudRule(rule=rule, params=default_params(rule), updated_at=now)
    changes = apply_changes(
        row, {"enabled": enabled, "auto_suspend": auto_suspend, "params": checked}
    )
    row.updated_at = now
    session.add(row)
    session.flush()
    if changes:
        record_audit(
            session,
            actor=actor,
            action="fraud_rule.update",
            now=now,
            target_type="fraud_rule",
            target_id=rule,
            details=changes,
        )
    return _settings(rule, row)
