"""The rows of a catalog file that passed every check, ready to be applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from plans.terms import PlanInput

TABLES = ("hosts", "rate_cards", "number_blocks", "plans", "addons")


@dataclass(frozen=True)
class HostRow:
    key: str
    fields: dict[str, Any]
    currency_given: bool = True  # False: the row took the default currency
    # cdr_columns and the reconciliation tolerances, when the row gives any.
    usage: dict[str, Any] | None = None


@dataclass(frozen=True)
class RateCardRow:
    key: str
    host: str
    effective_from: date
    prices_micro: dict[str, int]
    retail_micro: dict[str, int]


@dataclass(frozen=True)
class BlockRow:
    key: str
    host: str
    first: str
    last: str


@dataclass(frozen=True)
class PlanRow:
    key: str
    host: str
    status: str
    data: PlanInput  # host_id is resolved when the file is applied


@dataclass(frozen=True)
class AddOnRow:
    key: str
    fields: dict[str, Any]


@dataclass
class Rows:
    hosts: list[HostRow] = field(default_factory=list)
    rate_cards: list[RateCardRow] = field(default_factory=list)
    number_blocks: list[BlockRow] = field(default_factory=list)
    plans: list[PlanRow] = field(default_factory=list)
    addons: list[AddOnRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when no table has a row: the file has nothing to load."""
        return not (
            self.hosts or self.rate_cards or self.number_blocks or self.plans or self.addons
        )
