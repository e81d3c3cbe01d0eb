"""Market exit at scale: `mvno exit execute` over N lines on PostgreSQL, files included.

    .venv/bin/python bench/bench_exit.py [--lines N] [--customers C] [--profile]

On a throwaway PostgreSQL database (`mvno_bench_exit` on the server of
BENCH_DATABASE_URL, dropped at the end), migrated with the project's
migrations:

* setup, by bulk inserts (not timed against the target): the sample catalog
  with a number block of ≥ N numbers, N SIMs, C customers (default 0.7 N,
  real-name details encrypted with a throwaway PII_KEY) and N lines — 60 %
  on LITE30 (30 days), 40 % on QUARTER108 (90 days), with periods started
  up to a validity before the announcement, so every QUARTER108 period and
  the periods a quarter of the active LITE30 lines paid ahead run past the
  exit instant; 2 % pending (no period yet), the lines of customers in
  arrears and 6 % more suspended, the rest active; every number of the
  lines assigned. The ledger through `post_entries` (so it balances and
  `check_ledger` passes, checked before the exit): opening balances for
  most customers, 1–3 Stripe card payments (Payment rows `stripe`,
  `succeeded`, with a payment intent and their credit entry) for a quarter
  of them, 40 % of those with their newest payment partly refunded already
  (the request and paid entries, a `succeeded` Refund row), and 4 % of the
  customers in arrears (a usage charge below zero);
* plan (exit date a month after the announcement, 30 days' notice) and
  announce through `app.exit.workflow.announce` (notices to every customer,
  the regulator report), timed apart; then a `transfer` choice for 30 % of
  the lines (bulk rows, as subscribers would have left them);
* floor, in the same run: one raw SQL statement over the same rows — every
  live line with its periods past the instant and its customer's balance,
  the unused value computed in SQL and written to a scratch table;
* timed: `mvno exit execute --out DIR --json --now <after the instant>` as a
  child process, process start to exit (ledger entries, refunds split over
  the card payments, lines ended with provisioning events and audit rows,
  numbers returned, the invariant checked, the handover, refunds and report
  files written);
* checks: the JSON's counts, refunds + transferred balances equal the
  liability before (positive balances + unused value, computed again here
  from the setup), `mvno ledger check --json` ok, every prepaid account at
  zero, no line left live, every number returned, the handover file's rows
  equal the transferred lines and the refunds file's sum the refunds.

With `--profile` the execution runs in process under cProfile instead of
the child process (timings then include the profiler's overhead) and the
top functions are printed; use it with a smaller `--lines`.

Target: ≤ 120 s for 100,000 lines (the default); exit status 1 when it is
missed or a check fails.

Figures, 100,000 lines and 70,000 customers on the 2-core development
machine under a load average of 6–9 from other work: 93.2 s (1,073 lines/s)
beside a floor of 0.57 s; refunds 8,810,013.88 CNY = liability before; the
handover file 3.4 MB (30,000 lines), refunds 7.9 MB, report 89 kB. The first
version took 171 s: `post_entries` checked accounts and split balance
updates in time quadratic in the batch, `end_lines` updated each line with
its own statement, and plain bulk inserts built their arrays in Python
(now COPY, `app.core.db.insert_rows`). Under `--profile` at 20,000 lines
the rest is spread over the ledger entries, the refund split, the ended
lines' events and audit rows, and returning the numbers.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet
from sqlalchemy import event, select, text
from sqlmodel import Session
from stdnum import luhn

from app.catalog import load_catalog
from app.charging.models import LinePeriod
from app.core.audit import Actor
from app.core.config import Settings
from app.core.db import Database, insert_rows
from app.core.floors import discover
from app.core.money import round_half_up
from app.core.pii import PiiCipher, mask_id_number
from app.exit.models import ExitChoice
from app.exit.schedule import plan_exit
from app.exit.workflow import announce, run_execution
from app.ledger.accounts import customer_account_ids, system_account_id
from app.ledger.checks import check_ledger
from app.ledger.posting import BulkEntry, post_entries
from app.payments.models import Payment, Refund
from app.subscribers.models import Customer, Line
from bench.bench_renewals import bulk_insert
from bench.common import fresh_database, pg_bench_url, print_table, timed
from numbering.models import Sim
from plans.models import Plan
from wholesale.models import HostCarrier

discover("models")  # registers every table for the ORM's flush order

PG_DATABASE = "mvno_bench_exit"
ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 120.0
DEFAULT_LINES = 100_000
CURRENCY = "CNY"
ACTOR = Actor.system("bench")
FIRST_NUMBER = 8617012340000
SETUP_AT = datetime(2026, 10, 1, tzinfo=UTC)
ANNOUNCE_AT = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 00:00 in Shanghai
EXIT_DATE = date(2027, 2, 1)  # the instant: 2027-01-31T16:00Z
EXIT_AT = datetime(2027, 1, 31, 16, 0, tzinfo=UTC)
EXECUTE_NOW = "2027-02-01T00:30:00+08:00"
PLANS = {"LITE30": (3900, 30), "QUARTER108": (10800, 90)}
CHUNK = 10_000
CLI = ("-c", "from app.cli import main; main()")


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


# -- the population -------------------------------------------------------------------


@dataclass
class Population:
    """What the setup made, computed beside the database to check the execution against."""

    lines: int = 0
    customers: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    positive_balances: int = 0
    arrears: int = 0
    unused: int = 0
    payments: int = 0
    refunded_before: int = 0
    line_ids: list[int] = field(default_factory=list)


def _unused(price: int, validity: int, start: datetime, end: datetime) -> int:
    """§12's unused value at EXIT_AT, as `app.charging.unused_value` computes it."""
    if end <= EXIT_AT:
        return 0
    left = end - max(start, EXIT_AT)
    micros = (left.days * 86_400 + left.seconds) * 1_000_000 + left.microseconds
    return round_half_up(price * micros, validity * 86_400 * 1_000_000)


