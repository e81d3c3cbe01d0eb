"""The checks of a subscribers migration file against the database.

The rules are in app/onboarding/migration.py. `validate_rows` checks every
row: within the file, then against the database with one query per lookup
set (refs, plans, numbers, SIMs), adding each problem to its row; it also
tells a file that was imported already. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from app.core.money import MAX_AMOUNT_MINOR, format_plain
from app.ledger.accounts import CUSTOMER_PREPAID
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.onboarding.migration_rows import ImportRow, check_within_file, customers
from app.subscribers.models import FINAL_LINE_STATUSES, Customer, Line
from numbering.models import NumberBlock, PhoneNumber, Sim
from plans.models import Plan
from plans.pricing import monthly_fee_minor
from wholesale.models import HostCarrier

CHUNK = 1000


def opening_balance_key(customer_ref: str) -> str:
    """The ledger idempotency key of a customer's opening balance."""
    return f"import:{customer_ref}"


def among(session: Session, column: Any, values: Iterable[str]) -> Iterator[Any]:
    """WHERE clauses that together match `column` against each of `values`.

    PostgreSQL: one `= ANY(array)` with the values as a single parameter (an
    IN list of thousands of parameters costs more to build than to run).
    SQLite: IN lists of `CHUNK` values. Values are sorted, so concurrent
    updates of overlapping sets lock rows in the same order.
    """
    ordered = sorted(set(values))
    if not ordered:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, ordered, type_=postgresql.ARRAY(String())))
        return
    for start in range(0, len(ordered), CHUNK):
        yield column.in_(ordered[start : start + CHUNK])


def _existing_refs(session: Session, rows: list[ImportRow]) -> dict[str, int]:
    found: dict[str, int] = {}
    refs = [row.ref for row in rows if row.ref and row.ok("customer_ref")]
    table = Customer.__table__  # type: ignore[attr-defined]
    for clause in among(session, table.c.ref, refs):
        found.update(
            (ref, customer_id)
            for customer_id, ref in session.execute(select(table.c.id, table.c.ref).where(clause))
        )
    return found


def _published_plans(session: Session, codes: set[str]) -> tuple[dict[str, Plan], dict[str, str]]:
    """code → published version; code → status of its latest version (for the others)."""
    published: dict[str, Plan] = {}
    latest: dict[str, tuple[int, str]] = {}
    for clause in among(session, Plan.code, codes):
        for plan in session.scalars(select(Plan).where(clause)):
            if plan.status == "published":
                published[plan.code] = plan
            if plan.code not in latest or plan.version > latest[plan.code][0]:
                latest[plan.code] = (plan.version, plan.status)
    return published, {code: status for code, (_, status) in latest.items()}


def _check_plans(session: Session, rows: list[ImportRow], currency: str) -> None:
    codes = {row.plan_code for row in rows if row.plan_code and row.ok("plan_code")}
    published, statuses = _published_plans(session, codes)
    for row in rows:
        if not row.plan_code or not row.ok("plan_code"):
            continue
        plan = published.get(row.plan_code)
        if plan is None:
            if row.plan_code in statuses:
                row.refuse(
                    "plan_code",
                    f"plan {row.plan_code} is not on sale (its latest version is"
                    f" {statuses[row.plan_code]})",
                )
            else:
                row.refuse("plan_code", f"no plan {row.plan_code}")
        elif plan.currency != currency:
            row.refuse(
                "plan_code",
                f"plan {row.plan_code} is priced in {plan.currency}, not {currency}",
            )
        else:
            row.plan = plan


def _host_codes(session: Session) -> dict[int, str]:
    hosts = HostCarrier.__table__  # type: ignore[attr-defined]
    return {host_id: code for host_id, code in session.execute(select(hosts.c.id, hosts.c.code))}


