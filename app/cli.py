"""The `mvno` command line (DESIGN §13); also reachable as `flask --app wsgi …`.

Conventions every command follows:

* `--now ISO8601` where the clock is read, so operators and tests replay time;
* `--json` where results are printed, money as integers in minor units;
* one transaction per command, committed when it succeeds;
* a refusal prints one line on stderr and exits with status 1.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, TypeVar, cast

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy.exc import OperationalError

from app.core.clock import parse_instant, utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import DomainError
from app.core.money import format_plain, parse_minor

F = TypeVar("F", bound=Callable[..., Any])


def database() -> Database:
    return cast(Database, current_app.extensions["mvno.db"])


def settings() -> Settings:
    return cast(Settings, current_app.extensions["mvno.settings"])


def fail(message: str) -> NoReturn:
    """Print a one-line refusal on stderr and exit with status 1."""
    click.echo(f"mvno: {' '.join(message.split())}", err=True)
    sys.exit(1)


def refusals(f: F) -> F:
    """Turn domain refusals and an unreachable database into a message and exit 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except DomainError as exc:
            fail(exc.message)
        except OperationalError as exc:
            fail(f"database error: {str(exc.orig or exc).splitlines()[0]}")

    return cast(F, wrapper)


def now_option(f: F) -> F:
    """Add `--now ISO8601`; the command receives `now` as an aware UTC datetime."""

    @click.option(
        "--now",
        "now_text",
        metavar="ISO8601",
        help="Act as if it were this time (with offset). Default: the clock.",
    )
    @functools.wraps(f)
    def wrapper(*args: Any, now_text: str | None, **kwargs: Any) -> Any:
        try:
            now = parse_instant(now_text) if now_text else utcnow()
        except DomainError as exc:
            fail(exc.message)
        return f(*args, now=now, **kwargs)

    return cast(F, wrapper)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def emit(data: dict[str, Any], *, as_json: bool, text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=_json_default))
    else:
        click.echo(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_password(prompt: str) -> str:
    """A password from the terminal (asked twice) or the first line of stdin."""
    stdin = sys.stdin
    if stdin.isatty():
        answer: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
        return answer
    line = stdin.readline()
    if not line:
        fail("no password given on standard input")
    return line.rstrip("\r\n")


# -- db -------------------------------------------------------------------------------

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@refusals
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to REVISION."""
    from app.core.migrate import current_revision, upgrade

    db = database()
    if db.is_sqlite:
        settings().instance_path.mkdir(parents=True, exist_ok=True)
    upgrade(db.engine, revision)
    if revision == "head":
        from numbering.services import ensure_default_tiers

        # Configuration rows with defaults: golden-number tiers and their surcharges.
        with db.transaction() as session:
            ensure_default_tiers(session, now=utcnow())
    click.echo(f"database at revision {current_revision(db.engine)}")


@db_cli.command("current")
@refusals
def db_current() -> None:
    """Print the schema revision."""
    from app.core.migrate import current_revision

    click.echo(current_revision(database().engine) or "empty (run: mvno db upgrade)")


@db_cli.command("check")
@refusals
def db_check() -> None:
    """Exit 1 when the models and the migrated schema differ."""
    from app.core.migrate import schema_differences

    with database().engine.connect() as connection:
        diffs = schema_differences(connection)
    if diffs:
        for diff in diffs:
            click.echo(repr(diff), err=True)
        fail(f"{len(diffs)} difference(s) between models and migrations")
    click.echo("models and migrations agree")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@refusals
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (run `db upgrade` first)."""
    from alembic import command

    from app.core.migrate import MIGRATIONS_DIR, alembic_config

    count = len(list((MIGRATIONS_DIR / "versions").glob("[0-9]*.py")))
    with database().engine.begin() as connection:
        command.revision(
            alembic_config(connection=connection),
            message=message,
            autogenerate=True,
            rev_id=f"{count + 1:04d}",
        )


# -- staff ----------------------------------------------------------------------------

staff_cli = AppGroup("staff", help="Console staff accounts.")


@staff_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, help="admin, care, finance, wholesale or auditor")
@click.option("--name", default="")
@json_option
@now_option
@refusals
def staff_create(email: str, role: str, name: str, as_json: bool, now: datetime) -> None:
    """Create a staff user; the password comes from stdin or a prompt."""
    from app.auth.services import check_role, create_staff
    from app.core.audit import Actor

    check_role(role)  # before asking for a password that would be refused anyway
    password = read_password("Password")
    with database().transaction() as session:
        user = create_staff(
            session,
            email=email,
            role=role,
            password=password,
            name=name,
            actor=Actor.cli(),
            now=now,
        )
        data = {"id": user.id, "email": user.email, "role": user.role}
    emit(data, as_json=as_json, text=f"created staff user {data['email']} ({data['role']})")


