"""The customer base of bench_care_dashboard: C customers and R usage records on PostgreSQL.

Consistent with what the 360° view and the dashboard read, built for speed
(server-side `INSERT … SELECT` where the services would take hours) and
through the services where the ledger's rules matter:

* the sample catalog with a block of ≥ C numbers and C SIMs (bench_import's
  `setup`, through the catalog loader and the SIM import);
* C customers, each with one active LITE30 line on its own number and SIM
  (numbers `assigned`, SIMs `active`), the line's provisioning `activate`
  delivered, and three consecutive 30-day periods — the first starting 80
  days before now (to the hour), so the third is current;
* the ledger through `post_entries`: each customer's opening balance
  (three periods' price plus up to 200.00) and one renewal entry paying each
  period (`line_period.entry_id`), at the period's start;
* R usage records (bench/common.py's `fill_usage`) spread from the first
  period's start to now, each in its line's period of that instant, in the
  monthly partitions the importer would create; the periods' used counters
  are then set to the sums of their records' `within`, and the records'
  quarter-hour sums (`usage_quarter_hour`) built from them, as the importer
  keeps them;
* audit rows as the services write them (customer created, line activated,
  each renewal), a renewal notice per period (sent), and tickets for one
  customer in fifty in every status, opened over the last 30 days;
* settlement runs (`export_settlement`) for the complete months before the
  current one, so that past months have a wholesale cost and a margin.

Then `VACUUM (ANALYZE)`, the state autovacuum keeps a database in.

`build` returns the refs of the customers, for the pages to ask for.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlmodel import Session, select

from app.core.audit import Actor
from app.core.db import Database
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.activity import plan_tag
from app.ledger.posting import BulkEntry, post_entries
from app.usage.settlement import export_settlement
from app.usage.store import ensure_partitions, rebuild_quarter_hours
from bench.bench_import import setup
from bench.common import fill_usage
from plans.models import Plan
from wholesale.models import HostCarrier

ACTOR = Actor.system("bench")
CURRENCY = "CNY"
PLAN = "LITE30"
PERIODS = 3
PERIOD_DAYS = 30
DAYS_BACK = 80  # the first period starts this many days before now
CHUNK = 10_000
TICKET_EVERY = 50

_CUSTOMERS = """
INSERT INTO customer (ref, name, email, created_at)
SELECT 'C-' || lpad(i::text, 7, '0'), 'Bench customer ' || i, 'c' || i || '@bench.example', :at
FROM generate_series(1, :n) AS i
"""
# The n-th customer gets the n-th available number and the n-th SIM in stock.
_LINES = """
INSERT INTO line (customer_id, msisdn, plan_id, status, created_at, sim_id, status_changed_at,
                  auto_renew, period_end, service_started_at)
SELECT c.id, n.msisdn, :plan, 'active', :at, s.id, :at, true, :period_end, :t0
FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM customer) AS c
JOIN (SELECT msisdn, row_number() OVER (ORDER BY id) AS rn FROM phone_number
      WHERE status = 'available') AS n ON n.rn = c.rn
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM sim
      WHERE status = 'in_stock') AS s ON s.rn = c.rn
ORDER BY c.id
"""
_TAKEN = [
    "UPDATE phone_number SET status = 'assigned', status_changed_at = :at"
    " WHERE msisdn IN (SELECT msisdn FROM line)",
    "UPDATE sim SET status = 'active', status_changed_at = :at"
    " WHERE id IN (SELECT sim_id FROM line)",
]
_PERIODS = """
INSERT INTO line_period (line_id, plan_id, start, "end", price_minor, data_kb, voice_s, sms,
                         data_kb_used, voice_s_used, sms_used, created_at)
SELECT l.id, :plan, :t0 + k * INTERVAL '30 days', :t0 + (k + 1) * INTERVAL '30 days',
       :price, :data_kb, :voice_s, :sms, 0, 0, 0, :t0 + k * INTERVAL '30 days'
FROM line AS l CROSS JOIN generate_series(0, :periods - 1) AS k
ORDER BY l.id, k
"""
_PAID_BY = """
UPDATE line_period SET entry_id = e.id FROM journal_entry AS e
WHERE e.idempotency_key = 'bench-renewal:' || line_period.id
"""
_USED = """
UPDATE line_period SET data_kb_used = u.data, voice_s_used = u.voice, sms_used = u.sms
FROM (SELECT period_id,
             coalesce(sum(within) FILTER (WHERE service = 'data'), 0) AS data,
             coalesce(sum(within) FILTER (WHERE service = 'voice'), 0) AS voice,
             coalesce(sum(within) FILTER (WHERE service = 'sms'), 0) AS sms
      FROM usage_record GROUP BY period_id) AS u
WHERE line_period.id = u.period_id
"""
_EVENTS = """
INSERT INTO provisioning_event (line_id, host_id, action, payload, status, attempts,
                                next_attempt_at, last_error, created_at, delivered_at)
