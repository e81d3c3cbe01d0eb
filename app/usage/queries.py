"""What the console, the API and the charts read of usage: imports, records, daily series."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from app.usage.models import UsageFile, UsageRecord
from app.usage.settlement import usage_by_day
from wholesale.models import HostCarrier
from wholesale.services import list_rate_cards
from wholesale.settlement import (
    USAGE_SERVICES,
    UsageQuantity,
    card_in_force,
    wholesale_cost_minor,
)


def list_imports(
    session: Session, *, host_id: int | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[UsageFile], int]:
    """A page of imports, newest first, and how many there are."""
    query = select(UsageFile)
    if host_id is not None:
        query = query.where(UsageFile.host_id == host_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(UsageFile.id).desc()).offset(offset).limit(limit))
    return list(rows), int(total)


def get_import(session: Session, file_id: int) -> UsageFile | None:
    """One import by id."""
    return session.get(UsageFile, file_id)


def line_records(
    session: Session, *, line_id: int, offset: int = 0, limit: int = 50
) -> tuple[list[UsageRecord], int]:
    """A page of a line's charged records, latest first, and how many there are."""
    total = session.exec(
        select(func.count()).select_from(UsageRecord).where(UsageRecord.line_id == line_id)
    ).one()
    rows = session.exec(
        select(UsageRecord)
        .where(UsageRecord.line_id == line_id)
        .order_by(col(UsageRecord.start_time).desc(), col(UsageRecord.record_id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total)


def line_totals(session: Session, *, line_id: int) -> dict[str, dict[str, int]]:
    """Per service: records, quantity, billable, within, over and overage charged on the line."""
    columns: list[Any] = [
        UsageRecord.service,
        func.count(),
        *(
            func.sum(getattr(UsageRecord, name))
            for name in ("quantity", "within", "over", "charge_minor")
        ),
    ]
    rows = session.execute(
        sa_select(*columns)
        .where(col(UsageRecord.line_id) == line_id)
        .group_by(col(UsageRecord.service))
    ).all()
    names = ("records", "quantity", "within", "over", "charge_minor")
    totals = {row[0]: dict(zip(names, (int(v or 0) for v in row[1:]), strict=True)) for row in rows}
    for total in totals.values():
        total["billable"] = total["within"] + total["over"]
    return totals


@dataclass(frozen=True)
class DailyPoint:
    """One day of one usage service: quantity and its wholesale cost at that day's rate card."""

    day: date
    service: str
    quantity: int
    cost_minor: int


def daily_usage(
    session: Session,
    *,
    host: HostCarrier,
    start: datetime,
    end: datetime,
    usage: list[UsageQuantity] | None = None,
) -> list[DailyPoint]:
    """Usage and wholesale cost per local day and service between two instants.

    Each day's cost is rounded half up on its own, for charts; the
    settlement file rounds once per month and service. `usage` is
    `usage_by_day` between the same instants when the caller has read it.
    """
    assert host.id is not None
    cards = list_rate_cards(session, host_id=host.id)
    if usage is None:
        usage = usage_by_day(session, host=host, start=start, end=end, summed=True)
    points = []
    for item in usage:
        card = card_in_force(cards, item.day)
        cost = (
            wholesale_cost_minor(item.service, item.quantity, card.price(item.service))
            if card
            else 0
        )
        points.append(DailyPoint(item.day, item.service, item.quantity, cost))
    return points


def chart_series(points: list[DailyPoint]) -> dict[str, Any]:
    """Chart.js-ready series: the days, and per service the quantities and costs."""
    days = sorted({p.day for p in points})
    index = {day: i for i, day in enumerate(days)}
    quantity: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    cost: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for p in points:
        quantity[p.service][index[p.day]] += p.quantity
        cost[p.service][index[p.day]] += p.cost_minor
    return {
        "days": [day.isoformat() for day in days],
        "quantity": {s: quantity[s] if s in quantity else [0] * len(days) for s in USAGE_SERVICES},
        "cost_minor": {s: cost[s] if s in cost else [0] * len(days) for s in USAGE_SERVICES},
    }
