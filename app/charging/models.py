"""Line periods and their allowance counters (DESIGN §9).

A line has consecutive periods: `end = start + validity_days × 24 h`
exactly. Each period keeps the allowances it was opened with (the plan's,
plus add-ons bought during it) and what usage has consumed of them, in the
billable units of DESIGN §9: data in KB (`data_mb × 1024`), voice in
seconds, SMS as a count. A period also keeps the plan and price it was
opened on, so a later plan change or a retired plan never rewrites it, and
the journal entry that paid for it (None for a period paid by the purchase
order or carried over by a migration import).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime


class LinePeriod(SQLModel, table=True):
    __tablename__ = "line_period"
    __table_args__ = (
        UniqueConstraint("line_id", "start"),
        CheckConstraint('"end" > start', name="end_after_start"),
        CheckConstraint(
            "data_kb >= 0 AND voice_s >= 0 AND sms >= 0"
            " AND data_kb_used >= 0 AND voice_s_used >= 0 AND sms_used >= 0"
            " AND data_kb_used <= data_kb AND voice_s_used <= voice_s AND sms_used <= sms",
            name="counters_valid",
        ),
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        # The period containing an instant: line_id = ? AND start <= t < end.
        Index("ix_line_period_line_id_end", "line_id", "end"),
        # The periods not over at an instant (`end > t`): the unused value of an exit,
        # read from the index alone on PostgreSQL (what the value needs is included).
        Index(
            "ix_line_period_ends",
            "end",
            postgresql_include=["line_id", "plan_id", "price_minor", "start"],
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    line_id: int = Field(foreign_key="line.id")
    plan_id: int = Field(foreign_key="plan.id", index=True)
    start: datetime = Field(sa_type=UTCDateTime, nullable=False)
    end: datetime = Field(sa_type=UTCDateTime, nullable=False)
    price_minor: int
    # Allowances (plan + add-ons) and what usage consumed, in billable units.
    data_kb: int = 0
    voice_s: int = 0
    sms: int = 0
    data_kb_used: int = 0
    voice_s_used: int = 0
    sms_used: int = 0
    entry_id: int | None = Field(default=None, foreign_key="journal_entry.id")
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    @property
    def data_kb_left(self) -> int:
        return self.data_kb - self.data_kb_used

    @property
    def voice_s_left(self) -> int:
        return self.voice_s - self.voice_s_used

    @property
    def sms_left(self) -> int:
        return self.sms - self.sms_used


class PeriodAddOn(SQLModel, table=True):
    """An add-on (data pack) bought for one period of a line."""

    __tablename__ = "period_addon"
    __table_args__ = (CheckConstraint("data_kb >= 1 AND price_minor >= 0", name="amounts_valid"),)

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="line_period.id", index=True)
    addon_id: int = Field(foreign_key="addon.id", index=True)
    data_kb: int
    price_minor: int
    entry_id: int = Field(foreign_key="journal_entry.id", unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ArrearsSuspension(SQLModel, table=True):
    """A line suspended because late usage left its customer in arrears (DESIGN §5).

    Open (`resumed_at` NULL) until a credit brings the customer's balance
    back to zero or above; the line is then resumed.
    """

    __tablename__ = "arrears_suspension"
    __table_args__ = (
        Index("ix_arrears_suspension_customer_id_resumed_at", "customer_id", "resumed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    line_id: int = Field(foreign_key="line.id", index=True)
    customer_id: int = Field(foreign_key="customer.id")
    balance_minor: int
    suspended_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    resumed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LineUsageDay(SQLModel, table=True):
    """What one line used on one day, summed by rating as usage is imported (fraud rules).

    `day` is the local day of each record's start time in its host's time
    zone (the days the settlement with that host counts). Data in billable
    KB, voice in seconds as the host reported them, SMS as a count;
    `voice_calls` is the line's own voice records (outgoing calls) and
    `incoming_calls` the voice records of other lines whose called number is
    this line's number — the usage file has no direction column, so a call
    is known as incoming only when its caller is a line of ours. `early_*`
    is what was used within 24 hours of the start of the line's first
    period (its activation).

    No foreign key, like `usage_record`: rows come only from rating, which
    takes line ids from the database, and a key checked per row would be
    most of the import's cost of this table.
    """

    __tablename__ = "line_usage_day"
    __table_args__ = (
        CheckConstraint(
            "data_kb >= 0 AND voice_s >= 0 AND sms >= 0 AND voice_calls >= 0"
            " AND incoming_calls >= 0 AND early_data_kb >= 0 AND early_voice_s >= 0",
            name="counts_not_negative",
        ),
        Index("ix_line_usage_day_day", "day"),
    )

    line_id: int = Field(primary_key=True)
    day: date = Field(primary_key=True)
    data_kb: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    voice_s: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    sms: int = 0
    voice_calls: int = 0
    incoming_calls: int = 0
    early_data_kb: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    early_voice_s: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
