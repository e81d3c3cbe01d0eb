"""The notification outbox (DESIGN §11): e-mail and SMS to subscribers.

A notification is written in the same transaction as the event it reports
(a renewal, a suspension, a low balance, a password reset, a reply on a
ticket, an SLA breach told to the supervisors) and sent after
commit by a job: `pending` → `sent`, or after repeated failures `dead`.
`dedupe_key` (UNIQUE when set) makes a notice that a retried job would
write twice (the renewal of one period, say) a single row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

CHANNELS = ("email", "sms")
NOTIFICATION_STATUSES = ("pending", "sent", "dead")
NOTIFICATION_KINDS = (
    "renewal",
    "renewal_failed",
    "suspension",
    "resumed",
    "termination",
    "low_balance",
    "password_reset",
    "order_paid",
    "line_active",
    "ticket_reply",
    "sla_breach",
    "exit_notice",
    "exit_refund",
)
NOTIFICATION_STATUS_LABELS = {
    "pending": N_("waiting"),
    "sent": N_("sent"),
    "dead": N_("failed"),
}


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "notification_status": NOTIFICATION_STATUS_LABELS,
}


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint(in_check("channel", CHANNELS), name="channel_known"),
        CheckConstraint(in_check("status", NOTIFICATION_STATUSES), name="status_known"),
        CheckConstraint(in_check("kind", NOTIFICATION_KINDS), name="kind_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_notification_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="subscriber_account.id", index=True)
    channel: str = Field(default="email", max_length=10)
    recipient: str = Field(max_length=254)
    kind: str = Field(max_length=20)
    locale: str = Field(default="zh_Hans", max_length=10)
    # The facts the message is rendered from (never a secret in clear except
    # a password-reset link, which expires and is single-use).
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    subject: str = Field(default="", max_length=200)
    body: str = Field(default="")
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)
    status: str = Field(default="pending", max_length=10)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