@staff_cli.command("list")
@json_option
@refusals
def staff_list(as_json: bool) -> None:
    """List staff users."""
    from app.auth.services import list_staff

    with database().transaction(write=False) as session:
        users = [
            {"id": u.id, "email": u.email, "role": u.role, "active": u.is_active}
            for u in list_staff(session)
        ]
    text = "\n".join(
        f"{u['id']:>5}  {u['email']:<40} {u['role']:<10} {'active' if u['active'] else 'disabled'}"
        for u in users
    )
    emit({"staff": users}, as_json=as_json, text=text or "no staff users")


# -- API keys -------------------------------------------------------------------------

api_key_cli = AppGroup("api-key", help="API keys for integrations.")


@api_key_cli.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True)
@json_option
@now_option
@refusals
def api_key_create(name: str, role: str, as_json: bool, now: datetime) -> None:
    """Create an API key and print its token (shown only once)."""
    from app.auth.services import create_api_key
    from app.core.audit import Actor

    with database().transaction() as session:
        key, token = create_api_key(session, name=name, role=role, actor=Actor.cli(), now=now)
        data = {"id": key.id, "prefix": key.prefix, "role": key.role, "token": token}
    emit(data, as_json=as_json, text=token)


@api_key_cli.command("revoke")
@click.argument("key_id", type=int)
@now_option
@refusals
def api_key_revoke(key_id: int, now: datetime) -> None:
    """Revoke the API key KEY_ID."""
    from app.auth.services import revoke_api_key
    from app.core.audit import Actor

    with database().transaction() as session:
        key = revoke_api_key(session, key_id=key_id, actor=Actor.cli(), now=now)
    click.echo(f"revoked API key {key.prefix}")


# -- supply side ----------------------------------------------------------------------

catalog_cli = AppGroup("catalog", help="Hosts, rate cards, number blocks and plans.")


