"""Number blocks, phone numbers and SIMs (DESIGN §6)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

NUMBER_STATUSES = ("available", "reserved", "assigned", "quarantined", "ported_out", "returned")
SIM_STATUSES = ("in_stock", "assigned", "active", "blocked", "retired")
SIM_KINDS = ("physical", "esim")

# Shown to people; the catalogs translate them.
NUMBER_STATUS_LABELS = {
    "available": N_("available"),
    "reserved": N_("on hold"),
    "assigned": N_("in use"),
    "quarantined": N_("quarantined"),
    "ported_out": N_("ported out"),
    "returned": N_("returned to host"),
}
SIM_STATUS_LABELS = {
    "in_stock": N_("in stock"),
    "assigned": N_("assigned to a line"),
    "active": N_("active"),
    "blocked": N_("blocked"),
    "retired": N_("scrapped"),
}
# The golden tiers of numbering/golden.py as a buyer reads them, with an example.
GOLDEN_TIER_LABELS = {
    "aaaaa": N_("five of a kind (88888)"),
    "aaaa": N_("four of a kind (8888)"),
    "abcde": N_("five in a row (34567)"),
    "abcd": N_("four in a row (5678)"),
    "end_1314": N_("ends in 1314"),
    "end_520": N_("ends in 520"),
    "dcba": N_("four counting down (9876)"),
    "aabb": N_("ends AABB (1122)"),
    "abab": N_("ends ABAB (1212)"),
    "end_aaa": N_("ends in a triple (777)"),
    "end_168": N_("ends in 168"),
    "end_88": N_("ends in 88"),
    "end_66": N_("ends in 66"),
}


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "number_status": NUMBER_STATUS_LABELS,
    "sim_status": SIM_STATUS_LABELS,
    "golden_tier": GOLDEN_TIER_LABELS,
}


class GoldenTier(SQLModel, table=True):
    """A class of memorable numbers and the surcharge a buyer pays for one.

    The rules that recognise each tier live in numbering/golden.py; the
    surcharge (and whether the tier is in use) is configured here.
    """

    __tablename__ = "golden_tier"
    __table_args__ = (CheckConstraint("surcharge_minor >= 0", name="surcharge_not_negative"),)

    code: str = Field(primary_key=True, max_length=20)
    surcharge_minor: int
    enabled: bool = True
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class NumberBlock(SQLModel, table=True):
    """A contiguous range of E.164 numbers received from a host."""

    __tablename__ = "number_block"
    __table_args__ = (
        UniqueConstraint("host_id", "first"),
        CheckConstraint("size >= 1 AND size <= 1000000", name="size_range"),
    )

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host_carrier.id", index=True)
    first: str = Field(max_length=16)
    last: str = Field(max_length=16)
    size: int
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class PhoneNumber(SQLModel, table=True):
    """One number of a block. `msisdn_reversed` makes ends-with searches index range scans."""

    __tablename__ = "phone_number"
    __table_args__ = (
        CheckConstraint(in_check("status", NUMBER_STATUSES), name="status_known"),
        CheckConstraint("surcharge_minor >= 0", name="surcharge_not_negative"),
        CheckConstraint(
            "status <> 'reserved' OR (reserved_until IS NOT NULL AND reserved_by IS NOT NULL)",
            name="reservation_complete",
        ),
        Index("ix_phone_number_status_msisdn", "status", "msisdn"),
        Index("ix_phone_number_msisdn_reversed", "msisdn_reversed"),
        Index("ix_phone_number_tier_status", "tier", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    msisdn: str = Field(max_length=16, unique=True)
    msisdn_reversed: str = Field(max_length=16)
    block_id: int = Field(foreign_key="number_block.id", index=True)
    status: str = Field(default="available", max_length=12)
    tier: str | None = Field(default=None, max_length=20)
    surcharge_minor: int = Field(default=0)
    reserved_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reserved_by: str | None = Field(default=None, max_length=64)
    quarantine_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_changed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Sim(SQLModel, table=True):
    """A physical SIM or an eSIM profile (with its LPA activation code)."""

    __tablename__ = "sim"
    __table_args__ = (
        CheckConstraint(in_check("status", SIM_STATUSES), name="status_known"),
        CheckConstraint(in_check("kind", SIM_KINDS), name="kind_known"),
        CheckConstraint("kind <> 'esim' OR lpa IS NOT NULL", name="esim_has_lpa"),
    )

    id: int | None = Field(default=None, primary_key=True)
    iccid: str = Field(max_length=22, unique=True)
    imsi: str = Field(max_length=15, unique=True)
    kind: str = Field(max_length=10)
    lpa: str | None = Field(default=None, max_length=255)
    host_id: int = Field(foreign_key="host_carrier.id", index=True)
    status: str = Field(default="in_stock", max_length=10, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status_changed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