def _numbers_found(session: Session, wanted: list[str]) -> tuple[dict[str, Any], set[str]]:
    """msisdn → (status, hold end, host) of our numbers; the numbers with a live line."""
    numbers = PhoneNumber.__table__  # type: ignore[attr-defined]
    blocks = NumberBlock.__table__  # type: ignore[attr-defined]
    lines = Line.__table__  # type: ignore[attr-defined]
    found: dict[str, Any] = {}
    with_line: set[str] = set()
    for clause in among(session, numbers.c.msisdn, wanted):
        query = (
            select(
                numbers.c.msisdn,
                numbers.c.status,
                numbers.c.reserved_until,
                blocks.c.host_id,
            )
            .join(blocks, blocks.c.id == numbers.c.block_id)
            .where(clause)
        )
        found.update((r.msisdn, r) for r in session.execute(query))
    for clause in among(session, lines.c.msisdn, wanted):
        live = lines.c.status.not_in(FINAL_LINE_STATUSES)
        with_line.update(session.scalars(select(lines.c.msisdn).where(clause, live)))
    return found, with_line


def _check_numbers(
    session: Session, rows: list[ImportRow], now: datetime, hosts: dict[int, str]
) -> None:
    wanted = [row.msisdn for row in rows if row.msisdn and row.ok("msisdn")]
    found, with_line = _numbers_found(session, wanted)
    for row in rows:
        if not row.msisdn or not row.ok("msisdn"):
            continue
        number = found.get(row.msisdn)
        if number is None:
            row.refuse("msisdn", f"{row.msisdn} is not in our number blocks")
            continue
        free = number.status == "available" or (
            number.status == "reserved"
            and number.reserved_until is not None
            and _aware(number.reserved_until) <= now
        )
        if not free:
            row.refuse("msisdn", f"{row.msisdn} is not available (it is {number.status})")
        elif row.msisdn in with_line:
            row.refuse("msisdn", f"{row.msisdn} already has a line")
        elif row.plan is not None and number.host_id != row.plan.host_id:
            row.refuse(
                "msisdn",
                f"{row.msisdn} is a number of host {hosts.get(number.host_id)}, but plan"
                f" {row.plan.code} is on host {hosts.get(row.plan.host_id)}",
            )


def _aware(value: datetime) -> datetime:
    """A time read by a Core query from SQLite comes back naive (UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _check_sims(session: Session, rows: list[ImportRow], hosts: dict[int, str]) -> None:
    sims = Sim.__table__  # type: ignore[attr-defined]
    wanted = [row.iccid for row in rows if row.iccid and row.ok("iccid")]
    found: dict[str, Any] = {}
    for clause in among(session, sims.c.iccid, wanted):
        query = select(sims.c.id, sims.c.iccid, sims.c.status, sims.c.host_id).where(clause)
        found.update((r.iccid, r) for r in session.execute(query))
    for row in rows:
        if not row.iccid or not row.ok("iccid"):
            continue
        sim = found.get(row.iccid)
        if sim is None:
            row.refuse("iccid", f"SIM {row.iccid} is not in our stock")
        elif sim.status != "in_stock":
            row.refuse("iccid", f"SIM {row.iccid} is not in stock (it is {sim.status})")
        elif row.plan is not None and sim.host_id != row.plan.host_id:
            row.refuse(
                "iccid",
                f"SIM {row.iccid} belongs to host {hosts.get(sim.host_id)}, but plan"
                f" {row.plan.code} is on host {hosts.get(row.plan.host_id)}",
            )
        else:
            row.sim_id = sim.id


def _check_caps(rows: list[ImportRow], cap_months: int) -> None:
    """A customer's opening balance (the sum of its rows) may not pass its cap."""
    for ref, own in customers(rows).items():
        if any(row.plan is None or not row.ok("balance") for row in own):
            continue  # already refused; the cap cannot be computed
        total = sum(row.balance_minor or 0 for row in own)
        cap = cap_months * sum(monthly_fee_minor(row.plan) for row in own if row.plan)
        if total > cap:
            target = next((row for row in own if row.balance_minor), own[0])
            target.refuse(
                "balance",
                f"the opening balance {format_plain(total)} of customer {ref} is above the"
                f" prepayment cap of {format_plain(cap)} ({cap_months} months of the fees of"
                f" its lines)",
            )
        elif total > MAX_AMOUNT_MINOR:
            own[0].refuse(
                "balance",
                f"the opening balance of customer {ref} may be at most"
                f" {format_plain(MAX_AMOUNT_MINOR)}",
            )


