"""Refusals of the plan and add-on services (DESIGN §8)."""

from app.core.errors import Conflict, NotFound


class PlanNotFound(NotFound):
    code = "plan_not_found"


class PlanCodeTaken(Conflict):
    code = "plan_code_taken"


class PlanStatusConflict(Conflict):
    """The plan is not in the status the action needs (publish a draft, retire a published)."""

    code = "plan_status"


class PlanChangedConcurrently(Conflict):
    code = "plan_changed_concurrently"


class NoRateCard(Conflict):
    """A margin needs the host's rate card in force, and there is none."""

    code = "no_rate_card"


class NegativeMargin(Conflict):
    code = "negative_margin"


class AddOnNotFound(NotFound):
    code = "addon_not_found"


class AddOnCodeTaken(Conflict):
    code = "addon_code_taken"
