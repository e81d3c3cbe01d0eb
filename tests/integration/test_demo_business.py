"""`mvno demo load` builds a living business: customers on several plans bought over
three months, payments and vouchers, renewals, data packs, a few suspended and
terminated lines, three months of usage imported through the real importer with
some rejects, tickets in every state, and one line whose first day would trip
the fraud rule — deterministic from its seed, and built once.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app import create_app
from app.analytics.models import FraudAlert
from app.care.models import STATUSES, Ticket, TicketMessage
from app.charging.models import LinePeriod, PeriodAddOn
from app.demo import demo_staff_email, demo_staff_password
from app.payments.models import Payment, Voucher
from app.subscribers.models import Customer, Line
from app.usage.models import UsageRecord
from tests.conftest import make_settings
from tests.factories import login_staff

# The replay runs up to `--now`: one seed at one `now` gives one business.
SMALL = ["--size", "40", "--seed", "7", "--now", "2026-12-07T12:00:00+08:00"]


def load(app: Any, *args: str) -> dict[str, Any]:
    """Run `mvno demo load --json` with `args`; its answer."""
    result = app.test_cli_runner().invoke(args=["demo", "load", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def count(session: Session, model: Any, *where: Any) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def test_the_small_demo_business_lives_and_loads_once(app: Any, db: Any, session: Session) -> None:
    small = load(app, *SMALL), load(app, *SMALL)
    _has_customers_lines_money_and_usage(small[0]["business"], session)
    _has_tickets_in_every_state(small[0]["business"], session)
    _has_one_line_with_20_gb_in_its_first_day(session)
    _second_load_changed_nothing(*(answer["business"] for answer in small))


def _has_customers_lines_money_and_usage(business: dict[str, Any], session: Session) -> None:
    assert business["customers"] >= 40
    lines = business["lines"]
    assert lines["active"] > 30 and lines["suspended"] >= 2 and lines["terminated"] >= 1
    assert count(session, Line, col(Line.status) == "pending") == 0
    # Lines were bought in the store and renewed over three months.
    assert business["store_sales"] >= 5
    assert count(session, LinePeriod) > 2 * count(session, Line)
    assert count(session, Payment) >= 10
    assert count(session, Voucher, col(Voucher.status) == "redeemed") >= 1
    assert count(session, PeriodAddOn) >= 1
    # Usage of the three months, by the real importer: every service, some rejects.
    assert business["usage_files"] >= 13 and business["usage_records"] > 5000
    assert business["usage_rejects"] > 0 and business["usage_duplicates"] > 0
    services = set(session.exec(select(UsageRecord.service).distinct()))
    assert services == {"data", "voice", "sms"}
    first = session.exec(select(func.min(UsageRecord.start_time))).one()
    last = session.exec(select(func.max(UsageRecord.start_time))).one()
    assert last - first > timedelta(days=80)


def _has_tickets_in_every_state(business: dict[str, Any], session: Session) -> None:
    assert set(business["tickets"]) == set(STATUSES)
    escalated = session.exec(select(Ticket).where(Ticket.status == "escalated")).all()
    assert escalated and all(t.regulator_ref and t.regulator_escalated_on for t in escalated)
    breached = col(Ticket.first_response_breached_at).is_not(None) | col(
        Ticket.resolution_breached_at
    ).is_not(None)
    assert count(session, Ticket, breached) >= 1
    assert count(session, TicketMessage) > 2 * count(session, Ticket)
    assert count(session, Ticket, col(Ticket.satisfaction).is_not(None)) >= 1


def _has_one_line_with_20_gb_in_its_first_day(session: Session) -> None:
    heavy = []
    for line in session.exec(select(Line).where(Line.status == "active")):
        start = session.exec(
            select(func.min(LinePeriod.start)).where(LinePeriod.line_id == line.id)
        ).one()
        used = session.exec(
            select(func.coalesce(func.sum(UsageRecord.quantity), 0)).where(
                UsageRecord.line_id == line.id,
                UsageRecord.service == "data",
                col(UsageRecord.start_time) < start + timedelta(hours=24),
            )
        ).one()
        if used >= 20 * 1024**3:
            heavy.append(line.msisdn)
    assert len(heavy) == 1
    # The fraud rules flag it: one alert of heavy use soon after activation.
    alerts = session.exec(select(FraudAlert.rule, FraudAlert.line_id)).all()
    heavy_line = session.exec(select(Line.id).where(Line.msisdn == heavy[0])).one()
    assert ("new_line_burst", heavy_line) in alerts


def _second_load_changed_nothing(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert (first["already_loaded"], second["already_loaded"]) == (False, True)
    for key in ("customers", "usage_records", "usage_rejects", "tickets"):
        assert first[key] == second[key], key
    # The sample subscribers' cash payment came after the first answer's figures.
    assert sum(first["lines"].values()) == sum(second["lines"].values())


def _fingerprint(app: Any) -> dict[str, Any]:
    """What one seed must always give: the figures, the customers and their lines."""
    business = load(app, *SMALL)["business"]
    database = app.extensions["mvno.db"]
    with database.transaction() as session:
        customers = session.exec(select(Customer.ref, Customer.name).order_by(Customer.ref))
        lines = session.exec(select(Line.msisdn, Line.status).order_by(Line.msisdn))
        usage = session.exec(select(func.sum(UsageRecord.quantity))).one()
        return {
            "business": dict(business),
            "customers": list(customers),
            "lines": list(lines),
            "usage": usage,
        }


def test_one_seed_gives_one_business(tmp_path: Path) -> None:
    prints = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        app = create_app(make_settings(f"sqlite:///{folder / 'demo.db'}", folder / "instance"))
        from app.core.migrate import upgrade

        upgrade(app.extensions["mvno.db"].engine)
        try:
            prints.append(_fingerprint(app))
        finally:
            app.extensions["mvno.db"].dispose()
    assert prints[0] == prints[1]


def test_the_default_demo_fills_the_dashboard_and_the_360_view(tmp_path: Path) -> None:
    # The default size once, on a SQLite database of its own (what `make run` loads).
    from app.core.migrate import upgrade

    app = create_app(make_settings(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path / "instance"))
    upgrade(app.extensions["mvno.db"].engine)
    try:
        _default_demo_pages(app)
    finally:
        app.extensions["mvno.db"].dispose()


def _default_demo_pages(app: Any) -> None:
    business = load(app)["business"]
    assert 280 <= business["customers"] <= 320
    assert set(business["tickets"]) == set(STATUSES)
    assert load(app)["business"]["already_loaded"] is True
    client = app.test_client()
    client.set_cookie("mvno_lang", "en")
    login_staff(client, demo_staff_email("admin"), demo_staff_password("admin"))
    dashboard = client.get("/console/")
    assert dashboard.status_code == 200
    with app.extensions["mvno.db"].transaction() as session:
        ref = session.exec(
            select(Customer.ref)
            .join(Ticket, col(Ticket.customer_id) == col(Customer.id))
            .order_by(col(Ticket.id))
        ).first()
    page = client.get(f"/console/customers/{ref}/360")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "T-" in text
