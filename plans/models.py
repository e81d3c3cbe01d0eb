"""Retail plans and add-ons (DESIGN §8).

A plan is identified by its code; each change to a published plan makes a
new version (`version` + 1) so subscribers keep exactly what they bought:
a published or retired version is never edited. At most one version of a
code is published at a time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime
from app.core.errors import N_

PLAN_STATUSES = ("draft", "published", "retired")
PLAN_STATUS_LABELS = {"draft": N_("draft"), "published": N_("on sale"), "retired": N_("withdrawn")}
MAX_VALIDITY_DAYS = 730


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "plan_status": PLAN_STATUS_LABELS,
}


class Plan(SQLModel, table=True):
    __tablename__ = "plan"
    __table_args__ = (
        UniqueConstraint("code", "version"),
        CheckConstraint("status IN ('draft', 'published', 'retired')", name="status_known"),
        CheckConstraint(
            f"validity_days >= 1 AND validity_days <= {MAX_VALIDITY_DAYS}", name="validity_range"
        ),
        CheckConstraint(
            "price_minor >= 0 AND data_mb >= 0 AND voice_min >= 0 AND sms >= 0"
            " AND overage_data_per_mb_minor >= 0 AND overage_voice_per_min_minor >= 0"
            " AND overage_sms_minor >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint("voice_increment_s >= 1", name="voice_increment_positive"),
        # At most one published version per code.
        Index(
            "uq_plan_one_published",
            "code",
            unique=True,
            sqlite_where=text("status = 'published'"),
            postgresql_where=text("status = 'published'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, index=True)
    version: int = Field(default=1)
    status: str = Field(default="draft", max_length=10)
    names: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    descriptions: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    host_id: int = Field(foreign_key="host_carrier.id", index=True)
    currency: str = Field(default="CNY", max_length=3)
    price_minor: int
    validity_days: int
    data_mb: int = 0
    voice_min: int = 0
    sms: int = 0
    overage_data_per_mb_minor: int = 0
    overage_voice_per_min_minor: int = 0
    overage_sms_minor: int = 0
    voice_increment_s: int = 60
    auto_renew_default: bool = True
    margin_override: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def name(self, locale: str) -> str:
        return (
            self.names.get(locale)
            or self.names.get("en")
            or next(iter(self.names.values()), self.code)
        )

    def description(self, locale: str) -> str:
        return self.descriptions.get(locale) or self.descriptions.get("en") or ""

    def terms(self) -> dict[str, Any]:
        """What a subscriber buys: changing any of these needs a new version."""
        return {
            "names": self.names,
            "descriptions": self.descriptions,
            "host_id": self.host_id,
            "currency": self.currency,
            "price_minor": self.price_minor,
            "validity_days": self.validity_days,
            "data_mb": self.data_mb,
            "voice_min": self.voice_min,
            "sms": self.sms,
            "overage_data_per_mb_minor": self.overage_data_per_mb_minor,
            "overage_voice_per_min_minor": self.overage_voice_per_min_minor,
            "overage_sms_minor": self.overage_sms_minor,
            "voice_increment_s": self.voice_increment_s,
            "auto_renew_default": self.auto_renew_default,
        }


class AddOn(SQLModel, table=True):
    """A data pack that adds allowance to the current period of a line."""

    __tablename__ = "addon"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published', 'retired')", name="status_known"),
        CheckConstraint("price_minor >= 0 AND data_mb >= 1", name="amounts_valid"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    status: str = Field(default="draft", max_length=10)
    names: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    currency: str = Field(default="CNY", max_length=3)
    price_minor: int
    data_mb: int
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    def name(self, locale: str) -> str:
        return (
            self.names.get(locale)
            or self.names.get("en")
            or next(iter(self.names.values()), self.code)
        )
