"""Hosts and their rate cards (DESIGN §7).

Wholesale unit prices are integers in micro-units (1e-6 of the currency
unit). Each price sits beside the host's best public retail price for the
same service; the wholesale price must be strictly below it to comply.
A rate card applies from its `effective_from` date until the next card of
the same host.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, in_check
from app.core.errors import N_

SERVICES: tuple[str, ...] = ("data", "voice", "sms", "line", "number")
SERVICE_LABELS = {
    "data": N_("data per MB"),
    "voice": N_("voice per minute"),
    "sms": N_("SMS per message"),
    "line": N_("line per month"),
    "number": N_("number per month"),
}
# service -> (rate card column stem, unit of the price, unit of quantities in settlement)
PRICE_UNITS: dict[str, tuple[str, str]] = {
    "data": ("data_per_mb", "MB"),
    "voice": ("voice_per_min", "minute"),
    "sms": ("sms_per_msg", "message"),
    "line": ("line_per_month", "line-month"),
    "number": ("number_per_month", "number-month"),
}


# Stored codes as words, by kind (kind → code → text marked for translation);
# label() in app/web gathers every models module's LABELS and translates them.
LABELS: dict[str, dict[str, str]] = {
    "service": SERVICE_LABELS,
}


class HostCarrier(SQLModel, table=True):
    __tablename__ = "host_carrier"
    __table_args__ = (
        CheckConstraint("provisioning IN ('log', 'http')", name="provisioning_known"),
        CheckConstraint("provisioning <> 'http' OR provisioning_url IS NOT NULL", name="http_url"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=20, unique=True)
    name: str = Field(max_length=200)
    currency: str = Field(default="CNY", max_length=3)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    provisioning: str = Field(default="log", max_length=10)
    provisioning_url: str | None = Field(default=None, max_length=500)
    # Key of the `X-Signature` HMAC-SHA256 the http adapter sends. Stored as
    # given (the host needs the same value to verify), never shown or audited.
    provisioning_secret: str | None = Field(default=None, max_length=200)
    # The host's own column names for its usage files (DESIGN §7): field ->
    # column, plus `ignore`: columns it sends that carry nothing we use.
    # None: the default columns.
    cdr_columns: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # Reconciliation: a difference within both tolerances is a match.
    reconcile_amount_tolerance_minor: int = 0
    reconcile_quantity_tolerance_bp: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class RateCard(SQLModel, table=True):
    __tablename__ = "rate_card"
    __table_args__ = (
        UniqueConstraint("host_id", "effective_from"),
        CheckConstraint(
            "data_per_mb_micro >= 0 AND voice_per_min_micro >= 0 AND sms_per_msg_micro >= 0"
            " AND line_per_month_micro >= 0 AND number_per_month_micro >= 0"
            " AND retail_data_per_mb_micro >= 0 AND retail_voice_per_min_micro >= 0"
            " AND retail_sms_per_msg_micro >= 0 AND retail_line_per_month_micro >= 0"
            " AND retail_number_per_month_micro >= 0",
            name="prices_not_negative",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host_carrier.id", index=True)
    effective_from: date
    data_per_mb_micro: int
    voice_per_min_micro: int
    sms_per_msg_micro: int
    line_per_month_micro: int
    number_per_month_micro: int
    retail_data_per_mb_micro: int
    retail_voice_per_min_micro: int
    retail_sms_per_msg_micro: int
    retail_line_per_month_micro: int
    retail_number_per_month_micro: int
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    def price(self, service: str) -> int:
        return int(getattr(self, f"{PRICE_UNITS[service][0]}_micro"))

    def retail_price(self, service: str) -> int:
        return int(getattr(self, f"retail_{PRICE_UNITS[service][0]}_micro"))

    def compliant(self, service: str) -> bool:
        """The host must sell wholesale strictly below its own best retail price."""
        return self.price(service) < self.retail_price(service)

    @property
    def non_compliant_services(self) -> list[str]:
        return [s for s in SERVICES if not self.compliant(s)]


SETTLEMENT_KINDS = ("export", "reconcile")
DISPUTE_STATUSES = ("open", "resolved")
LABELS["dispute_status"] = {"open": N_("open"), "resolved": N_("resolved")}
LABELS["settlement_kind"] = {"export": N_("settlement export"), "reconcile": N_("reconciliation")}
# The status of a service in a reconciliation report (wholesale.reconcile).
LABELS["reconcile_status"] = {
    "match": N_("match"),
    "discrepancy": N_("discrepancy"),
    "missing_in_invoice": N_("missing in the invoice"),
    "not_in_settlement": N_("not in our settlement"),
}


class SettlementRun(SQLModel, table=True):
    """One settlement export or invoice reconciliation, with the files it wrote.

    The files' text is kept so that the console can offer them for download
    whatever happened to the output folder; an export of a month run again
    adds a run (the files are byte-identical when nothing changed).
    """

    __tablename__ = "settlement_run"
    __table_args__ = (
        CheckConstraint(in_check("kind", SETTLEMENT_KINDS), name="kind_known"),
        Index("ix_settlement_run_host_id_month", "host_id", "month"),
    )

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host_carrier.id")
    month: str = Field(max_length=7)
    kind: str = Field(max_length=10)
    total_minor: int
    invoice_total_minor: int | None = None
    discrepancies: int = 0
    csv_name: str = Field(max_length=100)
    csv_text: str = Field(sa_type=Text)
    json_name: str = Field(max_length=100)
    json_text: str = Field(sa_type=Text)
    actor: str = Field(default="", max_length=254)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SettlementDispute(SQLModel, table=True):
    """A difference between the host's invoice and our settlement, open until resolved.

    Written by reconciliation, one per service beyond tolerance; customer
    service turns open disputes into tickets.
    """

    __tablename__ = "settlement_dispute"
    __table_args__ = (
        CheckConstraint(in_check("status", DISPUTE_STATUSES), name="status_known"),
        Index("ix_settlement_dispute_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="settlement_run.id", index=True)
    host_id: int = Field(foreign_key="host_carrier.id")
    month: str = Field(max_length=7)
    service: str = Field(max_length=10)
    our_quantity: int = Field(sa_type=BigInteger)
    invoice_quantity: int = Field(sa_type=BigInteger)
    our_amount_minor: int = Field(sa_type=BigInteger)
    invoice_amount_minor: int = Field(sa_type=BigInteger)
    status: str = Field(default="open", max_length=10)
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