def read_text_file(path: str) -> str:
    """A UTF-8 text file, or a one-line refusal."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a folder, not a file")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
    except OSError as exc:
        fail(f"{path}: {exc.strerror}")
    raise AssertionError("unreachable")


@catalog_cli.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@now_option
@refusals
def catalog_load(file: str, as_json: bool, now: datetime) -> None:
    """Load FILE.toml (idempotent; a file with any problem loads nothing)."""
    from app.catalog import CatalogInvalid, load_catalog
    from app.core.audit import Actor

    text = read_text_file(file)
    try:
        with database().transaction() as session:
            report = load_catalog(session, text=text, filename=file, actor=Actor.cli(), now=now)
    except CatalogInvalid as exc:
        for problem in exc.problems:
            click.echo(
                f"{problem.file}: [{problem.table}] {problem.key}: {problem.reason}", err=True
            )
        fail(exc.message)
    data = report.to_dict()
    lines = [
        f"{table}: " + ", ".join(f"{n} {what}" for what, n in counts.items())
        for table, counts in data.items()
        if isinstance(counts, dict)
    ]
    emit(data, as_json=as_json, text="\n".join(lines))


sims_cli = AppGroup("sims", help="SIM and eSIM inventory.")


@sims_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", "host_code", required=True, help="Host carrier code")
@json_option
@now_option
@refusals
def sims_import(file: str, host_code: str, as_json: bool, now: datetime) -> None:
    """Import FILE.csv (iccid,imsi,kind,lpa); any bad row imports nothing."""
    from app.core.audit import Actor
    from numbering.errors import SimImportRejected
    from numbering.services import import_sims
    from wholesale.services import get_host_by_code

    text = read_text_file(file)
    try:
        with database().transaction() as session:
            host = get_host_by_code(session, host_code)
            report = import_sims(
                session,
                text=text,
                filename=file,
                host_id=host.id or 0,
                actor=Actor.cli(),
                now=now,
            )
    except SimImportRejected as exc:
        for reject in exc.rejects:
            click.echo(f"{file}:{reject.line}: {reject.reason}: {reject.raw}", err=True)
        fail(exc.message)
    data = {"file": file, "rows": report.rows, "imported": report.imported}
    emit(data, as_json=as_json, text=f"{report.imported} of {report.rows} SIMs imported")


# -- subscribers and lines -----------------------------------------------------------

subscribers_cli = AppGroup("subscribers", help="Customers: migration import.")


@subscribers_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@now_option
@refusals
def subscribers_import(file: str, as_json: bool, now: datetime) -> None:
    """Import FILE.csv of subscribers migrated from another platform; any bad row imports
    nothing. The same file again is reported as already imported."""
    from app.core.audit import Actor
    from app.core.pii import PiiCipher
    from app.subscribers.errors import SubscriberImportRejected
    from app.subscribers.importer import import_subscribers

    text = read_text_file(file)
    config = settings()
    try:
        with database().transaction() as session:
            report = import_subscribers(
                session,
                text=text,
                filename=file,
                cipher=PiiCipher(config.pii_key),
                currency=config.currency,
                cap_months=config.prepay_cap_months,
                actor=Actor.cli(),
                now=now,
            )
    except SubscriberImportRejected as exc:
        for problem in exc.rejects:
            click.echo(
                f"{file}:{problem.row}: {problem.field or 'row'}: {problem.reason}", err=True
            )
        if as_json:
            refused = {
                "file": file,
                "rows": exc.params.get("rows", 0),
                "customers": 0,
                "lines": 0,
                "balance_total": 0,
                "currency": config.currency,
                "already_imported": False,
                **exc.details(),
                "id_check_digit_mismatch": sum(1 for w in exc.warnings if w.field == "id_number"),
            }
            emit(refused, as_json=True, text="")
        fail(exc.message)
    data = report.to_dict()
    if not as_json:
        for warning in report.warnings:
            click.echo(
                f"{file}:{warning.row}: {warning.field}: warning: {warning.reason}", err=True
            )
    done = "already imported, nothing changed" if report.already_imported else "imported"
    text_out = (
        f"{done}: {report.customers} customers, {report.lines} lines,"
        f" opening balances {format_plain(report.balance_total_minor)} {report.currency}"
        f" ({report.id_check_digit_mismatch} ID numbers with a wrong check digit)"
    )
    emit(data, as_json=as_json, text=text_out)


line_cli = AppGroup("line", help="Lines: status, current period and allowances.")


@line_cli.command("show")
@click.argument("msisdn")
@click.option(
    "--at", "at_text", metavar="ISO8601", help="Show the period containing this time instead."
)
@json_option
@now_option
@refusals
def line_show(msisdn: str, at_text: str | None, as_json: bool, now: datetime) -> None:
    """Show a line: status, plan, the period in force (times in TIMEZONE), what remains of
    its allowances, and the customer's balance (minor units)."""
    from zoneinfo import ZoneInfo

    from app.subscribers.summary import line_summary

    config = settings()
    at = parse_instant(at_text, field="at") if at_text else None
    with database().transaction(write=False) as session:
        line = line_summary(session, msisdn=msisdn, now=now, at=at)
    zone = ZoneInfo(config.timezone)
    start = line.period_start.astimezone(zone).isoformat() if line.period_start else None
    end = line.period_end.astimezone(zone).isoformat() if line.period_end else None
    remaining = (
        None
        if line.data_kb is None
        else {"data_kb": line.data_kb, "voice_s": line.voice_s, "sms": line.sms}
    )
    data = {
        "msisdn": line.msisdn,
        "status": line.status,
        "plan": line.plan,
        "period_start": start,
        "period_end": end,
        "remaining": remaining,
        "balance": line.balance_minor,
        "currency": config.currency,
    }
    period = f"period {start} to {end}" if start else "no period"
    left = (
        f"remaining: data {line.data_kb} KB, voice {line.voice_s} s, SMS {line.sms}"
        if remaining
        else "remaining: -"
    )
    text_out = "\n".join(
        [
            f"{line.msisdn}: {line.status}, plan {line.plan}",
            period,
            left,
            f"balance {format_plain(line.balance_minor)} {config.currency}",
        ]
    )
    emit(data, as_json=as_json, text=text_out)


