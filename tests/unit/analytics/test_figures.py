"""The dashboard's figures against the same figures recomputed here, row by row, in
plain Python, from a business built through the real services (tests/unit/analytics/
business.py), with rows on the edges of Asia/Shanghai days and months."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.analytics.arpu import monthly_arpu
from app.analytics.calendar import last_days, last_months
from app.analytics.liability import prepaid_liability
from app.analytics.lines import line_activity
from app.analytics.revenue import monthly_revenue, revenue_per_plan
from app.charging.models import LinePeriod, PeriodAddOn
from app.charging.periods import open_period
from app.charging.unused_value import owed_at
from app.core.audit import AuditEntry
from app.core.errors import InvalidInput
from app.core.money import round_half_up
from app.ledger.balances import book_liability
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.subscribers.models import FINAL_LINE_STATUSES, Line, PurchaseOrder
from plans.models import Plan
from tests.unit.analytics.business import (
    AT,
    CURRENCY,
    TIMEZONE,
    ZONE,
    Business,
    build,
    local,
    staff_line,
)
from wholesale.models import HostCarrier, SettlementRun

MONTHS = ["2026-09", "2026-10", "2026-11"]


@pytest.fixture
def business(session: Session, tmp_path: Path) -> Business:
    return build(session, tmp_path)


def _month(at: datetime) -> str:
    return at.astimezone(ZONE).strftime("%Y-%m")


def _day(at: datetime) -> str:
    return at.astimezone(ZONE).date().isoformat()


# -- the independent computation ----------------------------------------------------------


def _revenue_rows(session: Session) -> list[tuple[str, str, int, int]]:
    """(local month, kind: plans | addons | overage, entry id, amount) of every revenue posting."""
    addon_entries = {a.entry_id for a in session.exec(select(PeriodAddOn))}
    accounts = {a.id: a for a in session.exec(select(LedgerAccount))}
    entries = {e.id: e for e in session.exec(select(JournalEntry))}
    rows = []
    for posting in session.exec(select(Posting)):
        account = accounts[posting.account_id]
        if account.currency != CURRENCY or account.kind not in ("revenue_plans", "revenue_usage"):
            continue
        entry = entries[posting.entry_id]
        if account.kind == "revenue_usage":
            kind = "overage"
        else:
            kind = "addons" if entry.id in addon_entries else "plans"
        rows.append((_month(entry.at), kind, posting.entry_id, posting.amount_minor))
    return rows


def _expected_revenue(session: Session) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {m: defaultdict(int) for m in MONTHS}
    for month, kind, _entry, amount in _revenue_rows(session):
        if month in totals:
            totals[month][kind] += amount
    return totals


def _expected_costs(session: Session) -> dict[str, int]:
    latest: dict[tuple[int, str], SettlementRun] = {}
    hosts = {h.id: h for h in session.exec(select(HostCarrier))}
    for run in session.exec(select(SettlementRun)):
        if run.kind != "export" or hosts[run.host_id].currency != CURRENCY:
            continue
        key = (run.host_id, run.month)
        if key not in latest or run.id > latest[key].id:  # type: ignore[operator]
            latest[key] = run
    costs: dict[str, int] = defaultdict(int)
    for (_host, month), run in latest.items():
        costs[month] += run.total_minor
    return costs


def _first_starts(session: Session) -> dict[int, datetime]:
    first: dict[int, datetime] = {}
    for period in session.exec(select(LinePeriod)):
        if period.line_id not in first or period.start < first[period.line_id]:
            first[period.line_id] = period.start
    return first


# -- lines --------------------------------------------------------------------------------


def _check_lines_against_the_rows(session: Session, now: datetime, days: int) -> None:
    figure = line_activity(session, now=now, timezone=TIMEZONE, days=days)
    spans = last_days(now=now, timezone=TIMEZONE, days=days)
    assert [d.day for d in figure.days] == [s.label for s in spans]
    audits = list(session.exec(select(AuditEntry)))
    first = _first_starts(session)
    lines = list(session.exec(select(Line)))
    for day, span in zip(figure.days, spans, strict=True):
        activations = sum(
            1 for a in audits if a.action == "line.activate" and _day(a.at) == day.day
        )
        terminations = sum(
            1
            for a in audits
            if a.action in ("line.terminate", "line.port_out", "line.transfer")
            and _day(a.at) == day.day
        )
        in_service = sum(
            1
            for line in lines
            if line.id in first
            and first[line.id] < span.end
            and not (line.status in FINAL_LINE_STATUSES and line.status_changed_at < span.end)
        )
        assert (day.activations, day.terminations, day.in_service) == (
            activations,
            terminations,
            in_service,
        ), day.day


@pytest.mark.parametrize(
    ("now", "days"),
    [
        (AT, 30),
        (local(2026, 9, 10, 12), 15),  # lines starting inside the window
        (local(2026, 11, 20, 12), 3),  # a line ended before the window began
        (local(2026, 12, 31, 23, 59), 90),
    ],
)
def test_lines_per_day_match_the_audit_records_and_the_lines(
    session: Session, business: Business, now: datetime, days: int
) -> None:
    _check_lines_against_the_rows(session, now, days)


def test_lines_per_day_on_the_edges_of_local_days(session: Session, business: Business) -> None:
    figure = line_activity(session, now=AT, timezone=TIMEZONE, days=30)
    assert figure.days[-1].day == "2026-11-15" and figure.days[0].day == "2026-10-17"
    by_day = {d.day: d for d in figure.days}
    # A second before and at local midnight: two days, though the same UTC date.
    assert by_day["2026-11-10"].activations == 1 and by_day["2026-11-11"].activations == 1
    assert by_day["2026-11-13"].terminations == 1
    assert by_day["2026-11-12"].in_service - by_day["2026-11-13"].in_service == 1
    statuses = [line.status for line in session.exec(select(Line))]
    assert figure.active_now == statuses.count("active") == 3
    assert (figure.suspended_now, figure.pending_now) == (1, 1)


def test_lines_in_service_before_the_window_carry_into_it(
    session: Session, business: Business
) -> None:
    # Read on 12 Oct with a 2-day window: the store and arrears lines started in
    # September, the staff line on 11 Oct local (10 Oct in UTC).
    figure = line_activity(session, now=local(2026, 10, 12, 12), timezone=TIMEZONE, days=2)
    assert [(d.day, d.in_service, d.activations) for d in figure.days] == [
        ("2026-10-11", 3, 1),
        ("2026-10-12", 3, 0),
    ]


# -- revenue, cost and margin -------------------------------------------------------------


def test_revenue_by_kind_cost_and_margin_per_month(session: Session, business: Business) -> None:
    figure = monthly_revenue(
        session,
        now=AT,
        timezone=TIMEZONE,
        currency=CURRENCY,
        months=3,
        current_cost_minor=business.current_cost_minor,
    )
    expected = _expected_revenue(session)
    costs = _expected_costs(session)
    assert [m.month for m in figure] == MONTHS
    for month in figure:
        kinds = expected[month.month]
        assert (month.plans_minor, month.addons_minor, month.overage_minor) == (
            kinds["plans"],
            kinds["addons"],
            kinds["overage"],
        ), month.month
        assert month.revenue_minor == sum(kinds.values())
    september, october, november = figure
    assert (september.wholesale_cost_minor, september.cost_source) == (costs["2026-09"], "settled")
    assert (october.wholesale_cost_minor, october.cost_source) == (costs["2026-10"], "settled")
    assert (november.wholesale_cost_minor, november.cost_source) == (
        business.current_cost_minor,
        "computed",
    )
    for month in figure:
        assert month.margin_minor == month.revenue_minor - (month.wholesale_cost_minor or 0)
    small, lite = business.small.price_minor, business.world.plan.price_minor
    # The order paid 1 Sep 00:30 local (31 Aug in UTC) is September's; the renewal at
    # 1 Nov 00:00 local is November's; the add-on of 31 Oct 23:59:59 is October's.
    assert september.plans_minor == small
    assert october.plans_minor == small
    assert november.plans_minor == small + lite
    assert (september.addons_minor, october.addons_minor, november.addons_minor) == (0, 3000, 1500)
    # Overage: 3 voice minutes at 0.15 for the store line and 3 SMS at 0.10 for the
    # line in arrears in September; 3 SMS for the store line in October.
    assert (september.overage_minor, october.overage_minor, november.overage_minor) == (75, 30, 0)


def test_the_latest_export_of_a_month_is_its_cost_and_an_unsettled_month_has_none(
    session: Session, business: Business
) -> None:
    runs = [r for r in session.exec(select(SettlementRun)) if r.month == "2026-09"]
    assert len(runs) == 2 and runs[0].total_minor != runs[1].total_minor
    figure = monthly_revenue(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=4)
    by_month = {m.month: m for m in figure}
    assert by_month["2026-09"].wholesale_cost_minor == max(runs, key=lambda r: r.id).total_minor  # type: ignore[arg-type,return-value]
    # August has no run; November is not settled and no cost was handed in.
    for month in ("2026-08", "2026-11"):
        assert (by_month[month].wholesale_cost_minor, by_month[month].cost_source) == (None, None)
        assert by_month[month].margin_minor is None


def test_revenue_per_plan_names_the_order_and_the_renewed_periods_plans(
    session: Session, business: Business
) -> None:
    figure = revenue_per_plan(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=3)

    order_plan = {
        o.entry_id: o.plan_id for o in session.exec(select(PurchaseOrder)) if o.entry_id is not None
    }
    period_plan = {
        p.entry_id: p.plan_id for p in session.exec(select(LinePeriod)) if p.entry_id is not None
    }
    codes = {p.id: p.code for p in session.exec(select(Plan))}
    expected: dict[tuple[str, str | None], int] = defaultdict(int)
    for month, kind, entry, amount in _revenue_rows(session):
        if kind == "plans" and month in MONTHS:
            plan = order_plan.get(entry) or period_plan.get(entry)
            expected[(month, codes.get(plan))] += amount
    assert {(r.month, r.plan): r.revenue_minor for r in figure} == dict(expected)
    assert [(r.month, r.plan) for r in figure] == sorted(expected)
    assert ("2026-11", business.world.plan.code) in expected


# -- ARPU ---------------------------------------------------------------------------------


def _check_arpu_against_the_periods(session: Session, months: int) -> list[int]:
    figure = monthly_arpu(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=months)
    expected = _expected_revenue(session)
    periods = list(session.exec(select(LinePeriod)))
    spans = last_months(now=AT, timezone=TIMEZONE, months=months)
    for month, span in zip(figure, spans, strict=True):
        active = {p.line_id for p in periods if p.start < span.end and p.end > span.start}
        revenue = sum(expected.get(month.month, {}).values())
        assert (month.revenue_minor, month.active_lines) == (revenue, len(active)), month.month
        assert month.arpu_minor == (round_half_up(revenue, len(active)) if active else None)
    return [m.active_lines for m in figure]


def test_arpu_is_revenue_over_the_lines_active_in_the_month(
    session: Session, business: Business
) -> None:
    # September: the store line and the line in arrears; November: store, staff, two new.
    assert _check_arpu_against_the_periods(session, 3) == [2, 3, 4]


def test_a_line_is_not_active_in_the_months_between_its_periods(
    session: Session, business: Business
) -> None:
    world = business.world
    line = staff_line(
        session, world.customer, world.plan, offset=180, activate_at=local(2026, 8, 1)
    )
    # Its first period ends on 31 August; it opens its next on 3 November.
    open_period(session, line=line, plan=world.plan, start=local(2026, 11, 3), now=AT)
    assert line.period_gap_at == local(2026, 11, 3)
    assert _check_arpu_against_the_periods(session, 4) == [1, 2, 3, 5]


def test_a_month_without_lines_has_no_arpu(session: Session, business: Business) -> None:
    figure = monthly_arpu(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=4)
    assert (figure[0].month, figure[0].active_lines, figure[0].arpu_minor) == ("2026-08", 0, None)


# -- liability ----------------------------------------------------------------------------


def test_owed_if_we_exited_now_is_owed_at_and_the_difference_is_explained(
    session: Session, business: Business
) -> None:
    figure = prepaid_liability(session, at=AT, currency=CURRENCY)
    owed = owed_at(session, at=AT)

    assert figure.owed_minor == owed.total(CURRENCY)
    assert figure.unused_periods_minor == owed.unused_periods[CURRENCY]
    assert figure.positive_balances_minor == owed.positive_balances[CURRENCY]
    assert figure.book_minor == book_liability(session)
    balances = [
        a.balance_minor
        for a in session.exec(select(LedgerAccount))
        if a.kind == "customer_prepaid" and a.currency == CURRENCY
    ]
    assert figure.book_minor == sum(balances)
    assert figure.arrears_minor == -sum(b for b in balances if b < 0) == 30
    assert (figure.customers_in_credit, figure.customers_in_arrears) == (2, 1)
    assert figure.difference_minor == figure.unused_periods_minor + figure.arrears_minor
    assert figure.unused_periods_minor > 0


# -- bounds -------------------------------------------------------------------------------


def test_the_months_and_days_follow_the_time_zone() -> None:
    # 31 Oct 16:00 UTC is already 1 November in Shanghai.
    at = local(2026, 11, 1)
    assert [s.label for s in last_months(now=at, timezone=TIMEZONE, months=2)] == [
        "2026-10",
        "2026-11",
    ]
    assert [s.label for s in last_months(now=at, timezone="UTC", months=1)] == ["2026-10"]
    january = last_months(now=local(2026, 1, 10), timezone=TIMEZONE, months=3)
    assert [s.label for s in january] == ["2025-11", "2025-12", "2026-01"]
    (today,) = last_days(now=at, timezone=TIMEZONE, days=1)
    assert (today.label, today.start, today.end - today.start) == (
        date(2026, 11, 1).isoformat(),
        at,
        timedelta(days=1),
    )


@pytest.mark.parametrize("bad", [0, -1, 367, True, "30", 1.5])
def test_a_window_out_of_bounds_is_refused(session: Session, bad: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        line_activity(session, now=AT, timezone=TIMEZONE, days=bad)  # type: ignore[arg-type]
    assert refused.value.field == "days"
    with pytest.raises(InvalidInput):
        monthly_revenue(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=bad)  # type: ignore[arg-type]


def test_an_empty_business_has_zero_figures(session: Session) -> None:
    lines = line_activity(session, now=AT, timezone=TIMEZONE, days=3)
    assert [(d.in_service, d.activations, d.terminations) for d in lines.days] == [(0, 0, 0)] * 3
    revenue = monthly_revenue(session, now=AT, timezone=TIMEZONE, currency=CURRENCY, months=2)
    assert [(m.revenue_minor, m.wholesale_cost_minor) for m in revenue] == [(0, None), (0, None)]
    assert revenue_per_plan(session, now=AT, timezone=TIMEZONE, currency=CURRENCY) == []
    liability = prepaid_liability(session, at=AT, currency=CURRENCY)
    assert (liability.book_minor, liability.owed_minor, liability.difference_minor) == (0, 0, 0)
