"""The files of a market exit (DESIGN §12), built from what the exit kept.

* `regulator_report_<date>.csv` at the announcement: the notice, and the
  population and money it concerns.
* `handover_<HOST>_<date>.csv` for each host: the lines whose subscribers
  consented to the transfer — MSISDN, ICCID, IMSI, name, ID type and number
  (in clear: the subscriber consented), plan, and the balance carried when
  `EXIT_BALANCE_POLICY=carry` (else 0.00). Nobody else's personal data.
* `refunds_<date>.csv`: every refund of the exit by customer, to a card
  payment (`card`, with its Stripe payment intent) or for finance to pay by
  hand (`finance`, with the customer's name and e-mail).
* `exit_report_<date>.csv`: counts and money, then each arrears written off.

`<date>` is the exit date. Money as plain decimals ("29.00") with the
currency beside it. The rows come from the database in a fixed order and
each file is written atomically, so a rerun writes the same bytes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.core.money import format_plain
from app.core.pii import PiiCipher
from app.exit.models import ExitCustomer, ExitLine, MarketExit
from app.exit.owed import Breakdown
from app.ledger.models import JournalEntry
from app.payments.models import Payment, Refund
from app.subscribers.models import Customer, Line
from numbering.models import Sim
from plans.models import Plan
from wholesale.models import HostCarrier
from wholesale.settlement import csv_text, write_text_atomic

HANDOVER_COLUMNS = (
    "msisdn",
    "iccid",
    "imsi",
    "name",
    "id_type",
    "id_number",
    "plan",
    "balance_carried",
    "currency",
)
REFUND_COLUMNS = (
    "customer_ref",
    "name",
    "email",
    "amount",
    "currency",
    "to",
    "stripe_payment_intent",
)
REPORT_COLUMNS = ("item", "value", "currency")


def _write(out_dir: Path, name: str, text: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    write_text_atomic(path, text)
    return path


def regulator_report(
    found: MarketExit, breakdown: Breakdown, *, brand: str, hotline: str, out_dir: Path
) -> Path:
    """The report to the regulator at the announcement: when, who and how much is concerned."""
    assert found.announced_at is not None
    rows: list[tuple[Any, ...]] = [
        ("brand", brand, ""),
        ("exit_date", found.exit_date.isoformat(), ""),
        ("exit_instant", found.exit_at.isoformat(), ""),
        ("announced_at", found.announced_at.isoformat(), ""),
        ("notice_days", found.notice_days, ""),
        ("customer_service_hotline", hotline, ""),
        ("lines", len(breakdown.lines), ""),
        ("customers", len({c.customer_id for c in breakdown.customers}), ""),
    ]
    for status in ("pending", "active", "suspended"):
        rows.append((f"lines_{status}", sum(li.status == status for li in breakdown.lines), ""))
    for currency in sorted({c.currency for c in breakdown.customers}):
        mine = [c for c in breakdown.customers if c.currency == currency]
        rows.append(
            (
                "positive_balances",
                format_plain(sum(max(c.balance_minor, 0) for c in mine)),
                currency,
            )
        )
        rows.append(
            ("unused_plan_value", format_plain(sum(c.unused_minor for c in mine)), currency)
        )
        rows.append(("owed_to_customers", format_plain(sum(c.owed_minor for c in mine)), currency))
    name = f"regulator_report_{found.exit_date.isoformat()}.csv"
    return _write(out_dir, name, csv_text(REPORT_COLUMNS, rows))


def handover_files(
    session: Session, found: MarketExit, *, cipher: PiiCipher, out_dir: Path
) -> list[Path]:
    """One handover file per host (header only when none of its lines transfers)."""
    host_of_line = col(Sim.host_id)
    rows = session.execute(
        sa_select(
            col(HostCarrier.code),
            col(ExitLine.msisdn),
            col(Sim.iccid),
            col(Sim.imsi),
            col(Customer.name),
            col(Customer.id_type),
            col(Customer.id_number_enc),
            col(ExitLine.plan_code),
            col(ExitLine.carried_minor),
            col(ExitLine.currency),
            col(Plan.host_id),
            host_of_line,
        )
        .join(Line, col(Line.id) == col(ExitLine.line_id))
        .join(Customer, col(Customer.id) == col(ExitLine.customer_id))
        .join(Plan, col(Plan.id) == col(Line.plan_id))
        .outerjoin(Sim, col(Sim.id) == col(Line.sim_id))
        .join(HostCarrier, col(HostCarrier.id) == func.coalesce(host_of_line, col(Plan.host_id)))
        .where(col(ExitLine.exit_id) == found.id, col(ExitLine.outcome) == "transferred")
        .order_by(col(HostCarrier.code), col(ExitLine.msisdn))
    ).all()
    by_host: dict[str, list[tuple[Any, ...]]] = {
        code: [] for code in session.execute(sa_select(col(HostCarrier.code))).scalars()
    }
    for row in rows:
        by_host.setdefault(row[0], []).append(
            (
                row[1],
                row[2] or "",
                row[3] or "",
                row[4],
                row[5] or "",
                cipher.decrypt(row[6]) if row[6] else "",
                row[7],
                format_plain(row[8]),
                row[9],
            )
        )
    date = found.exit_date.isoformat()
    return [
        _write(out_dir, f"handover_{code}_{date}.csv", csv_text(HANDOVER_COLUMNS, lines))
        for code, lines in sorted(by_host.items())
    ]


def _refund_minor_rows(session: Session, found: MarketExit) -> list[tuple[Any, ...]]:
    """The exit's refunds with amounts in minor units, in refund order."""
    rows = session.execute(
        sa_select(
            col(Refund.id),
            col(Customer.ref),
            col(Customer.name),
            col(Customer.email),
            col(Refund.amount_minor),
            col(Refund.currency),
            col(Refund.payment_id),
            col(Payment.stripe_payment_intent_id),
        )
        .join(Customer, col(Customer.id) == col(Refund.customer_id))
        .outerjoin(Payment, col(Payment.id) == col(Refund.payment_id))
        .join(JournalEntry, col(JournalEntry.id) == col(Refund.journal_entry_id))
        .where(col(Refund.reason) == "exit")
        .where(col(JournalEntry.idempotency_key).startswith(f"exit:{found.id}:refund:"))
        .order_by(col(Customer.ref), col(Refund.id))
    ).all()
    return [
        (*row[:4], row[4], row[5], "card" if row[6] is not None else "finance", row[7] or "")
        for row in rows
    ]