def _catalog(session: Session, lines: int) -> tuple[int, dict[str, int]]:
    """The sample catalog with a block of ≥ `lines` numbers; (host id, plan code → id)."""
    catalog = (ROOT / "app" / "demo" / "catalog.toml").read_text(encoding="utf-8")
    last = FIRST_NUMBER + max(lines + lines // 20, 10_000) - 1
    catalog = catalog.replace('last = "+8617012349999"', f'last = "+{last}"')
    load_catalog(session, text=catalog, filename="catalog.toml", actor=ACTOR, now=SETUP_AT)
    host = session.execute(select(HostCarrier.id).where(HostCarrier.code == "HOSTA")).scalar()
    plans = dict(session.execute(select(Plan.code, Plan.id)).all())
    assert host is not None
    return host, {code: plans[code] for code in PLANS}


def _ids(session: Session, table: Any) -> list[int]:
    return [row[0] for row in session.execute(select(table.c.id).order_by(table.c.id))]


def _customers(session: Session, count: int, cipher: PiiCipher) -> list[int]:
    table = Customer.__table__  # type: ignore[attr-defined]
    for chunk in _chunks(list(range(count))):
        rows = []
        for n in chunk:
            id_number = f"110105{19500101 + n % 500:08d}{n % 1000:03d}X"
            rows.append(
                {
                    "ref": f"X-{n:07d}",
                    "name": f"Exit customer {n}",
                    "email": f"x{n}@bench.example",
                    "id_type": "cn_ric",
                    "id_number_enc": cipher.encrypt(id_number),
                    "id_number_masked": mask_id_number(id_number),
                    "created_at": SETUP_AT,
                }
            )
        bulk_insert(session, table, rows)
    return _ids(session, table)


def _sims(session: Session, count: int, host_id: int) -> list[int]:
    table = Sim.__table__  # type: ignore[attr-defined]
    for chunk in _chunks(list(range(count))):
        rows = []
        for n in chunk:
            body = f"898601271{n:09d}"
            rows.append(
                {
                    "iccid": body + luhn.calc_check_digit(body),
                    "imsi": f"46002{n:010d}",
                    "kind": "physical",
                    "host_id": host_id,
                    "status": "active",
                    "created_at": SETUP_AT,
                    "status_changed_at": SETUP_AT,
                }
            )
        bulk_insert(session, table, rows)
    return _ids(session, table)


@dataclass(frozen=True)
class LineSpec:
    customer: int
    plan: str
    status: str
    periods: tuple[tuple[datetime, datetime], ...]


def _line_specs(
    lines: int, customers: int, arrears: set[int], rng: random.Random
) -> list[LineSpec]:
    """Each line's customer, plan, status and periods (see the module docstring)."""
    specs = []
    for n in range(lines):
        customer = n * customers // lines
        plan = "LITE30" if rng.random() < 0.6 else "QUARTER108"
        validity = PLANS[plan][1]
        pick = rng.random()
        status = "pending" if pick < 0.02 else "suspended" if pick < 0.08 else "active"
        if customer in arrears and status == "active":
            status = "suspended"
        start = ANNOUNCE_AT - timedelta(minutes=rng.randrange(0, (validity - 1) * 1440))
        if status == "suspended" and customer not in arrears:
            start -= timedelta(days=validity)  # its renewal went unpaid: the period has ended
        periods: tuple[tuple[datetime, datetime], ...] = ()
        if status != "pending":
            end = start + timedelta(days=validity)
            periods = ((start, end),)
            if plan == "LITE30" and status == "active" and rng.random() < 0.25:
                periods += ((end, end + timedelta(days=validity)),)  # paid ahead
        specs.append(LineSpec(customer, plan, status, periods))
    return specs


def _lines(
    session: Session,
    specs: list[LineSpec],
    customer_ids: list[int],
    sim_ids: list[int],
    plan_ids: dict[str, int],
) -> list[int]:
    table = Line.__table__  # type: ignore[attr-defined]
    periods_table = LinePeriod.__table__  # type: ignore[attr-defined]
    for chunk in _chunks(list(enumerate(specs))):
        bulk_insert(
            session,
            table,
            [
                {
                    "customer_id": customer_ids[spec.customer],
                    "msisdn": f"+{FIRST_NUMBER + n}",
                    "plan_id": plan_ids[spec.plan],
                    "sim_id": sim_ids[n],
                    "status": spec.status,
                    "auto_renew": True,
                    "period_end": spec.periods[-1][1] if spec.periods else None,
                    "service_started_at": spec.periods[0][0] if spec.periods else None,
                    "created_at": SETUP_AT,
                    "status_changed_at": SETUP_AT,
                }
                for n, spec in chunk
            ],
        )
    line_ids = _ids(session, table)
    rows = []
    for n, spec in enumerate(specs):
        price = PLANS[spec.plan][0]
        for start, end in spec.periods:
            rows.append(
                {
                    "line_id": line_ids[n],
                    "plan_id": plan_ids[spec.plan],
                    "start": start,
                    "end": end,
                    "price_minor": price,
                    "data_kb": 10 * 1024 * 1024,
                    "voice_s": 12_000,
                    "sms": 100,
                    "data_kb_used": 0,
                    "voice_s_used": 0,
                    "sms_used": 0,
                    "created_at": start,
                }
            )
    for chunk in _chunks(rows):
        bulk_insert(session, periods_table, chunk)
    session.execute(
        text(
            "UPDATE phone_number SET status = 'assigned' FROM line"
            " WHERE line.msisdn = phone_number.msisdn"
        )
    )
    session.execute(
        text(
            "UPDATE sim SET status = 'assigned' FROM line"
            " WHERE line.sim_id = sim.id AND line.status = 'pending'"
        )
    )
    return line_ids


@dataclass
class Money:
    """The ledger entries of the setup and what they leave on each customer's account."""

    entries: list[BulkEntry] = field(default_factory=list)
    balances: dict[int, int] = field(default_factory=dict)
    payments: list[tuple[int, int, int]] = field(default_factory=list)  # customer, n, amount
    refunds: list[tuple[int, int, int]] = field(default_factory=list)  # customer, n, amount


def _money(customer_ids: list[int], arrears: set[int], rng: random.Random) -> Money:
    """Opening balances, card payments partly refunded, arrears (see the module docstring)."""
    money = Money()
    openings: list[tuple[int, int]] = []
    charges: list[tuple[int, int]] = []
    for customer in customer_ids:
        if customer in arrears:
            charges.append((customer, rng.randrange(1, 2000)))
            continue
        if rng.random() < 0.9:
            openings.append((customer, rng.randrange(1, 20_000)))
        if rng.random() < 0.25:
            amounts = [rng.randrange(1000, 10_000) for _ in range(rng.randrange(1, 4))]
            for k, amount in enumerate(amounts):
                money.payments.append((customer, k, amount))
            if rng.random() < 0.4:
                money.refunds.append((customer, len(amounts) - 1, rng.randrange(1, amounts[-1])))
    for customer, amount in openings:
        money.balances[customer] = money.balances.get(customer, 0) + amount
    for customer, _, amount in money.payments:
        money.balances[customer] = money.balances.get(customer, 0) + amount
    for customer, _, amount in money.refunds:
        money.balances[customer] -= amount
    for customer, amount in charges:
        money.balances[customer] = -amount
    money.entries = [
        *(_two("credit.cash_offline", f"opening:{c}", "cash_offline", c, a) for c, a in openings),
        *(
            _two("credit.cash_stripe", f"payment:bench:{c}:{k}", "cash_stripe", c, a)
            for c, k, a in money.payments
        ),
        *(
            _two("refund.request", f"refund-request:bench:{c}", "refunds_payable", c, -a)
            for c, _, a in money.refunds
        ),
        *(
            _two("charge.revenue_usage", f"usage:bench:{c}", "revenue_usage", c, -a, arrears=True)
            for c, a in charges
        ),
    ]
    return money


def _two(
    kind: str, key: str, other: str, customer: int, amount: int, *, arrears: bool = False
) -> BulkEntry:
    """An entry moving `amount` onto the customer's account from `other` (account names for now)."""
    postings: Any = ((other, -amount), (customer, amount))
    return BulkEntry(kind=kind, idempotency_key=key, postings=postings, allow_arrears=arrears)


def _post(session: Session, money: Money, customer_ids: list[int]) -> dict[str, int]:
    """Post the setup's entries (names resolved to account ids); key → entry id."""
    accounts = customer_account_ids(session, customer_ids=customer_ids, currency=CURRENCY)
    system = {
        kind: system_account_id(session, kind=kind, currency=CURRENCY)
        for kind in ("cash_offline", "cash_stripe", "refunds_payable", "revenue_usage")
    }
    resolved = [
        BulkEntry(
            kind=e.kind,
            idempotency_key=e.idempotency_key,
            postings=tuple(
                (system[a] if isinstance(a, str) else accounts[a], amount)
                for a, amount in e.postings
            ),
            allow_arrears=e.allow_arrears,
        )
        for e in money.entries
    ]
    entry_of: dict[str, int] = {}
    for chunk in _chunks(resolved):
        result = post_entries(session, entries=chunk, actor=ACTOR, now=SETUP_AT)
        assert not result.refused, list(result.refused.items())[:5]
        entry_of.update(result.posted)
    return entry_of


def _payments(session: Session, money: Money, entry_of: dict[str, int]) -> None:
    """The Payment rows of the card payments, the Refund rows of their partial refunds paid.

    A paid refund's payout entry is keyed by its refund id (`refund:<id>:paid`,
    as `app.payments.refunds` posts it), so it is posted once the rows exist.
    """
    made = insert_rows(
        session,
        Payment.__table__,  # type: ignore[attr-defined]
        [
            {
                "customer_id": c,
                "method": "stripe",
                "purpose": "topup",
                "status": "succeeded",
                "amount_minor": amount,
                "currency": CURRENCY,
                "credited_minor": amount,
                "stripe_session_id": f"cs_bench_{c}_{k}",
                "stripe_payment_intent_id": f"pi_bench_{c}_{k}",
                "journal_entry_id": entry_of[f"payment:bench:{c}:{k}"],
                "memo": "",
                "created_by": "bench",
                "created_at": SETUP_AT + timedelta(days=k),
                "completed_at": SETUP_AT + timedelta(days=k),
            }
            for c, k, amount in money.payments
        ],
        returning=("id", "stripe_payment_intent_id"),
    )
    payment_of = {intent: payment_id for payment_id, intent in made}
    refunded = insert_rows(
        session,
        Refund.__table__,  # type: ignore[attr-defined]
        [
            {
                "customer_id": c,
                "payment_id": payment_of[f"pi_bench_{c}_{k}"],
                "reason": "staff",
                "status": "succeeded",
                "amount_minor": amount,
                "currency": CURRENCY,
                "stripe_refund_id": f"re_bench_{c}",
                "attempts": 1,
                "last_error": "",
                "note": "bench: a partial refund before the exit",
                "journal_entry_id": entry_of[f"refund-request:bench:{c}"],
                "created_by": "bench",
                "created_at": SETUP_AT + timedelta(days=5),
                "updated_at": SETUP_AT + timedelta(days=5),
                "completed_at": SETUP_AT + timedelta(days=5),
            }
            for c, k, amount in money.refunds
        ],
        returning=("id", "amount_minor"),
    )
    payable = system_account_id(session, kind="refunds_payable", currency=CURRENCY)
    cash = system_account_id(session, kind="cash_stripe", currency=CURRENCY)
    for chunk in _chunks(refunded):
        post_entries(
            session,
            entries=[
                BulkEntry(
                    kind="refund.paid.cash_stripe",
                    idempotency_key=f"refund:{refund_id}:paid",
                    postings=((payable, -amount), (cash, amount)),
                )
                for refund_id, amount in chunk
            ],
            actor=ACTOR,
            now=SETUP_AT + timedelta(days=5),
        )


def build(database: Database, lines: int, customers: int, cipher: PiiCipher) -> Population:
    """The whole population of the module docstring, in one transaction."""
    rng = random.Random(13)
    arrears = set(rng.sample(range(customers), customers // 25))
    specs = _line_specs(lines, customers, arrears, rng)
    with database.transaction() as session:
        host_id, plan_ids = _catalog(session, lines)
        customer_ids = _customers(session, customers, cipher)
        sim_ids = _sims(session, lines, host_id)
        line_ids = _lines(session, specs, customer_ids, sim_ids, plan_ids)
        money = _money(customer_ids, {customer_ids[i] for i in arrears}, rng)
        entry_of = _post(session, money, customer_ids)
        _payments(session, money, entry_of)
    population = Population(lines=lines, customers=customers, line_ids=line_ids)
    for spec in specs:
        population.statuses[spec.status] = population.statuses.get(spec.status, 0) + 1
        price, validity = PLANS[spec.plan]
        population.unused += sum(_unused(price, validity, s, e) for s, e in spec.periods)
    population.positive_balances = sum(max(b, 0) for b in money.balances.values())
    population.arrears = sum(max(-b, 0) for b in money.balances.values())
    population.payments = len(money.payments)
    population.refunded_before = len(money.refunds)
    return population


# -- announcement, choices, floor -------------------------------------------------------


def announce_and_choose(
    database: Database, settings: Settings, line_ids: list[int], out: Path
) -> tuple[float, int]:
    """Plan and announce (timed: the seconds), then 30 % of the lines choose transfer."""
    started = time.perf_counter()
    with database.transaction() as session:
        plan_exit(
            session,
            exit_date=EXIT_DATE,
            notice_days=30,
            timezone=settings.timezone,
            actor=ACTOR,
            now=ANNOUNCE_AT,
        )
        found, _report = announce(
            session, settings=settings, actor=ACTOR, now=ANNOUNCE_AT, out_dir=out
        )
    seconds = time.perf_counter() - started
    rng = random.Random(17)
    chosen = sorted(rng.sample(line_ids, len(line_ids) * 3 // 10))
    terminate = set(rng.sample(line_ids, len(line_ids) // 20)) - set(chosen)
    with database.transaction() as session:
        for chunk in _chunks(
            [(i, "transfer") for i in chosen] + [(i, "terminate") for i in terminate]
        ):
            insert_rows(
                session,
                ExitChoice.__table__,  # type: ignore[attr-defined]
                [
                    {
                        "exit_id": found.id,
                        "line_id": line_id,
                        "choice": choice,
                        "given_by": "customer",
                        "actor_label": "",
                        "note": "",
                        "chosen_at": ANNOUNCE_AT + timedelta(days=3),
                    }
                    for line_id, choice in chunk
                ],
            )
    return seconds, len(chosen)


_FLOOR = """
CREATE TEMP TABLE bench_floor AS
SELECT l.id AS line_id, l.customer_id,
       coalesce(sum(round(p.price_minor * extract(epoch FROM p."end" - greatest(p.start, %(at)s))
                          / (pl.validity_days * 86400))), 0) AS unused_minor,
       max(a.balance_minor) AS balance_minor
FROM line l
JOIN plan pl ON pl.id = l.plan_id
LEFT JOIN line_period p ON p.line_id = l.id AND p."end" > %(at)s
LEFT JOIN ledger_account a ON a.customer_id = l.customer_id AND a.kind = 'customer_prepaid'
WHERE l.status NOT IN ('terminated', 'transferred', 'ported_out')
GROUP BY l.id, l.customer_id
"""


def floor(url: str) -> tuple[float, int]:
    """Seconds for one raw statement to find every line's unused value and balance; the sum."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        started = time.perf_counter()
        connection.execute(_FLOOR, {"at": EXIT_AT})
        total = connection.execute("SELECT sum(unused_minor) FROM bench_floor").fetchone()
        seconds = time.perf_counter() - started
        connection.rollback()
    return seconds, int(total[0] if total else 0)


# -- the execution --------------------------------------------------------------------


def environment(url: str, pii_key: str, instance: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PII_KEY": pii_key,
        "INSTANCE_PATH": str(instance),
        "PASSWORD_HASH_PROFILE": "cheap",
        "TIMEZONE": "Asia/Shanghai",
        "EXIT_BALANCE_POLICY": "refund",
    }


def cli(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    return time.perf_counter() - started, done


def _statement_timer(database: Database) -> dict[str, list[float]]:
    """Seconds per SQL statement (its first 100 characters), gathered while the execution runs."""
    spent: dict[str, list[float]] = {}

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seconds = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        key = " ".join(statement.split())[:100]
        spent.setdefault(key, []).append(seconds)

    event.listen(database.engine, "before_cursor_execute", before)
    event.listen(database.engine, "after_cursor_execute", after)
    return spent


def profiled(database: Database, settings: Settings, out: Path) -> tuple[float, dict[str, Any]]:
    """The execution in process under cProfile; prints the top functions and statements."""
    profile = cProfile.Profile()
    now = datetime.fromisoformat(EXECUTE_NOW)
    spent = _statement_timer(database)
    started = time.perf_counter()
    result = profile.runcall(
        run_execution, database, settings=settings, actor=Actor.cli(), now=now, out_dir=out
    )
    seconds = time.perf_counter() - started
    slowest = sorted(spent.items(), key=lambda item: -sum(item[1]))[:15]
    print_table(
        "Slowest statements (driver round trips, profiler included)",
        ("seconds", "calls", "statement"),
        [(f"{sum(times):.2f}", len(times), key) for key, times in slowest],
    )
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    print(stream.getvalue())
    return seconds, result


# -- checks ---------------------------------------------------------------------------


def check(
    database: Database,
    env: dict[str, str],
    population: Population,
    result: dict[str, Any],
    transfers: int,
) -> list[str]:
    """Everything the module docstring lists after the run; the problems found."""
    problems: list[str] = []
    liability = population.positive_balances + population.unused
    expected = {
        "lines": population.lines,
        "transferred": transfers,
        "terminated": population.lines - transfers,
        "liability_before": liability,
    }
    for name, value in expected.items():
        if result.get(name) != value:
            problems.append(f"{name}: {result.get(name)}, expected {value}")
    if result["refunds"] + result["transferred_balances"] != result["liability_before"]:
        problems.append("refunds + transferred balances != liability before")
    _, ledger = cli(env, "ledger", "check", "--json")
    report = json.loads(ledger.stdout or "{}")
    if ledger.returncode != 0 or not report.get("ok"):
        problems.append(f"ledger check: {report.get('problems', ledger.stderr)[:5]}")
    with database.engine.connect() as connection:
        for name, sql in (
            (
                "prepaid accounts not at zero",
                "SELECT count(*) FROM ledger_account"
                " WHERE kind = 'customer_prepaid' AND balance_minor <> 0",
            ),
            (
                "live lines",
                "SELECT count(*) FROM line"
                " WHERE status NOT IN ('terminated', 'transferred', 'ported_out')",
            ),
            (
                "numbers not returned",
                "SELECT count(*) FROM phone_number WHERE status <> 'returned'",
            ),
        ):
            found = connection.exec_driver_sql(sql).scalar()
            if found:
                problems.append(f"{name}: {found}")
    files = {Path(f).name: Path(f) for f in result["files"]}
    date_text = EXIT_DATE.isoformat()
    handover = list(
        csv.DictReader(io.StringIO(files[f"handover_HOSTA_{date_text}.csv"].read_text()))
    )
    if len(handover) != transfers:
        problems.append(f"handover rows: {len(handover)}, expected {transfers}")
    refunds = list(csv.DictReader(io.StringIO(files[f"refunds_{date_text}.csv"].read_text())))
    refunded = sum(int(row["amount"].replace(".", "")) for row in refunds)
    if refunded != result["refunds"]:
        problems.append(f"refunds file sums to {refunded}, not {result['refunds']}")
    return problems


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES)
    parser.add_argument("--customers", type=int, default=None, help="default 0.7 × lines")
    parser.add_argument("--profile", action="store_true", help="execute in process, profiled")
    parser.add_argument("--keep", type=Path, help="copy the execution's files into this folder")
    options = parser.parse_args(argv)
    lines = options.lines
    customers = options.customers or max(1, lines * 7 // 10)
    if lines < 10 or not 0 < customers <= lines:
        parser.error("--lines at least 10, --customers between 1 and --lines")
    url = pg_bench_url(PG_DATABASE)
    pii_key = Fernet.generate_key().decode("ascii")
    with (
        tempfile.TemporaryDirectory(prefix="mvno-bench-exit-") as folder,
        fresh_database("postgresql", pg_database=PG_DATABASE, drop=True) as database,
    ):
        out = Path(folder)
        env = environment(url, pii_key, out / "instance")
        settings = Settings.from_env(env)
        setup_s, population = timed(lambda: build(database, lines, customers, PiiCipher(pii_key)))
        with database.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
        print(
            f"setup: {lines:,} lines ({population.statuses}), {customers:,} customers,"
            f" {population.payments:,} card payments ({population.refunded_before:,} partly"
            f" refunded) in {setup_s:.1f} s",
            flush=True,
        )
        with database.transaction(write=False) as session:
            ledger_s, ledger = timed(
                lambda: check_ledger(session, cap_months=24, reference_monthly_minor=5000)
            )
        print(f"ledger before: ok={ledger.ok}, {ledger.entries:,} entries ({ledger_s:.1f} s)")
        if not ledger.ok:
            print("\n".join(ledger.problems[:10]))
            return 1
        announce_s, transfers = announce_and_choose(
            database, settings, population.line_ids, out / "announce"
        )
        print(
            f"plan + announce: {announce_s:.1f} s; {transfers:,} lines chose transfer", flush=True
        )
        floor_s, floor_unused = floor(url)
        problems = []
        if floor_unused != population.unused:
            problems.append(f"floor's unused value {floor_unused} != {population.unused}")
        if options.profile:
            seconds, result = profiled(database, settings, out / "files")
        else:
            seconds, done = cli(
                env,
                "exit",
                "execute",
                "--out",
                str(out / "files"),
                "--json",
                f"--now={EXECUTE_NOW}",
            )
            if done.returncode != 0:
                print(done.stdout, done.stderr)
                return 1
            result = json.loads(done.stdout)
        print(f"exit execute: {seconds:.1f} s")
        print(json.dumps(result, indent=2))
        sizes = [(Path(f).name, f"{Path(f).stat().st_size:,}") for f in result["files"]]
        print_table("Files", ("file", "bytes"), sizes)
        problems += check(database, env, population, result, transfers)
        if options.keep is not None:
            options.keep.mkdir(parents=True, exist_ok=True)
            for name in result["files"]:
                shutil.copy(name, options.keep / Path(name).name)
    met = seconds <= TARGET_S
    print_table(
        f"`mvno exit execute`, process start to exit, files included; target ≤ {TARGET_S:.0f} s",
        ("lines", "customers", "execute s", "lines/s", "floor s", "ratio", "announce s", "target"),
        [
            (
                f"{lines:,}",
                f"{customers:,}",
                f"{seconds:.1f}",
                f"{lines / seconds:,.0f}",
                f"{floor_s:.2f}",
                f"{seconds / floor_s:.0f}×",
                f"{announce_s:.1f}",
                "met" if met else "MISSED",
            )
        ],
    )
    for problem in problems:
        print(f"FAIL: {problem}")
    return 0 if met and not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