SELECT id, :host, 'activate', '{}', 'delivered', 1, :at, '', :at, :at FROM line
"""
_AUDIT = """
INSERT INTO audit_entry (at, actor_kind, actor_label, action, target_type, target_id, details)
SELECT at, 'system', 'bench', action, target_type, target_id, '{}' FROM (
  SELECT created_at AS at, 'customer.create' AS action, 'customer' AS target_type,
         id::text AS target_id, id AS o FROM customer
  UNION ALL SELECT created_at, 'line.activate', 'line', id::text, customer_id FROM line
  UNION ALL SELECT start, 'line.renew', 'line', line_id::text, line_id FROM line_period
  UNION ALL SELECT created_at, 'ticket.open', 'ticket', ref, customer_id FROM ticket
) AS a ORDER BY at, o
"""
_NOTICES = """
INSERT INTO notification (customer_id, channel, recipient, kind, locale, data, subject, body,
                          status, attempts, next_attempt_at, last_error, created_at, sent_at)
SELECT c.id, 'email', c.email, 'renewal', 'zh_Hans', '{}', '套餐已续订', '您的套餐已续订。',
       'sent', 1, p.start, '', p.start, p.start
FROM line_period AS p JOIN line AS l ON l.id = p.line_id JOIN customer AS c ON c.id = l.customer_id
ORDER BY p.start, c.id
"""
# One customer in TICKET_EVERY has a ticket, opened within the last 30 days, its
# status in turn open, pending customer, resolved, closed or escalated.
_TICKETS = """
INSERT INTO ticket (ref, customer_id, line_id, category, channel, priority, status, subject,
                    sla_around_the_clock, first_response_due_at, resolution_due_at,
                    first_responded_at, resolved_at, closed_at, paused_at, paused_seconds,
                    reopen_count, locale, created_at, updated_at)
SELECT 'T-' || lpad(n::text, 6, '0'), customer_id, line_id,
       (ARRAY['inquiry', 'complaint', 'fault', 'billing_dispute', 'porting'])[1 + n % 5],
       (ARRAY['self_care', 'phone', 'store'])[1 + n % 3], 'normal', st,
       'Bench ticket ' || n, false, at + INTERVAL '8 hours', at + INTERVAL '72 hours',
       CASE WHEN st <> 'open' THEN at + INTERVAL '2 hours' END,
       CASE WHEN st IN ('resolved', 'closed') THEN at + INTERVAL '20 hours' END,
       CASE WHEN st = 'closed' THEN at + INTERVAL '30 hours' END,
       CASE WHEN st = 'pending_customer' THEN at + INTERVAL '2 hours' END,
       0, 0, 'zh_Hans', at, at
FROM (SELECT row_number() OVER (ORDER BY l.id) AS n, l.customer_id, l.id AS line_id,
             (ARRAY['open', 'pending_customer', 'resolved', 'closed', 'escalated'])
                 [1 + (l.id / :every) % 5] AS st,
             :now - ((l.id * 7919) % (30 * 86400)) * INTERVAL '1 second' - INTERVAL '2 days' AS at
      FROM line AS l WHERE l.id % :every = 0) AS t
"""


@dataclass(frozen=True)
class Fixture:
    """What was built: the customers' refs, and the instants the data spans."""

    refs: list[str]
    first_start: datetime
    now: datetime


def _plan(session: Session) -> Plan:
    return session.exec(select(Plan).where(Plan.code == PLAN)).one()


def _people(session: Session, *, customers: int, t0: datetime) -> tuple[int, int]:
    """Customers, lines, periods, provisioning events; (first customer id, first period id)."""
    plan = _plan(session)
    host = session.exec(select(HostCarrier).where(HostCarrier.code == "HOSTA")).one()
    connection = session.connection()
    at = t0 - timedelta(hours=1)
    connection.execute(text(_CUSTOMERS), {"n": customers, "at": at})
    end = t0 + timedelta(days=PERIODS * PERIOD_DAYS)
    connection.execute(text(_LINES), {"plan": plan.id, "at": at, "period_end": end, "t0": t0})
    for statement in _TAKEN:
        connection.execute(text(statement), {"at": at})
    allowance = {"data_kb": plan.data_mb * 1024, "voice_s": plan.voice_min * 60, "sms": plan.sms}
    values = {"plan": plan.id, "t0": t0, "price": plan.price_minor, "periods": PERIODS}
    connection.execute(text(_PERIODS), {**values, **allowance})
    connection.execute(text(_EVENTS), {"host": host.id, "at": t0})
    first_customer = connection.execute(text("SELECT min(id) FROM customer")).scalar_one()
    first_period = connection.execute(text("SELECT min(id) FROM line_period")).scalar_one()
    return int(first_customer), int(first_period)


def _renewal_key(first_period: int, customer_index: int, k: int) -> str:
    """The key of the entry paying the k-th period of the customer's line (periods go
    in line by line, so its id is computed; `_PAID_BY` links them)."""
    return f"bench-renewal:{first_period + customer_index * PERIODS + k}"


