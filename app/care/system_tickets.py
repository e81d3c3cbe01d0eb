"""Tickets the system opens: settlement disputes, dead provisioning events, fraud alerts.

* An open `SettlementDispute` (a reconciliation difference beyond
  tolerance) without a ticket opens a `billing_dispute` ticket, source
  `dispute:<id>`, with our figures and the host's invoice figures.
* A dead-lettered `ProvisioningEvent` (eight failed deliveries) without a
  ticket opens a `fault` ticket of high priority for its line and that
  line's customer, source `provisioning:<id>`, with the action and the
  last error.
* A fraud alert (app/analytics) opens a high-priority `fault` ticket for
  its customer and line when staff ask, source `fraud:<alert id>`: care
  and analytics share a floor and never import each other, so the web
  entry point reads the alert, calls `open_fraud_ticket` with plain values
  and records the ticket's id on the alert, in one transaction.

All are idempotent by `source`: the queries skip sources that have a
ticket, and the UNIQUE `ticket.source` makes a concurrent second run open
nothing (the savepoint of `open_ticket` is rolled back and the source is
skipped). The figures are written in English: they are staff's working
notes, never shown to a customer (system tickets stay out of self-care).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, exists, literal
from sqlmodel import Session, col, select

from app.care.models import Ticket
from app.care.tickets import TicketSourceTaken, open_ticket
from app.core.audit import Actor
from app.core.money import format_plain
from app.provisioning.models import ProvisioningEvent
from app.subscribers.models import Line
from wholesale.models import HostCarrier, SettlementDispute

BATCH = 200
JOB_ACTOR = Actor.system("care")


@dataclass(frozen=True)
class SystemTicketReport:
    disputes: int = 0
    provisioning: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"disputes": self.disputes, "provisioning": self.provisioning}


def _without_ticket(prefix: str, id_column: Any) -> Any:
    source = literal(prefix) + cast(id_column, String)
    return ~exists().where(col(Ticket.source) == source)


def _dispute_body(dispute: SettlementDispute, host: HostCarrier) -> tuple[str, str]:
    difference = dispute.invoice_amount_minor - dispute.our_amount_minor
    subject = f"Settlement dispute {host.code} {dispute.month} {dispute.service}"
    body = (
        f"Reconciliation of {host.code} ({host.name}) for {dispute.month}, service "
        f"{dispute.service}, differs beyond tolerance.\n"
        f"Our quantity: {dispute.our_quantity}; invoice quantity: {dispute.invoice_quantity}.\n"
        f"Our amount: {format_plain(dispute.our_amount_minor)} {host.currency}; "
        f"invoice amount: {format_plain(dispute.invoice_amount_minor)} {host.currency}; "
        f"difference: {format_plain(difference)} {host.currency}.\n"
        f"Settlement run {dispute.run_id}, dispute {dispute.id}."
    )
    return subject, body


def _event_body(event: ProvisioningEvent, host: HostCarrier, line: Line) -> tuple[str, str]:
    subject = f"Provisioning {event.action} of {line.msisdn} to {host.code} failed"
    body = (
        f"Provisioning event {event.id} ({event.action}) of line {line.msisdn} to host "
        f"{host.code} was dead-lettered after {event.attempts} attempts.\n"
        f"Last error: {event.last_error or '(none recorded)'}\n"
        f"Retry it on the Provisioning page once the cause is fixed."
    )
    return subject, body


def _open_once(session: Session, **ticket: Any) -> bool:
    try:
        open_ticket(session, **ticket)
    except TicketSourceTaken:
        return False
    return True


def open_dispute_tickets(session: Session, *, now: datetime, timezone: str) -> int:
    """A `billing_dispute` ticket for each open dispute that has none; how many opened."""
    query = (
        select(SettlementDispute, HostCarrier)
        .join(HostCarrier, col(HostCarrier.id) == col(SettlementDispute.host_id))
        .where(
            SettlementDispute.status == "open",
            _without_ticket("dispute:", SettlementDispute.id),
        )
        .order_by(col(SettlementDispute.id))
        .limit(BATCH)
    )
    opened = 0
    for dispute, host in session.exec(query).all():
        subject, body = _dispute_body(dispute, host)
        opened += _open_once(
            session,
            category="billing_dispute",
            channel="system",
            subject=subject,
            body=body,
            actor=JOB_ACTOR,
            now=now,
            timezone=timezone,
            source=f"dispute:{dispute.id}",
        )
    return opened


def open_provisioning_tickets(session: Session, *, now: datetime, timezone: str) -> int:
    """A `fault` ticket for each dead provisioning event that has none; how many opened."""
    query = (
        select(ProvisioningEvent, HostCarrier, Line)
        .join(HostCarrier, col(HostCarrier.id) == col(ProvisioningEvent.host_id))
        .join(Line, col(Line.id) == col(ProvisioningEvent.line_id))
        .where(
            ProvisioningEvent.status == "dead",
            _without_ticket("provisioning:", ProvisioningEvent.id),
        )
        .order_by(col(ProvisioningEvent.id))
        .limit(BATCH)
    )
    opened = 0
    for event, host, line in session.exec(query).all():
        subject, body = _event_body(event, host, line)
        opened += _open_once(
            session,
            category="fault",
            channel="system",
            priority="high",
            subject=subject,
            body=body,
            actor=JOB_ACTOR,
            now=now,
            timezone=timezone,
            customer_id=line.customer_id,
            line_id=line.id,
            source=f"provisioning:{event.id}",
        )
    return opened


def open_system_tickets(session: Session, *, now: datetime, timezone: str) -> SystemTicketReport:
    """Open the tickets of new disputes and dead provisioning events, once each."""
    return SystemTicketReport(
        disputes=open_dispute_tickets(session, now=now, timezone=timezone),
        provisioning=open_provisioning_tickets(session, now=now, timezone=timezone),
    )


def open_fraud_ticket(
    session: Session,
    *,
    alert_id: int,
    rule: str,
    summary: str,
    customer_id: int,
    line_id: int | None,
    actor: Actor,
    now: datetime,
    timezone: str,
) -> Ticket:
    """A high-priority `fault` ticket for a fraud alert (app/analytics), source `fraud:<id>`.

    Care cannot read the alert (same floor): the entry point hands its id,
    rule, figures (`summary`) and subject.
    :raises TicketSourceTaken: the alert has a ticket already.
    """
    return open_ticket(
        session,
        category="fault",
        channel="system",
        priority="high",
        subject=f"Fraud alert {alert_id}: {rule}",
        body=(
            f"Fraud alert {alert_id} ({rule}) raised on this customer's usage.\n{summary}\n"
            f"Check it on the Fraud alerts page."
        ),
        actor=actor,
        now=now,
        timezone=timezone,
        customer_id=customer_id,
        line_id=line_id,
        source=f"fraud:{alert_id}",
    )
