"""Refusals of the fraud rules and alerts."""

from __future__ import annotations

from app.core.errors import Conflict, InvalidInput, NotFound


class RuleInvalid(InvalidInput):
    code = "fraud_rule_invalid"


class AlertNotFound(NotFound):
    code = "fraud_alert_not_found"


class AlertStateError(Conflict):
    """The alert's status (or its ticket or line) does not allow this action."""

    code = "fraud_alert_state"


class RuleNotFound(NotFound):
    code = "fraud_rule_not_found"
