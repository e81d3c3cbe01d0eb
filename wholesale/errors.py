"""Refusals of the wholesale services (DESIGN §7)."""

from app.core.errors import Conflict, NotFound


class HostNotFound(NotFound):
    code = "host_not_found"


class HostCodeTaken(Conflict):
    code = "host_code_taken"


class RateCardConflict(Conflict):
    code = "rate_card_conflict"