# -- ledger ---------------------------------------------------------------------------

ledger_cli = AppGroup("ledger", help="The prepaid ledger: balances and invariant checks.")


def _at_option(func: Any) -> Any:
    return click.option(
        "--at",
        "at_text",
        metavar="ISO8601",
        default=None,
        help="As of this time (from the postings) instead of now.",
    )(func)


@ledger_cli.command("balance")
@click.argument("target", metavar="MSISDN|CUSTOMER_REF")
@_at_option
@json_option
@refusals
def ledger_balance(target: str, at_text: str | None, as_json: bool) -> None:
    """Print a customer's prepaid balance and cap (minor units), now or --at a past time."""
    from app.ledger.balances import customer_balance
    from app.ledger.cap import prepaid_cap_minor
    from app.subscribers.services import get_customer_by_msisdn_or_ref

    config = settings()
    with database().transaction(write=False) as session:
        customer = get_customer_by_msisdn_or_ref(session, target)
        assert customer.id is not None
        at = parse_instant(at_text, field="at") if at_text else None
        balance = customer_balance(session, customer_id=customer.id, at=at)
        cap = prepaid_cap_minor(
            session,
            customer_id=customer.id,
            settings_months=config.prepay_cap_months,
            reference_monthly_minor=config.prepay_reference_monthly_minor,
        )
    data = {
        "customer_ref": customer.ref,
        "balance": balance,
        "cap": cap,
        "currency": config.currency,
    }
    text = (
        f"{customer.ref}: balance {format_plain(balance)} {config.currency},"
        f" cap {format_plain(cap)}"
    )
    emit(data, as_json=as_json, text=text)


@ledger_cli.command("liability")
@_at_option
@json_option
@refusals
def ledger_liability(at_text: str | None, as_json: bool) -> None:
    """Print what all customers' prepaid balances add up to, now or --at a past time."""
    from app.ledger.balances import book_liability

    at = parse_instant(at_text, field="at") if at_text else None
    with database().transaction(write=False) as session:
        liability = book_liability(session, at=at)
    currency = settings().currency
    data = {"liability": liability, "at": at.isoformat() if at else None, "currency": currency}
    emit(data, as_json=as_json, text=f"prepaid liability {format_plain(liability)} {currency}")


@ledger_cli.command("check")
@json_option
@refusals
def ledger_check(as_json: bool) -> None:
    """Verify the ledger's invariants; exit 1 when any is broken."""
    from app.ledger.checks import check_ledger
    from app.payments.services import check_payments

    config = settings()
    with database().transaction(write=False) as session:
        result = check_ledger(
            session,
            cap_months=config.prepay_cap_months,
            reference_monthly_minor=config.prepay_reference_monthly_minor,
        )
        problems = [*result.problems, *check_payments(session)]
    data = {
        "ok": not problems,
        "entries": result.entries,
        "postings": result.postings,
        "problems": problems,
    }
    verdict = "ledger ok" if not problems else f"{len(problems)} problem(s)"
    text = "\n".join(
        [*problems, f"{verdict}: {result.entries} entries, {result.postings} postings"]
    )
    emit(data, as_json=as_json, text=text)
    if problems:
        sys.exit(1)


