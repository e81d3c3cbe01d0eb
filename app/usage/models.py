"""Usage files, records and rejects (DESIGN §7, mediation).

`UsageFile` is one import: the host's file by SHA-256 (the same file twice
is a no-op) or a reprocessing run of rejects. `UsageRecord` is one record
that was charged: its line and period, and what rating made of it in the
billable units of DESIGN §9 (`within` the allowance, `over` it — their sum
is the billable quantity, not stored twice —, the
overage `charge_minor`). Its key is (host, record id, start time): on
PostgreSQL the table is partitioned by month of `start_time` (migration
0009; the importer creates partitions ahead), and a partitioned table's
unique key must hold the partition column, so the importer itself refuses a
(host, record id) seen before, under a per-host lock. The record table has
no foreign keys: rows come only from the importer, which takes line and
period from the database, and a month can be dropped or archived alone.
`UsageReject` keeps a row that could not be used with its line number,
raw text and reason until reprocessing charges it (`status` `resolved`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

USAGE_SERVICES = ("data", "voice", "sms")
FILE_KINDS = ("file", "reprocess")
REJECT_STATUSES = ("open", "resolved")

# Reasons a row cannot be used, as stored codes.
REJECT_REASONS = {
    "column_count": N_("wrong number of fields"),
    "bad_record_id": N_("missing or too long record id"),
    "bad_number": N_("not a phone number in E.164 form"),
    "unknown_service": N_("unknown service (data, voice or sms)"),
    "bad_quantity": N_("quantity is not a whole number ≥ 0"),
    "bad_time": N_("start time is not ISO 8601 with an offset"),
    "unknown_msisdn": N_("number not held from this host"),
    "no_active_line": N_("no line active at that time"),
}

LABELS: dict[str, dict[str, str]] = {
    "reject_reason": REJECT_REASONS,
    "reject_status": {"open": N_("open"), "resolved": N_("resolved")},
}


class UsageFile(SQLModel, table=True):
    __tablename__ = "usage_file"
    __table_args__ = (
        UniqueConstraint("host_id", "sha256"),
        CheckConstraint(in_check("kind", FILE_KINDS), name="kind_known"),
        CheckConstraint("rows_total = charged + duplicates + rejected", name="counts_add_up"),
    )

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host_carrier.id", index=True)
    kind: str = Field(default="file", max_length=10)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    # The file's header line, to read its rejects again when reprocessed.
    header: str = Field(default="", sa_type=Text)
    rows_total: int = 0
    charged: int = 0
    duplicates: int = 0
    rejected: int = 0
    charge_minor: int = 0
    first_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    actor: str = Field(default="", max_length=254)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class UsageRecord(SQLModel, table=True):
    __tablename__ = "usage_record"
    __table_args__ = (
        # A line's records (a few thousand at most) are found by line and sorted;
        # the narrower index costs a bulk import far less than (line, time).
        Index("ix_usage_record_line_id", "line_id"),
        {"postgresql_partition_by": "RANGE (start_time)"},
    )

    host_id: int = Field(primary_key=True)
    record_id: str = Field(primary_key=True, max_length=64)
    start_time: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    file_id: int
    line_id: int
    period_id: int
    service: str = Field(max_length=5)
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    within: int = Field(sa_column=Column(BigInteger, nullable=False))
    over: int = Field(sa_column=Column(BigInteger, nullable=False))
    charge_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    called_number: str | None = Field(default=None, max_length=32)

    @property
    def billable(self) -> int:
        """The billable quantity (DESIGN §9): what the allowance covered and what it did not."""
        return self.within + self.over


class UsageQuarterHour(SQLModel, table=True):
    """A host's usage per service and quarter-hour of start time (app/usage/store.py).

    Added to by the import that stores the records, in its transaction: the
    dashboard's usage and the current month's cost read these few rows per
    day instead of the records.
    """

    __tablename__ = "usage_quarter_hour"

    host_id: int = Field(primary_key=True)
    service: str = Field(primary_key=True, max_length=5)
    # Quarter-hours since 1970-01-01T00:00Z of the records' start times.
    bucket: int = Field(primary_key=True)
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    records: int = 0


class UsageReject(SQLModel, table=True):
    __tablename__ = "usage_reject"
    __table_args__ = (
        CheckConstraint(in_check("status", REJECT_STATUSES), name="status_known"),
        Index("ix_usage_reject_host_id_status", "host_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    file_id: int = Field(foreign_key="usage_file.id", index=True)
    host_id: int = Field(foreign_key="host_carrier.id")
    line_no: int
    raw: str = Field(sa_type=Text)
    reason: str = Field(max_length=20)
    record_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default="open", max_length=10)
    resolved_file_id: int | None = Field(default=None, foreign_key="usage_file.id")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