def _check_database(
    session: Session,
    rows: list[ImportRow],
    *,
    existing: dict[str, int],
    currency: str,
    cap_months: int,
    now: datetime,
) -> None:
    for row in rows:
        if row.ref in existing and row.ok("customer_ref"):
            row.refuse("customer_ref", f"customer {row.ref} already exists")
    hosts = _host_codes(session)
    _check_plans(session, rows, currency)
    _check_numbers(session, rows, now, hosts)
    _check_sims(session, rows, hosts)
    _check_caps(rows, cap_months)


def _already_imported(session: Session, rows: list[ImportRow], existing: dict[str, int]) -> bool:
    """Whether every customer of the file exists with exactly its lines and opening balance."""
    if not rows or any(row.problems or row.ref not in existing for row in rows):
        return False
    lines = Line.__table__  # type: ignore[attr-defined]
    sims = Sim.__table__  # type: ignore[attr-defined]
    plans = Plan.__table__  # type: ignore[attr-defined]
    customer_ids = sorted(set(existing.values()))
    held: dict[int, set[tuple[str, str | None, str]]] = defaultdict(set)
    for start in range(0, len(customer_ids), CHUNK):
        query = (
            select(lines.c.customer_id, lines.c.msisdn, sims.c.iccid, plans.c.code)
            .join(plans, plans.c.id == lines.c.plan_id)
            .outerjoin(sims, sims.c.id == lines.c.sim_id)
            .where(lines.c.customer_id.in_(customer_ids[start : start + CHUNK]))
        )
        for customer_id, msisdn, iccid, code in session.execute(query):
            held[customer_id].add((msisdn, iccid, code))
    credited = _opening_balances(session, list(existing))
    for ref, own in customers(rows).items():
        wanted = {(row.msisdn, row.iccid, row.plan_code) for row in own}
        if held.get(existing[ref], set()) != wanted:
            return False
        if credited.get(ref, 0) != sum(row.balance_minor or 0 for row in own):
            return False
    return True


def _opening_balances(session: Session, refs: list[str]) -> dict[str, int]:
    """customer ref → the amount its opening-balance entry credited (absent: none)."""
    entries = JournalEntry.__table__  # type: ignore[attr-defined]
    postings = Posting.__table__  # type: ignore[attr-defined]
    accounts = LedgerAccount.__table__  # type: ignore[attr-defined]
    keys = {opening_balance_key(ref): ref for ref in refs}
    found: dict[str, int] = {}
    for clause in among(session, entries.c.idempotency_key, keys):
        query = (
            select(entries.c.idempotency_key, postings.c.amount_minor)
            .join(postings, postings.c.entry_id == entries.c.id)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(clause, accounts.c.kind == CUSTOMER_PREPAID)
        )
        for key, amount in session.execute(query):
            found[keys[key]] = found.get(keys[key], 0) + int(amount)
    return found


def validate_rows(
    session: Session, rows: list[ImportRow], *, currency: str, cap_months: int, now: datetime
) -> bool:
    """Check every row, adding its problems; True when the file was imported already.

    Reads only (no locks): the writes re-check numbers and SIMs with
    conditional UPDATEs, and the database's unique constraints decide refs.
    """
    check_within_file(rows)
    existing = _existing_refs(session, rows)
    if _already_imported(session, rows, existing):
        return True
    _check_database(
        session, rows, existing=existing, currency=currency, cap_months=cap_months, now=now
    )
    return False
