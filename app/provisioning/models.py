"""The provisioning outbox (DESIGN §10): commands to the host network.

A row is written in the same transaction as the line change that causes it,
so the host is told about every change that committed and about no other.
A job delivers the rows after commit (app/provisioning/services.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

ACTIONS = (
    "activate",
    "suspend",
    "resume",
    "change_plan",
    "terminate",
    "port_out",
    "transfer_to_host",
    "swap_sim",
)
EVENT_STATUSES = ("pending", "delivered", "dead")
# Shown to people; the catalogs translate them.
EVENT_STATUS_LABELS = {
    "pending": N_("waiting"),
    "delivered": N_("delivered"),
    "dead": N_("failed (dead letter)"),
}
ACTION_LABELS = {
    "activate": N_("activate"),
    "suspend": N_("suspend"),
    "resume": N_("resume"),
    "change_plan": N_("change plan"),
    "terminate": N_("terminate"),
    "port_out": N_("port out"),
    "transfer_to_host": N_("transfer to host"),
    "swap_sim": N_("swap SIM"),
}


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "provisioning_status": EVENT_STATUS_LABELS,
    "provisioning_action": ACTION_LABELS,
}


class ProvisioningEvent(SQLModel, table=True):
    __tablename__ = "provisioning_event"
    __table_args__ = (
        CheckConstraint(in_check("action", ACTIONS), name="action_known"),
        CheckConstraint(in_check("status", EVENT_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint(
            "(status = 'delivered') = (delivered_at IS NOT NULL)", name="delivered_when"
        ),
        # The delivery query: pending events that are due, oldest first.
        Index("ix_provisioning_event_status_next_attempt_at", "status", "next_attempt_at"),
        # Per-line order: is there an earlier undelivered event of this line?
        Index("ix_provisioning_event_line_id_id", "line_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    line_id: int = Field(foreign_key="line.id")
    host_id: int = Field(foreign_key="host_carrier.id", index=True)
    action: str = Field(max_length=20)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=10)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
