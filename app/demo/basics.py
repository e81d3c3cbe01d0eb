"""The demo's basics: the sample catalog and SIMs, staff for every role, the demo
store logins, the sample subscribers (imported with their lines and opening
balances, each linked to its demo store login), China's public holidays and
make-up working days in the SLA calendar, and one cash payment.

Idempotent: accounts are keyed by e-mail and left alone when they exist
(their passwords are not reset); the catalog load is idempotent; SIM files
and the sample subscribers are skipped once their first row is in; loading
holidays keeps every day already in the calendar.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, col

from app.auth.permissions import ROLES
from app.auth.services import create_staff, find_staff_by_email, register_subscriber
from app.care.sla_calendar import load_public_holidays
from app.catalog import load_catalog
from app.core.audit import Actor
from app.core.pii import PiiCipher
from app.payments.services import MoneyPolicy

DEMO_DIR = Path(__file__).resolve().parent
DEMO_DOMAIN = "demo.example.com"

DEMO_SUBSCRIBERS: tuple[tuple[str, str, str], ...] = (
    ("zhang.wei@example.com", "张伟", "zh_Hans"),
    ("li.na@example.com", "Li Na", "en"),
)


def demo_staff_email(role: str) -> str:
    """The demo login e-mail of the staff role `role` (README, Demo logins)."""
    return f"{role}@{DEMO_DOMAIN}"


def demo_staff_password(role: str) -> str:
    """The demo password of the staff role `role` (README, Demo logins)."""
    return f"demo-{role}-password"


DEMO_SUBSCRIBER_PASSWORD = "demo-subscriber-password"  # noqa: S105 (documented demo login)


def _load_demo_sims(session: Session, *, actor: Actor, now: datetime) -> int:
    """Import the sample SIMs unless they are already in stock."""
    from sqlmodel import select

    from numbering.models import Sim
    from numbering.sim_import import import_sims
    from wholesale.services import get_host_by_code

    text = (DEMO_DIR / "sims.csv").read_text(encoding="utf-8")
    first_iccid = text.splitlines()[1].split(",")[0]
    if session.exec(select(Sim).where(Sim.iccid == first_iccid)).first() is not None:
        return 0
    host = get_host_by_code(session, "HOSTA")
    report = import_sims(
        session, text=text, filename="sims.csv", host_id=host.id or 0, actor=actor, now=now
    )
    return report.imported


# SIMs for the store to sell: the two of sims.csv go to the sample subscribers.
DEMO_STOCK_SIMS = 10  # of each kind


def _demo_stock_csv() -> str:
    """Generated SIM stock (Luhn-valid ICCIDs of a range of their own)."""
    from stdnum import luhn

    rows = ["iccid,imsi,kind,lpa"]
    for n in range(1, 2 * DEMO_STOCK_SIMS + 1):
        body = f"898601269{n:09d}"
        kind = "physical" if n <= DEMO_STOCK_SIMS else "esim"
        lpa = f"LPA:1$smdp.example.com$DEMO-STOCK-{n:04d}" if kind == "esim" else ""
        rows.append(f"{body}{luhn.calc_check_digit(body)},46001800{n:07d},{kind},{lpa}")
    return "\n".join(rows) + "\n"


def _load_demo_stock(session: Session, *, actor: Actor, now: datetime) -> int:
    """Import the generated stock unless it is already there."""
    from sqlmodel import select

    from numbering.models import Sim
    from numbering.sim_import import import_sims
    from wholesale.services import get_host_by_code

    text = _demo_stock_csv()
    first_iccid = text.splitlines()[1].split(",")[0]
    if session.exec(select(Sim).where(Sim.iccid == first_iccid)).first() is not None:
        return 0
    host = get_host_by_code(session, "HOSTA")
    report = import_sims(
        session, text=text, filename="demo-stock.csv", host_id=host.id or 0, actor=actor, now=now
    )
    return report.imported


def _load_demo_subscribers(
    session: Session, *, actor: Actor, now: datetime, policy: MoneyPolicy, cipher: PiiCipher
) -> int:
    """Import the sample subscribers (customers C-0001, C-0002 with their lines and
    opening balances) and give each its demo store login, matched by e-mail.

    Skipped when any of its customers exists already (a repeat load, or an
    instance loaded before the import existed). Returns the lines imported.
    """
    from sqlmodel import select

    from app.auth.models import SubscriberAccount
    from app.onboarding.migration import import_subscribers
    from app.subscribers.models import Customer
    from app.subscribers.services import link_customer_to_account

    text = (DEMO_DIR / "subscribers.csv").read_text(encoding="utf-8")
    refs = [line.split(",", 1)[0] for line in text.splitlines()[1:] if line.strip()]
    if session.exec(select(Customer).where(col(Customer.ref).in_(refs))).first() is not None:
        return 0
    report = import_subscribers(
        session,
        text=text,
        filename="subscribers.csv",
        cipher=cipher,
        currency=policy.currency,
        cap_months=policy.cap_months,
        actor=actor,
        now=now,
    )
    for email, _name, _locale in DEMO_SUBSCRIBERS:
        account = session.exec(
            select(SubscriberAccount).where(SubscriberAccount.email == email)
        ).one()
        customer = session.exec(
            select(Customer).where(Customer.email == email, col(Customer.ref).in_(refs))
        ).first()
        if customer is not None and account.id is not None and customer.id is not None:
            link_customer_to_account(
                session, customer_id=customer.id, account_id=account.id, actor=actor, now=now
            )
    return report.lines


# A cash payment for a demo subscriber, so the console's money pages and the
# store's balance and receipts have something to show. The second: the first
# has its opening balance of the import (100.00).
DEMO_CASH = ("li.na@example.com", 10_000, "DEMO-CASH-0002")


def _load_demo_money(session: Session, *, actor: Actor, now: datetime, policy: MoneyPolicy) -> None:
    """Customers for the demo logins and one cash payment (idempotent by its reference)."""
    from sqlmodel import select

    from app.auth.models import SubscriberAccount
    from app.payments.services import record_offline_payment
    from app.subscribers.services import ensure_customer_for_account

    for email, _name, _locale in DEMO_SUBSCRIBERS:
        account = session.exec(
            select(SubscriberAccount).where(SubscriberAccount.email == email)
        ).one()
        assert account.id is not None
        customer = ensure_customer_for_account(session, account_id=account.id, email=email, now=now)
        assert customer.id is not None
        if email == DEMO_CASH[0]:
            record_offline_payment(
                session,
                customer_id=customer.id,
                amount_minor=DEMO_CASH[1],
                method="cash",
                reference=DEMO_CASH[2],
                actor=actor,
                now=now,
                policy=policy,
                memo="demo",
            )


def load_logins(session: Session, *, actor: Actor, now: datetime) -> tuple[int, int]:
    """Staff for every role and the demo store logins; returns (staff, logins) created."""
    from sqlmodel import select

    from app.auth.models import SubscriberAccount

    created_staff = created_subscribers = 0
    for role in ROLES:
        if find_staff_by_email(session, demo_staff_email(role)) is None:
            create_staff(
                session,
                email=demo_staff_email(role),
                role=role,
                password=demo_staff_password(role),
                name=f"Demo {role}",
                actor=actor,
                now=now,
            )
            created_staff += 1
    for email, name, locale in DEMO_SUBSCRIBERS:
        exists = session.exec(
            select(SubscriberAccount).where(SubscriberAccount.email == email)
        ).first()
        if exists is None:
            register_subscriber(
                session,
                email=email,
                password=DEMO_SUBSCRIBER_PASSWORD,
                display_name=name,
                locale=locale,
                now=now,
            )
            created_subscribers += 1
    return created_staff, created_subscribers


def load_basics(
    session: Session, *, now: datetime, policy: MoneyPolicy, cipher: PiiCipher | None
) -> dict[str, object]:
    """Logins, catalog, SIMs and the sample subscribers (see the module docstring).

    Without `cipher` (PII_KEY) the sample subscribers are not imported.
    Returns the figures `mvno demo load` has always printed.
    """
    actor = Actor.system("demo")
    created_staff, created_subscribers = load_logins(session, actor=actor, now=now)
    catalog = load_catalog(
        session,
        text=(DEMO_DIR / "catalog.toml").read_text(encoding="utf-8"),
        filename="catalog.toml",
        actor=actor,
        now=now,
    ).to_dict()
    sims_imported = _load_demo_sims(session, actor=actor, now=now)
    sims_imported += _load_demo_stock(session, actor=actor, now=now)
    lines_imported = (
        _load_demo_subscribers(session, actor=actor, now=now, policy=policy, cipher=cipher)
        if cipher is not None
        else 0
    )
    return {
        "catalog": catalog,
        "sims_imported": sims_imported,
        "lines_imported": lines_imported,
        "staff_created": created_staff,
        "staff_total_demo": len(ROLES),
        "subscribers_created": created_subscribers,
        "subscribers_total_demo": len(DEMO_SUBSCRIBERS),
    }


def load_money(session: Session, *, now: datetime, policy: MoneyPolicy) -> None:
    """Customers for the demo logins and one cash payment (idempotent by its reference)."""
    _load_demo_money(session, actor=Actor.system("demo"), now=now, policy=policy)


def load_holidays(session: Session, *, first: datetime, now: datetime, timezone: str) -> int:
    """China's public holidays and make-up working days in the SLA calendar, from the year of
    `first` to the year after `now` (local years); days already set are kept. Days added."""
    zone = ZoneInfo(timezone)
    added = 0
    for year in range(first.astimezone(zone).year, now.astimezone(zone).year + 2):
        report = load_public_holidays(session, year=year, actor=Actor.system("demo"), now=now)
        added += len(report.holidays) + len(report.workdays)
    return added
