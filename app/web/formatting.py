"""How pages show times, allowances and codes: numbers, data, minutes, QR codes.

Shared by the store (a line's meters) and the console (a customer's lines).
Times are stored in UTC and shown in the viewer's time zone (`TIMEZONE`) in
one compact form in both languages, `2026-10-02 08:15`, inside a `<time>`
element that carries the instant and keeps the text on one line.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import segno
from babel.numbers import format_decimal
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

KB_PER_MB = 1024
KB_PER_GB = 1024 * 1024
MB_PER_GB = 1024
COMPACT_TIME = "%Y-%m-%d %H:%M"


def time_tag(value: datetime | date | None, zone: ZoneInfo) -> Markup:
    """A time for a page: `<time datetime="…">2026-10-02 08:15</time>` in `zone`, or "—".

    A naive datetime is read as UTC (how the database hands them back); a
    date is shown as the date alone.
    """
    if value is None:
        return Markup("—")
    if isinstance(value, datetime):
        instant = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        local = instant.astimezone(zone)
        return Markup('<time datetime="{}">{}</time>').format(
            instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            local.strftime(COMPACT_TIME),
        )
    return Markup('<time datetime="{0}">{0}</time>').format(value.isoformat())


def number_text(value: float, places: int = 0) -> str:
    """A number in the page's locale, with `places` decimals."""
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(value, format=pattern, locale=str(get_locale()))


def data_text(kb: int) -> str:
    """An amount of data: GB with two decimals from 1 GB, else MB."""
    if kb >= KB_PER_GB:
        return _("%(n)s GB", n=number_text(kb / KB_PER_GB, 2))
    return _("%(n)s MB", n=number_text(kb / KB_PER_MB, 1 if kb % KB_PER_MB else 0))


def allowance_data_text(mb: int) -> str:
    """A plan's data allowance: whole GB without decimals ("10 GB"), else GB or MB."""
    if mb >= MB_PER_GB:
        places = 0 if mb % MB_PER_GB == 0 else 1
        return _("%(n)s GB", n=number_text(mb / MB_PER_GB, places))
    return _("%(n)s MB", n=number_text(mb))


def minutes_text(seconds: int) -> str:
    """Call time in minutes (a decimal only for part of a minute)."""
    return _("%(n)s min", n=number_text(seconds / 60, 1 if seconds % 60 else 0))


def qr_svg(text: str) -> Markup:
    """An inline SVG QR code of `text` (made here, no outside service)."""
    # segno's own markup: the text is encoded as modules, never copied into the SVG.
    return Markup(segno.make(text, error="m").svg_inline(scale=4))  # noqa: S704


def usage_text(service: str, quantity: int, *, billable: bool = False) -> str:
    """A usage quantity in words: data as MB or GB (from bytes, or billable KB),
    voice as minutes (from seconds), SMS as a count."""
    if service == "data":
        return data_text(quantity if billable else -(-quantity // 1024))
    if service == "voice":
        return minutes_text(quantity)
    return number_text(quantity)
