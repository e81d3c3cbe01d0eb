"""Settlement: what we owe a host for one month (DESIGN §4, §7).

Pure arithmetic on quantities handed in; no database. Rules:

* **Month.** A calendar month ``YYYY-MM`` in the host's time zone: the UTC
  instants [start, end) of `month_bounds`. Usage is handed in as one total
  per usage service (data bytes, voice seconds, sms messages) and local day.
* **Prices.** A day is priced with the rate card in force that day, the one
  with the latest ``effective_from`` on or before it. A service gets one row
  per unit price (and compliance) that priced some of its usage, in the
  order the cards took effect: one row in a month without a price change. A
  service without usage gets one row of quantity 0, priced with the card in
  force on the month's first day (or, for a host whose first card takes
  effect within the month, that card). ``line`` and ``number`` are counts
  handed in, priced with the card in force on the month's last day.
* **Rounding.** ``amount_minor = round_half_up(Σ quantity × price_micro,
  divisor)``, once per row on the exact sum, never per day or per record.
  The divisor turns quantity × micro-units per price unit into minor units:
  1,048,576 × 10⁴ for data (priced per MB, billed per byte), 60 × 10⁴ for
  voice (priced per minute, billed per second), 10⁴ for sms, line and
  number (10⁴ micro-units make one minor unit).
* **Compliance.** A row is compliant when its card's wholesale price for the
  service is strictly below the host's best retail price (`RateCard.compliant`).
* **Refusals.** A day that carries usage, or the month's last day, without a
  card in force refuses the settlement (`NoRateCard`, naming the earliest).
* **Files.** ``settlement_<HOST>_<YYYY-MM>.csv`` and ``.json``, deterministic
  (equal settlements give byte-identical files), LF line endings, written
  atomically. Unit prices have at least 4 places for usage services and 2
  for line and number, more only when needed to be exact; amounts have 2.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import os
import re
import secrets
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Protocol

from app.core.errors import N_, InvalidInput
from app.core.money import MICRO_PLACES, MINOR_PLACES, format_plain, round_half_up
from wholesale.errors import NoRateCard
from wholesale.models import SERVICES

# The unit of each service's quantity in settlement and invoice files.
UNITS: dict[str, str] = {
    "data": "bytes",
    "voice": "seconds",
    "sms": "messages",
    "line": "lines",
    "number": "numbers",
}
USAGE_SERVICES: tuple[str, ...] = ("data", "voice", "sms")
MONTHLY_SERVICES: tuple[str, ...] = ("line", "number")
# How many units of quantity one price unit holds: a MB of bytes, a minute of seconds.
_QUANTITY_PER_PRICE_UNIT = {"data": 1_048_576, "voice": 60, "sms": 1, "line": 1, "number": 1}
_MICRO_PER_MINOR = 10 ** (MICRO_PLACES - MINOR_PLACES)
# Fewest decimal places a unit price is written with.
_PRICE_PLACES = {"data": 4, "voice": 4, "sms": 4, "line": 2, "number": 2}
_MONTH_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# Years whose month bounds exist as datetimes in every zone.
_FIRST_YEAR, _LAST_YEAR = 1900, 9998
# The host codes of wholesale.services: safe as part of a file name.
_HOST_CODE_RE = re.compile(r"[A-Z0-9_-]{2,20}")

CSV_COLUMNS: tuple[str, ...] = (
    "host",
    "period",
    "service",
    "unit",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "compliant",
)


class PricedCard(Protocol):
    """What settlement needs of a rate card (`wholesale.models.RateCard` is one)."""

    @property
    def effective_from(self) -> date: ...

    def price(self, service: str) -> int: ...

    def compliant(self, service: str) -> bool: ...


@dataclass(frozen=True)
class UsageQuantity:
    """The total quantity of a usage service on one local day (host time zone).

    `quantity` is bytes for data, seconds for voice, messages for sms.
    """

    service: str
    day: date
    quantity: int


@dataclass(frozen=True)
class SettlementRow:
    """One line of a settlement: a quantity of a service at one unit price."""

    service: str
    unit: str
    quantity: int
    unit_price_micro: int
    amount_minor: int
    compliant: bool


@dataclass(frozen=True)
class Settlement:
    """What we owe a host for `period` (YYYY-MM), row by row, in `currency`."""

    host: str
    period: str
    currency: str
    rows: tuple[SettlementRow, ...]

    @property
    def total_minor(self) -> int:
        """The sum of the rows' amounts, in minor units."""
        return sum(row.amount_minor for row in self.rows)


# -- months ------------------------------------------------------------------------------


def parse_month(text: str) -> date:
    """The first day of the month written ``YYYY-MM`` (years 1900 to 9998).

    Nothing else is accepted: no spaces, no day, no other separator.
    :raises InvalidInput: field ``month``.
    """
    match = _MONTH_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None or not _FIRST_YEAR <= int(match.group(1)) <= _LAST_YEAR:
        raise InvalidInput(
            N_("The month must be written YYYY-MM, such as 2026-10; got %(value)r."),
            field="month",
            value=text,
        )
    return date(int(match.group(1)), int(match.group(2)), 1)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _last_day(first: date) -> date:
    return date.fromordinal(_next_month(first).toordinal() - 1)


