"""Refusals of the wholesale services (DESIGN §7)."""

from app.core.errors import Conflict, NotFound


class HostNotFound(NotFound):
    code = "host_not_found"


class HostCodeTaken(Conflict):
    code = "host_code_taken"


class RateCardConflict(Conflict):
    code = "rate_card_conflict"


class NoRateCard(Conflict):
    """A day to be settled has no rate card in force: the host's cards start later."""

    code = "no_rate_card"
