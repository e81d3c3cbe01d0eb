"""Demo data for `make run`: the sample catalog and SIMs, staff for every role,
and a few subscribers.

Idempotent: accounts are keyed by e-mail and left alone when they exist
(their passwords are not reset). The sample files beside this module are the
project's own copies of the documented formats (catalog.toml, sims.csv,
subscribers.csv, cdr.csv, host_invoice.csv); each loader that lands loads
its file here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from app.auth.permissions import ROLES
from app.auth.services import (
    create_staff,
    find_staff_by_email,
    register_subscriber,
)
from app.catalog import load_catalog
from app.core.audit import Actor
from app.payments.services import MoneyPolicy

DEMO_DIR = Path(__file__).resolve().parent
DEMO_DOMAIN = "demo.example.com"

DEMO_SUBSCRIBERS: tuple[tuple[str, str, str], ...] = (
    ("zhang.wei@example.com", "张伟", "zh_Hans"),
    ("li.na@example.com", "Li Na", "en"),
)


def demo_staff_email(role: str) -> str:
    return f"{role}@{DEMO_DOMAIN}"


def demo_staff_password(role: str) -> str:
    return f"demo-{role}-password"


DEMO_SUBSCRIBER_PASSWORD = "demo-subscriber-password"  # noqa: S105 (documented demo login)


def _load_demo_sims(session: Session, *, actor: Actor, now: datetime) -> int:
    """Import the sample SIMs unless they are already in stock."""
    from sqlmodel import select

    from numbering.models import Sim
    from numbering.services import import_sims
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


# A cash payment for the first demo subscriber, so the console's money pages
# and the store's balance and receipts have something to show.
DEMO_CASH = ("zhang.wei@example.com", 10_000, "DEMO-CASH-0001")


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


def load_demo(
    session: Session, *, now: datetime, policy: MoneyPolicy | None = None
) -> dict[str, object]:
    from sqlmodel import select

    from app.auth.models import SubscriberAccount

    actor = Actor.system("demo")
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
    catalog = load_catalog(
        session,
        text=(DEMO_DIR / "catalog.toml").read_text(encoding="utf-8"),
        filename="catalog.toml",
        actor=actor,
        now=now,
    ).to_dict()
    sims_imported = _load_demo_sims(session, actor=actor, now=now)
    _load_demo_money(
        session,
        actor=actor,
        now=now,
        policy=policy or MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000),
    )
    return {
        "catalog": catalog,
        "sims_imported": sims_imported,
        "staff_created": created_staff,
        "staff_total_demo": len(ROLES),
        "subscribers_created": created_subscribers,
        "subscribers_total_demo": len(DEMO_SUBSCRIBERS),
    }