def _zone(timezone: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInput(
            N_("%(timezone)r is not a time zone such as Asia/Shanghai."),
            field="timezone",
            timezone=timezone,
        ) from None


def _start_of_day(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    # A midnight skipped by a clock change (fold=0 takes the offset before
    # it) maps to the instant the clocks jumped: the day's first instant.
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of calendar month `month` (YYYY-MM) in `timezone`.

    :raises InvalidInput: a month not written YYYY-MM (field ``month``) or an
        unknown IANA zone (field ``timezone``).
    """
    first = parse_month(month)
    zone = _zone(timezone)
    return _start_of_day(first, zone), _start_of_day(_next_month(first), zone)


# -- rate cards --------------------------------------------------------------------------


def card_in_force(cards: Iterable[PricedCard], day: date) -> PricedCard | None:
    """The card with the latest `effective_from` on or before `day`, or None.

    Of two cards with the same date (a host's cards never share one) the
    later in `cards` wins, as in `settle`.
    """
    best: PricedCard | None = None
    for card in cards:
        if card.effective_from <= day and (
            best is None or card.effective_from >= best.effective_from
        ):
            best = card
    return best


class _Cards:
    """A host's cards by date, to find the one in force on a day quickly."""

    def __init__(self, cards: Iterable[PricedCard]):
        self.cards = sorted(cards, key=lambda card: card.effective_from)
        self.dates = [card.effective_from for card in self.cards]

    def index_on(self, day: date) -> int | None:
        index = bisect.bisect_right(self.dates, day) - 1
        return index if index >= 0 else None

    def from_month_start(self, first: date, last: date) -> PricedCard | None:
        """The card in force on `first`, else the first to take effect by `last`."""
        index = self.index_on(first)
        if index is not None:
            return self.cards[index]
        index = self.index_on(last)
        return self.cards[0] if index is not None else None


# -- settling ----------------------------------------------------------------------------


def _check_count(value: int, *, name: str) -> int:
    # Quantities and counts come from our own records, never from people:
    # a bad one is a programmer error, not a refusal to translate.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int, zero or more; got {value!r}")
    return value


def _check_usage(record: UsageQuantity, first: date, last: date) -> None:
    if record.service not in USAGE_SERVICES:
        raise ValueError(f"usage is one of {', '.join(USAGE_SERVICES)}; got {record.service!r}")
    if not isinstance(record.day, date) or isinstance(record.day, datetime):
        raise ValueError(f"the day of a usage quantity must be a date; got {record.day!r}")
    if not first <= record.day <= last:
        raise ValueError(f"usage of {record.day} is not in {first:%Y-%m}")
    _check_count(record.quantity, name="quantity")


def _no_card(host_code: str, day: date) -> NoRateCard:
    return NoRateCard(
        N_(
            "Host %(host)s has no rate card in force on %(day)s; add one from that date or earlier."
        ),
        host=host_code,
        day=day.isoformat(),
    )


def _usage_by_card(
    usage: Iterable[UsageQuantity], cards: _Cards, first: date, last: date, host_code: str
) -> dict[str, dict[int, int]]:
    """service → index of the card in force → total quantity, over days with usage."""
    totals: dict[str, dict[int, int]] = {service: {} for service in USAGE_SERVICES}
    missing: date | None = None
    for record in usage:
        _check_usage(record, first, last)
        if record.quantity == 0:
            continue
        index = cards.index_on(record.day)
        if index is None:
            missing = record.day if missing is None else min(missing, record.day)
            continue
        by_card = totals[record.service]
        by_card[index] = by_card.get(index, 0) + record.quantity
    if missing is not None:
        raise _no_card(host_code, missing)
    return totals


def wholesale_cost_minor(service: str, quantity: int, price_micro: int) -> int:
    """round_half_up(quantity × unit price) in minor units (a quantity in the service's unit)."""
    divisor = _QUANTITY_PER_PRICE_UNIT[service] * _MICRO_PER_MINOR
    return round_half_up(quantity * price_micro, divisor)


def _row(service: str, quantity: int, price_micro: int, compliant: bool) -> SettlementRow:
    return SettlementRow(
        service=service,
        unit=UNITS[service],
        quantity=quantity,
        unit_price_micro=price_micro,
        amount_minor=wholesale_cost_minor(service, quantity, price_micro),
        compliant=compliant,
    )


def _usage_rows(service: str, by_card: dict[int, int], cards: _Cards) -> list[SettlementRow]:
    """One row per (unit price, compliance), in the order the cards took effect."""
    quantities: dict[tuple[int, bool], int] = {}
    for index in sorted(by_card):
        card = cards.cards[index]
        key = (card.price(service), card.compliant(service))
        quantities[key] = quantities.get(key, 0) + by_card[index]
    return [_row(service, q, price, ok) for (price, ok), q in quantities.items()]


def settle(
    *,
    host_code: str,
    currency: str,
    month: str,
    cards: Iterable[PricedCard],
    usage: Iterable[UsageQuantity],
    lines: int,
    numbers: int,
) -> Settlement:
    """Price a host's month: usage per day with the card of that day, line and
    number counts with the card of the month's last day (module docstring).

    Pure; rows in the order data, voice, sms, line, number.
    :raises InvalidInput: a month not written YYYY-MM.
    :raises ValueError: usage of another service or outside the month, a
        negative or non-integer quantity or count (programmer errors).
    :raises NoRateCard: a day with usage, or the month's last day, without a
        card in force; the error names the earliest such day.
    """
    first = parse_month(month)
    last = _last_day(first)
    lines = _check_count(lines, name="lines")
    numbers = _check_count(numbers, name="numbers")
    by_date = _Cards(cards)
    totals = _usage_by_card(usage, by_date, first, last, host_code)
    month_end = by_date.index_on(last)
    if month_end is None:
        raise _no_card(host_code, last)
    rows: list[SettlementRow] = []
    for service in USAGE_SERVICES:
        if totals[service]:
            rows.extend(_usage_rows(service, totals[service], by_date))
        else:
            card = by_date.from_month_start(first, last)
            assert card is not None  # a card is in force on the last day
            rows.append(_row(service, 0, card.price(service), card.compliant(service)))
    end_card = by_date.cards[month_end]
    for service, count in zip(MONTHLY_SERVICES, (lines, numbers), strict=True):
        rows.append(_row(service, count, end_card.price(service), end_card.compliant(service)))
    assert tuple(dict.fromkeys(row.service for row in rows)) == SERVICES
    return Settlement(host=host_code, period=month, currency=currency, rows=tuple(rows))


# -- files -------------------------------------------------------------------------------


def format_unit_price(micro: int, service: str) -> str:
    """A unit price in micro-units as a decimal string for files.

    At least 4 places for data, voice and sms ("0.0025") and 2 for line and
    number ("1.20"), more (up to 6) only when needed to be exact.
    """
    if service not in _PRICE_PLACES:
        raise ValueError(f"unknown service {service!r}")
    whole, _, fraction = format_plain(micro, places=MICRO_PLACES).partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(_PRICE_PLACES[service], '0')}"


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV file's text: the header `columns`, then `rows`, LF line endings."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def json_text(document: dict[str, Any]) -> str:
    """A JSON file's text: keys in the order given, indented by 2, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def settlement_csv(settlement: Settlement) -> str:
    """The settlement as CSV (`CSV_COLUMNS`), one line per row; compliant is true/false."""
    return csv_text(
        CSV_COLUMNS,
        (
            (
                settlement.host,
                settlement.period,
                row.service,
                row.unit,
                row.quantity,
                format_unit_price(row.unit_price_micro, row.service),
                format_plain(row.amount_minor),
                settlement.currency,
                "true" if row.compliant else "false",
            )
            for row in settlement.rows
        ),
    )


def settlement_json(settlement: Settlement) -> str:
    """The settlement as JSON: host, period, currency, rows, total, total_minor."""
    return json_text(
        {
            "host": settlement.host,
            "period": settlement.period,
            "currency": settlement.currency,
            "rows": [
                {
                    "service": row.service,
                    "unit": row.unit,
                    "quantity": row.quantity,
                    "unit_price": format_unit_price(row.unit_price_micro, row.service),
                    "amount": format_plain(row.amount_minor),
                    "amount_minor": row.amount_minor,
                    "compliant": row.compliant,
                }
                for row in settlement.rows
            ],
            "total": format_plain(settlement.total_minor),
            "total_minor": settlement.total_minor,
        }
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` so a reader sees the old file or the new, never half.

    Writes a temporary file in the same directory, syncs it and renames it
    over `path`; on failure the temporary file is removed and `path` is
    untouched.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(text.encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if os.name == "posix":
        # The rename itself survives a crash only once the directory is synced.
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def report_paths(kind: str, host: str, period: str, out_dir: Path) -> tuple[Path, Path]:
    """The CSV and JSON paths ``<kind>_<HOST>_<YYYY-MM>.csv/.json`` in `out_dir`.

    :raises InvalidInput: a host code or period that would not make a plain file name.
    """
    parse_month(period)
    if not isinstance(host, str) or not _HOST_CODE_RE.fullmatch(host):
        raise InvalidInput(
            N_("A host code is 2 to 20 characters of A-Z, 0-9, _ and -; got %(value)r."),
            field="host",
            value=host,
        )
    stem = f"{kind}_{host}_{period}"
    return out_dir / f"{stem}.csv", out_dir / f"{stem}.json"


def write_settlement(settlement: Settlement, out_dir: Path) -> list[Path]:
    """Write ``settlement_<HOST>_<YYYY-MM>.csv`` and ``.json`` into `out_dir`.

    Creates `out_dir` if needed; each file is replaced atomically, so
    writing the same settlement again gives the same bytes.
    :returns: the CSV path, then the JSON path.
    """
    csv_path, json_path = report_paths("settlement", settlement.host, settlement.period, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(csv_path, settlement_csv(settlement))
    write_text_atomic(json_path, settlement_json(settlement))
    return [csv_path, json_path]
