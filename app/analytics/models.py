"""Fraud and anomaly rules and the alerts they raise (DESIGN §2, app/analytics).

`FraudRule` holds one rule's settings: whether it runs, whether an alert
suspends the line at once, and its thresholds (`params`, whole numbers named
in `RULE_PARAMS` with their defaults and bounds). A rule without a row runs
with its defaults; an admin's first edit writes the row.

`FraudAlert` is one finding: a rule, the line (none for voucher PINs, which
belong to a customer), the customer, the local day it is about and the
figures that made it fire. One alert per (rule, subject, day): `subject` is
`line:<id>` or `customer:<id>`, UNIQUE with the rule and the day, so a scan
run again raises nothing new. Status `open` → `acknowledged` or
`dismissed`; `ticket_id` once a ticket was opened for it, `suspended_at`
once its line was suspended for it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

RULES = ("usage_spike", "sim_box", "new_line_burst", "voucher_failures")
ALERT_STATUSES = ("open", "acknowledged", "dismissed")
# Rules whose alerts name a line, so they may suspend it.
LINE_RULES = ("usage_spike", "sim_box", "new_line_burst")

# Each rule's thresholds: name -> (default, least, greatest). KB and seconds as
# everywhere in charging; 1 GB = 1,048,576 KB.
RULE_PARAMS: dict[str, dict[str, tuple[int, int, int]]] = {
    "usage_spike": {
        # Fires when the day's data or voice is above factor_pct % of the median
        # of the line's days of history (500 = five times), …
        "factor_pct": (500, 110, 100_000),
        # … the line has at least this many days of history in the 30 days before, …
        "history_days": (7, 1, 30),
        # … and the day's amount is at least this (so tiny lines never alert).
        "min_data_kb": (1_048_576, 1, 1_000_000_000),
        "min_voice_s": (7_200, 1, 10_000_000),
    },
    "sim_box": {
        # At least this many outgoing calls in a day …
        "min_calls": (100, 1, 100_000),
        # … with incoming calls at most this percentage of them.
        "max_incoming_pct": (2, 0, 100),
    },
    "new_line_burst": {
        # More than this within 24 h of activation fires.
        "max_data_kb": (3_145_728, 1, 1_000_000_000),
        "max_voice_s": (10_800, 1, 10_000_000),
    },
    "voucher_failures": {
        # At least this many failed voucher PINs of one customer …
        "min_failures": (5, 2, 1_000),
        # … within this many minutes.
        "window_minutes": (60, 1, 10_080),
    },
}

RULE_LABELS = {
    "usage_spike": N_("Usage far above the line's median"),
    "sim_box": N_("Many outgoing calls, almost no incoming (SIM box)"),
    "new_line_burst": N_("Heavy usage within 24 hours of activation"),
    "voucher_failures": N_("Repeated failed voucher PINs"),
}
PARAM_LABELS = {
    "factor_pct": N_("Times the median, in percent (500 = 5×)"),
    "history_days": N_("Days of history needed"),
    "min_data_kb": N_("Least data in the day (KB)"),
    "min_voice_s": N_("Least voice in the day (seconds)"),
    "min_calls": N_("Least outgoing calls in the day"),
    "max_incoming_pct": N_("Most incoming calls, in percent of outgoing"),
    "max_data_kb": N_("Data allowed in the first 24 h (KB)"),
    "max_voice_s": N_("Voice allowed in the first 24 h (seconds)"),
    "min_failures": N_("Failed PINs"),
    "window_minutes": N_("Within minutes"),
}
LABELS: dict[str, dict[str, str]] = {
    "fraud_rule": RULE_LABELS,
    "fraud_param": PARAM_LABELS,
    "fraud_status": {
        "open": N_("open"),
        "acknowledged": N_("acknowledged"),
        "dismissed": N_("dismissed"),
    },
}


def default_params(rule: str) -> dict[str, int]:
    """The rule's thresholds as shipped."""
    return {name: spec[0] for name, spec in RULE_PARAMS[rule].items()}


class FraudRule(SQLModel, table=True):
    __tablename__ = "fraud_rule"
    __table_args__ = (CheckConstraint(in_check("rule", RULES), name="rule_known"),)

    rule: str = Field(primary_key=True, max_length=20)
    enabled: bool = True
    auto_suspend: bool = False
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class FraudAlert(SQLModel, table=True):
    __tablename__ = "fraud_alert"
    __table_args__ = (
        UniqueConstraint("rule", "subject", "day"),
        CheckConstraint(in_check("rule", RULES), name="rule_known"),
        CheckConstraint(in_check("status", ALERT_STATUSES), name="status_known"),
        CheckConstraint(
            "line_id IS NOT NULL OR rule = 'voucher_failures'", name="line_unless_vouchers"
        ),
        Index("ix_fraud_alert_status_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=20)
    subject: str = Field(max_length=40)
    line_id: int | None = Field(default=None, foreign_key="line.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    day: date
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open", max_length=15)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    suspended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_changed_by: str = Field(default="", max_length=200)