@click.command("topup")
@with_appcontext
@click.argument("msisdn")
@click.argument("amount")
@click.option("--ref", "ref", required=True, help="The payment's receipt or bank reference.")
@click.option(
    "--method",
    type=click.Choice(["cash", "bank_transfer"]),
    default="cash",
    show_default=True,
    help="How the money was paid.",
)
@json_option
@now_option
@refusals
def topup(msisdn: str, amount: str, ref: str, method: str, as_json: bool, now: datetime) -> None:
    """Record an offline payment of AMOUNT (e.g. 50.00) for the customer of MSISDN.

    The same reference recorded again is the same payment (nothing changes);
    with another amount or customer it is refused.
    """
    from app.core.audit import Actor
    from app.ledger.balances import customer_balance
    from app.payments.services import MoneyPolicy, record_offline_payment
    from app.subscribers.services import get_line_by_msisdn

    try:
        amount_minor = parse_minor(amount)
    except ValueError as exc:
        fail(f"bad amount: {exc}")
    config = settings()
    with database().transaction() as session:
        line = get_line_by_msisdn(session, msisdn)
        payment = record_offline_payment(
            session,
            customer_id=line.customer_id,
            amount_minor=amount_minor,
            method=method,
            reference=ref,
            actor=Actor.cli(),
            now=now,
            policy=MoneyPolicy.from_settings(config),
            memo=f"offline top-up for {msisdn}",
        )
        balance = customer_balance(session, customer_id=line.customer_id)
        entry_id = payment.journal_entry_id
        data = {"entry_id": entry_id, "balance": balance, "currency": config.currency}
    text = f"entry {entry_id}: balance {format_plain(balance)} {config.currency}"
    emit(data, as_json=as_json, text=text)


# -- renewals -------------------------------------------------------------------------

renewals_cli = AppGroup("renewals", help="Renewals at period end (DESIGN §9).")


@renewals_cli.command("run")
@click.option(
    "--limit",
    type=click.IntRange(1, None),
    default=None,
    help="Handle at most N due lines (and N terminations) in this run.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Batches taken at once on PostgreSQL (SQLite and --limit: one).",
)
@json_option
@now_option
@refusals
def renewals_run(limit: int | None, workers: int, as_json: bool, now: datetime) -> None:
    """Renew due lines, suspend unpaid ones, resume paid ones, terminate those unpaid 90 days.

    One transaction per batch of lines; a rerun with the same --now does nothing.
    """
    from app.charging.renewals import run_renewals

    report = run_renewals(
        database(),
        now=now,
        limit=limit,
        workers=workers,
        quarantine_days=settings().number_quarantine_days,
    ).as_dict()
    text = (
        "{lines_seen} due: {renewed} renewed ({periods_opened} periods), {suspended} suspended,"
        " {unpaid} unpaid, {resumed} resumed, {terminated} terminated"
    ).format(**report)
    emit(report, as_json=as_json, text=text)


# -- refunds --------------------------------------------------------------------------

refunds_cli = AppGroup("refunds", help="Refunds: send queued card refunds to Stripe.")


@refunds_cli.command("send")
@with_appcontext
@json_option
@now_option
@refusals
def refunds_send(as_json: bool, now: datetime) -> None:
    """Send queued card refunds and check those still processing (as the scheduler does)."""
    from app.payments.services import send_pending_refunds, sync_processing_refunds
    from app.payments.stripe_gateway import StripeGateway

    gateway = StripeGateway.from_settings(settings())
    if gateway is None:
        fail("Stripe is not configured (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)")
    sent = send_pending_refunds(database(), gateway, now=now)
    checked = sync_processing_refunds(database(), gateway, now=now)
    text = f"sent {sent}, checked {checked}"
    emit({"sent": sent, "checked": checked}, as_json=as_json, text=text)


# -- provisioning ---------------------------------------------------------------------

provisioning_cli = AppGroup("provisioning", help="The provisioning outbox to the hosts.")


@provisioning_cli.command("deliver")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@now_option
@refusals
def provisioning_deliver(limit: int, as_json: bool, now: datetime) -> None:
    """Deliver due provisioning events (as the scheduler does every minute)."""
    from app.provisioning.services import deliver_pending

    report = deliver_pending(database(), now=now, settings=settings(), limit=limit).as_dict()
    text = "delivered {delivered}, failed {failed}, dead {dead}".format(**report)
    emit(report, as_json=as_json, text=text)


# -- notifications --------------------------------------------------------------------

notifications_cli = AppGroup("notifications", help="The notification outbox (e-mail, SMS).")