def _refund_rows(minor_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The refunds file's rows, from `_refund_minor_rows`."""
    return [
        (
            ref,
            name,
            email or "",
            format_plain(amount),
            currency,
            to,
            intent,
        )
        for _id, ref, name, email, amount, currency, to, intent in minor_rows
    ]


def refunds_file(
    session: Session,
    found: MarketExit,
    *,
    out_dir: Path,
    minor_rows: list[tuple[Any, ...]] | None = None,
) -> Path:
    """Every refund of the exit, to a card or for finance, by customer (no database ids: a
    rerun after a crash writes the same bytes).

    `minor_rows` are `_refund_minor_rows`, when the caller has read them already.
    """
    if minor_rows is None:
        minor_rows = _refund_minor_rows(session, found)
    name = f"refunds_{found.exit_date.isoformat()}.csv"
    return _write(out_dir, name, csv_text(REFUND_COLUMNS, _refund_rows(minor_rows)))


def exit_report(
    session: Session,
    found: MarketExit,
    *,
    out_dir: Path,
    minor_rows: list[tuple[Any, ...]] | None = None,
) -> Path:
    """Counts and money of the execution, then every arrears written off by customer.

    `minor_rows` are `_refund_minor_rows`, when the caller has read them already.
    """
    if minor_rows is None:
        minor_rows = _refund_minor_rows(session, found)
    summary = found.summary
    rows: list[tuple[Any, ...]] = [
        ("exit_date", found.exit_date.isoformat(), ""),
        ("executed_at", _iso(found.executed_at), ""),
        ("balance_policy", found.balance_policy, ""),
        ("lines", summary.get("lines", 0), ""),
        ("transferred", summary.get("transferred", 0), ""),
        ("terminated", summary.get("terminated", 0), ""),
        ("numbers_returned", summary.get("numbers_returned", 0), ""),
    ]
    # Plain rows, not ORM objects: one per customer of the exit.
    customers = session.execute(
        sa_select(
            col(ExitCustomer.currency),
            col(ExitCustomer.balance_minor),
            col(ExitCustomer.unused_minor),
            col(ExitCustomer.refund_minor),
            col(ExitCustomer.carried_minor),
            col(ExitCustomer.written_off_minor),
            col(Customer.ref),
        )
        .join(Customer, col(Customer.id) == col(ExitCustomer.customer_id))
        .where(col(ExitCustomer.exit_id) == found.id)
        .order_by(col(ExitCustomer.currency), col(Customer.ref))
    ).all()
    for currency in sorted({c.currency for c in customers}):
        mine = [c for c in customers if c.currency == currency]
        for item, value in (
            ("liability_before", sum(max(c.balance_minor, 0) + c.unused_minor for c in mine)),
            ("positive_balances", sum(max(c.balance_minor, 0) for c in mine)),
            ("unused_plan_value", sum(c.unused_minor for c in mine)),
            ("refunds", sum(c.refund_minor for c in mine)),
            ("transferred_balances", sum(c.carried_minor for c in mine)),
            ("written_off", sum(c.written_off_minor for c in mine)),
        ):
            rows.append((item, format_plain(value), currency))
    paid: dict[tuple[str, str], int] = {}
    for *_, amount, currency, to, _intent in minor_rows:
        paid[(to, currency)] = paid.get((to, currency), 0) + amount
    for (to, currency), amount in sorted(paid.items()):
        rows.append((f"refunds_to_{to}", format_plain(amount), currency))
    for customer in customers:
        if customer.written_off_minor:
            rows.append(
                (
                    f"written_off:{customer.ref}",
                    format_plain(customer.written_off_minor),
                    customer.currency,
                )
            )
    name = f"exit_report_{found.exit_date.isoformat()}.csv"
    return _write(out_dir, name, csv_text(REPORT_COLUMNS, rows))


def _iso(at: datetime | None) -> str:
    return at.isoformat() if at is not None else ""


def exit_files(
    session: Session, found: MarketExit, *, cipher: PiiCipher, out_dir: Path
) -> list[Path]:
    """Write the execution's files; returns their paths (handover files first, by host)."""
    minor_rows = _refund_minor_rows(session, found)
    return [
        *handover_files(session, found, cipher=cipher, out_dir=out_dir),
        refunds_file(session, found, out_dir=out_dir, minor_rows=minor_rows),
        exit_report(session, found, out_dir=out_dir, minor_rows=minor_rows),
    ]