def _ledger(
    session: Session, *, customers: int, first_customer: int, first_period: int, t0: datetime
) -> None:
    """Opening balances and one renewal entry per period, through `post_entries`."""
    price = _plan(session).price_minor
    ids = list(range(first_customer, first_customer + customers))
    accounts = customer_account_ids(session, customer_ids=ids, currency=CURRENCY)
    cash = system_account_id(session, kind="cash_offline", currency=CURRENCY)
    revenue = system_account_id(session, kind="revenue_plans", currency=CURRENCY)
    for first in range(0, customers, CHUNK):
        chunk = ids[first : first + CHUNK]
        opening = [
            BulkEntry(
                kind="opening_balance",
                idempotency_key=f"bench-opening:{cid}",
                postings=(
                    (cash, -(PERIODS * price + cid * 37 % 20_000 + 1)),
                    (accounts[cid], PERIODS * price + cid * 37 % 20_000 + 1),
                ),
            )
            for cid in chunk
        ]
        post_entries(session, entries=opening, actor=ACTOR, now=t0 - timedelta(hours=1))
        for k in range(PERIODS):
            renewals = [
                BulkEntry(
                    kind="renewal",
                    idempotency_key=_renewal_key(first_period, cid - first_customer, k),
                    postings=((accounts[cid], -price), (revenue, price)),
                    tag=plan_tag(PLAN),
                )
                for cid in chunk
            ]
            at = t0 + timedelta(days=k * PERIOD_DAYS)
            post_entries(session, entries=renewals, actor=ACTOR, now=at)
    session.connection().execute(text(_PAID_BY))


def _months(first: datetime, last: datetime) -> set[tuple[int, int]]:
    months, day = set(), first
    while day <= last + timedelta(days=31):
        months.add((day.year, day.month))
        day += timedelta(days=28)
    return months


def _usage(
    session: Session,
    *,
    records: int,
    customers: int,
    first_period: int,
    t0: datetime,
    now: datetime,
) -> None:
    plan = _plan(session)
    host = session.exec(select(HostCarrier).where(HostCarrier.code == "HOSTA")).one()
    assert host.id is not None
    ensure_partitions(session, _months(t0 - timedelta(days=1), now))
    first_line = int(session.connection().execute(text("SELECT min(id) FROM line")).scalar_one())
    if records:
        fill_usage(
            session.connection(),
            host_id=host.id,
            records=records,
            start=t0,
            span_s=int((now - t0).total_seconds()),
            first_line=first_line,
            lines=customers,
            first_period=first_period,
            periods=PERIODS,
            period_s=PERIOD_DAYS * 86_400,
            increment_s=plan.voice_increment_s,
        )
    session.connection().execute(text(_USED))
    rebuild_quarter_hours(session)


def _settle_past_months(database: Database, *, t0: datetime, now: datetime) -> None:
    """A settlement run of each complete month since t0 (in the host's zone)."""
    with database.transaction() as session:
        host = session.exec(select(HostCarrier).where(HostCarrier.code == "HOSTA")).one()
        zone = ZoneInfo(host.timezone)
        local_now, day = now.astimezone(zone), t0.astimezone(zone)
        months = []
        while (day.year, day.month) < (local_now.year, local_now.month):
            months.append(f"{day.year:04d}-{day.month:02d}")
            day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    with tempfile.TemporaryDirectory(prefix="mvno-bench-care-") as folder:
        for month in months:
            with database.transaction() as session:
                export_settlement(
                    session,
                    host_code="HOSTA",
                    month=month,
                    out_dir=Path(folder),
                    actor=ACTOR,
                    now=now,
                )


def build(database: Database, *, customers: int, records: int, now: datetime) -> Fixture:
    """The whole customer base (see the module); returns the refs and the span."""
    t0 = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    t0 -= timedelta(days=DAYS_BACK)
    setup(database, customers)
    with database.transaction() as session:
        first_customer, first_period = _people(session, customers=customers, t0=t0)
    with database.transaction() as session:
        _ledger(
            session,
            customers=customers,
            first_customer=first_customer,
            first_period=first_period,
            t0=t0,
        )
    with database.transaction() as session:
        _usage(
            session, records=records, customers=customers, first_period=first_period, t0=t0, now=now
        )
    with database.transaction() as session:
        connection = session.connection()
        connection.execute(text(_TICKETS), {"every": TICKET_EVERY, "now": now})
        connection.execute(text(_NOTICES))
        connection.execute(text(_AUDIT))
    _settle_past_months(database, t0=t0, now=now)
    # VACUUM as autovacuum would have after months of such writes (a server may run with
    # it off): the visibility map lets index-only scans skip the heap. Outside a transaction.
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (ANALYZE)")
    with database.engine.connect() as connection:
        refs = [
            row[0] for row in connection.exec_driver_sql("SELECT ref FROM customer ORDER BY id")
        ]
    return Fixture(refs=refs, first_start=t0, now=now)
