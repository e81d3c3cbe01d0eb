"""`span_index` puts an instant into its span the same way on both databases: start
included, end excluded, `before` ahead of the first span, NULL after the last or for NULL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import BigInteger, literal, null, select
from sqlmodel import Session

from app.analytics.calendar import bucket_bounds, last_days, last_months, span_index
from app.core.db import UTCDateTime

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # Europe/Berlin goes to summer time on the 29th
MICRO = timedelta(microseconds=1)


def _expected(at: datetime, spans: list[Any], before: int | None) -> int | None:
    if at < spans[0].start:
        return before
    for index, span in enumerate(spans):
        if span.start <= at < span.end:
            return index
    return None


def _edges(spans: list[Any]) -> list[datetime]:
    bounds = [spans[0].start, *(span.end for span in spans)]
    return [at + step for at in bounds for step in (-MICRO, timedelta(0), MICRO)]


@pytest.mark.parametrize("before", [None, -1])
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/St_Johns"])
def test_instants_on_every_bound_fall_into_the_right_day_and_month(
    session: Session, zone: str, before: int | None
) -> None:
    dialect = session.get_bind().dialect.name
    for spans in (last_days(now=NOW, timezone=zone, days=30), last_months(now=NOW, timezone=zone)):
        for at in _edges(spans):
            found = session.execute(
                select(
                    span_index(literal(at, UTCDateTime()), spans, before=before, dialect=dialect)
                )
            ).scalar()
            assert found == _expected(at, spans, before), (zone, at)


def test_quarter_hour_buckets_fall_into_their_month(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    spans = last_months(now=NOW, timezone="Asia/Shanghai", months=3)
    buckets = bucket_bounds(spans)
    bounds = [buckets[0].start, *(span.end for span in buckets)]
    for bucket in sorted({b + step for b in bounds for step in (-1, 0, 1)}):
        found = session.execute(
            select(span_index(literal(bucket, BigInteger()), buckets, dialect=dialect))
        ).scalar()
        expected = next(
            (i for i, span in enumerate(buckets) if span.start <= bucket < span.end), None
        )
        assert found == expected, bucket


def test_a_null_instant_has_no_span(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    spans = last_days(now=NOW, timezone="Asia/Shanghai", days=7)
    column = null().cast(UTCDateTime())
    found = session.execute(select(span_index(column, spans, before=-1, dialect=dialect)))
    assert found.scalar() is None
