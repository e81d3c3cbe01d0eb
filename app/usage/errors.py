"""Refusals of mediation (DESIGN §7) beyond those of the file kit and the hosts."""

from app.core.errors import NotFound


class UsageFileNotFound(NotFound):
    """No import (usage file or reprocessing run) with that id."""

    code = "usage_file_not_found"
