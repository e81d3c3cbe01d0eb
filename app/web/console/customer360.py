"""The 360° customer view (DESIGN §11): one page with everything about a customer.

Sections, each paged by its own query parameter so one long history never
slows the others: lines with their current period's usage against the
allowances (`lines_page`), the ledger with the running balance
(`ledger_page`), tickets (`tickets_page`), notifications sent
(`notifications_page`), provisioning events of the customer's lines
(`events_page`) and the audit trail of the customer, their lines, their
tickets and their store login (`audit_page`).

Each section is one or two indexed queries whatever its length (lines and
their plans in one join, the current periods of a page of lines in one
`IN`, tickets with their assignee in one outer join): no query per row.
The page reads from several packages, which only an entry point may.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template, request, url_for
from sqlmodel import col, func, select

from app.care.tickets import TicketFilter, list_tickets, ticket_refs_of_customer
from app.charging.models import LinePeriod
from app.core.audit import list_audit_of_targets
from app.core.clock import utcnow
from app.ledger.balances import customer_balance, customer_history
from app.notifications.staff import list_notifications
from app.provisioning.services import list_events_of_lines
from app.subscribers import services as subscribers
from app.subscribers.models import Customer, Line
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import MAX_PAGE
from app.web.context import db_session
from app.web.formatting import data_text, minutes_text, number_text
from app.web.tickets import clocks
from plans.models import Plan

SECTION_SIZE = 20
SECTIONS = ("lines", "ledger", "tickets", "notifications", "events", "audit")


@dataclass(frozen=True)
class Usage:
    """One allowance of a line's current period, used against the total, in words."""

    kind: str
    used: int
    total: int
    used_text: str
    total_text: str

    @property
    def percent(self) -> int:
        return 0 if self.total <= 0 else min(100, self.used * 100 // self.total)


def _page(section: str) -> int:
    page = request.args.get(f"{section}_page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)


def _offset(section: str) -> int:
    return (_page(section) - 1) * SECTION_SIZE


def section_url(customer_ref: str, section: str, page: int) -> str:
    """This page with one section moved to `page`, the others where they are."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k.endswith("_page")}
    args[f"{section}_page"] = str(page)
    return url_for("console.customer_360", ref=customer_ref, _anchor=section, **args)


def _usage(period: LinePeriod) -> list[Usage]:
    return [
        Usage(
            "data",
            period.data_kb_used,
            period.data_kb,
            data_text(period.data_kb_used),
            data_text(period.data_kb),
        ),
        Usage(
            "voice",
            period.voice_s_used,
            period.voice_s,
            minutes_text(period.voice_s_used),
            minutes_text(period.voice_s),
        ),
        Usage(
            "sms",
            period.sms_used,
            period.sms,
            number_text(period.sms_used),
            number_text(period.sms),
        ),
    ]


def _lines(customer_id: int) -> dict[str, Any]:
    session = db_session()
    total = session.exec(
        select(func.count()).select_from(Line).where(Line.customer_id == customer_id)
    ).one()
    rows = session.exec(
        select(Line, Plan)
        .join(Plan, col(Plan.id) == col(Line.plan_id))
        .where(Line.customer_id == customer_id)
        .order_by(col(Line.id))
        .offset(_offset("lines"))
        .limit(SECTION_SIZE)
    ).all()
    now = utcnow()
    ids = [line.id for line, _plan in rows]
    periods = {
        period.line_id: period
        for period in session.exec(
            select(LinePeriod).where(
                col(LinePeriod.line_id).in_(ids), LinePeriod.start <= now, LinePeriod.end > now
            )
        )
    }
    return {
        "rows": [(line, plan, periods.get(line.id or 0)) for line, plan in rows],
        "usage": {line_id: _usage(period) for line_id, period in periods.items()},
        "total": total,
    }


def _audit_targets(customer: Customer, line_ids: list[int]) -> list[tuple[str, list[str]]]:
    assert customer.id is not None
    targets = [
        ("customer", [str(customer.id), customer.ref]),
        ("line", [str(line_id) for line_id in line_ids]),
        ("ticket", ticket_refs_of_customer(db_session(), customer_id=customer.id)),
    ]
    if customer.subscriber_account_id is not None:
        targets.append(("subscriber_account", [str(customer.subscriber_account_id)]))
    return targets


def customer_view(customer: Customer) -> dict[str, Any]:
    """The sections of the 360° page for one customer, each at its requested page."""
    session = db_session()
    customer_id = customer.id
    assert customer_id is not None
    line_ids = list(session.exec(select(Line.id).where(Line.customer_id == customer_id)))
    ledger, ledger_total = customer_history(
        session, customer_id=customer_id, limit=SECTION_SIZE, offset=_offset("ledger")
    )
    tickets, tickets_total = list_tickets(
        session,
        where=TicketFilter(customer_id=customer_id),
        limit=SECTION_SIZE,
        offset=_offset("tickets"),
    )
    notices, notices_total = list_notifications(
        session, customer_id=customer_id, limit=SECTION_SIZE, offset=_offset("notifications")
    )
    events, events_total = list_events_of_lines(
        session, line_ids=[i for i in line_ids if i], limit=SECTION_SIZE, offset=_offset("events")
    )
    audit, audit_total = list_audit_of_targets(
        session,
        targets=_audit_targets(customer, [i for i in line_ids if i]),
        limit=SECTION_SIZE,
        offset=_offset("audit"),
    )
    now = utcnow()
    return {
        "customer": customer,
        "balance": customer_balance(session, customer_id=customer_id),
        "lines": _lines(customer_id),
        "msisdns": dict(
            session.exec(select(Line.id, Line.msisdn).where(Line.customer_id == customer_id)).all()
        ),
        "ledger": (ledger, ledger_total),
        "tickets": (tickets, tickets_total),
        "ticket_clocks": {row.ticket.id: clocks(row.ticket, now) for row in tickets},
        "notices": (notices, notices_total),
        "events": (events, events_total),
        "audit": (audit, audit_total),
        "pages": {section: _page(section) for section in SECTIONS},
        "size": SECTION_SIZE,
        "section_url": lambda section, page: section_url(customer.ref, section, page),
    }


@bp.route("/customers/<ref>/360")
@staff_required("subscribers.view")
def customer_360(ref: str) -> Any:
    customer = subscribers.get_customer_by_ref(db_session(), ref)
    return render_template("console/customer_360.html", **customer_view(customer))