@notifications_cli.command("send")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@now_option
@refusals
def notifications_send(limit: int, as_json: bool, now: datetime) -> None:
    """Send due notifications (as the scheduler does every minute)."""
    from app.care.mailer import send_notifications

    report = send_notifications(database(), now=now, settings=settings(), limit=limit).as_dict()
    text = "sent {sent}, failed {failed}, dead {dead}".format(**report)
    emit(report, as_json=as_json, text=text)


# -- vouchers -------------------------------------------------------------------------

vouchers_cli = AppGroup("vouchers", help="Prepaid vouchers: print batches.")


@vouchers_cli.command("create")
@click.option("--name", required=True)
@click.option("--value", "value", required=True, metavar="AMOUNT", help="Face value, e.g. 50.00")
@click.option("--count", type=int, required=True, help="How many vouchers (1 to 10000).")
@click.option("--expires", "expires_text", required=True, metavar="ISO8601")
@json_option
@now_option
@refusals
def vouchers_create(
    name: str, value: str, count: int, expires_text: str, as_json: bool, now: datetime
) -> None:
    """Create a batch and print serial,PIN lines (CSV); the PINs are shown only once."""
    from app.core.audit import Actor
    from app.payments.vouchers import create_voucher_batch

    try:
        value_minor = parse_minor(value)
    except ValueError as exc:
        fail(f"bad amount: {exc}")
    expires_at = parse_instant(expires_text, field="expires")
    with database().transaction() as session:
        batch, pairs = create_voucher_batch(
            session,
            name=name,
            value_minor=value_minor,
            count=count,
            expires_at=expires_at,
            currency=settings().currency,
            actor=Actor.cli(),
            now=now,
        )
        data = {
            "batch_id": batch.id,
            "vouchers": [{"serial": serial, "pin": pin} for serial, pin in pairs],
        }
    text = "\n".join(["serial,pin", *(f"{serial},{pin}" for serial, pin in pairs)])
    emit(data, as_json=as_json, text=text)


# -- demo -----------------------------------------------------------------------------

demo_cli = AppGroup("demo", help="Demo data for a local installation.")


@demo_cli.command("load")
@json_option
@now_option
@refusals
def demo_load(as_json: bool, now: datetime) -> None:
    """Load demo staff (one per role) and subscribers. Idempotent."""
    from app.core.pii import PiiCipher
    from app.demo import load_demo
    from app.payments.services import MoneyPolicy

    config = settings()
    with database().transaction() as session:
        report = load_demo(
            session,
            now=now,
            policy=MoneyPolicy.from_settings(config),
            cipher=PiiCipher(config.pii_key),
        )
    text = "\n".join(f"{k}: {v}" for k, v in report.items())
    emit(report, as_json=as_json, text=text)


# -- scheduler ------------------------------------------------------------------------

scheduler_cli = AppGroup("scheduler", help="Background jobs (run as its own process).")


@scheduler_cli.command("run")
@click.option("--once", is_flag=True, help="Run every job once now, then exit.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Stand by until the leader lock is free (otherwise exit 1 at once).",
)
@refusals
def scheduler_run(once: bool, wait: bool) -> None:
    """Run the job table of app/jobs.py while holding the leader lock."""
    from app.jobs import run_scheduler

    run_scheduler(database(), settings(), once=once, wait_for_lock=wait)


COMMANDS: tuple[click.Command, ...] = (
    db_cli,
    staff_cli,
    api_key_cli,
    catalog_cli,
    sims_cli,
    subscribers_cli,
    line_cli,
    ledger_cli,
    topup,
    renewals_cli,
    refunds_cli,
    provisioning_cli,
    notifications_cli,
    vouchers_cli,
    demo_cli,
    scheduler_cli,
)


def register(app: Any) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app() -> Any:
    from app import create_app

    try:
        return create_app()
    except DomainError as exc:
        fail(exc.message)


def main() -> None:
    cli = FlaskGroup(
        name="mvno",
        create_app=_create_app,
        add_default_commands=True,
        set_debug_flag=False,
        help="MVNO platform command line.",
    )
    cli.main(prog_name="mvno")
