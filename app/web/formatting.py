"""How pages show allowances and codes: numbers, data, minutes, QR codes.

Shared by the store (a line's meters) and the console (a customer's lines).
"""

from __future__ import annotations

import segno
from babel.numbers import format_decimal
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

KB_PER_MB = 1024
KB_PER_GB = 1024 * 1024


def number_text(value: float, places: int = 0) -> str:
    """A number in the page's locale, with `places` decimals."""
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(value, format=pattern, locale=str(get_locale()))


def data_text(kb: int) -> str:
    """An amount of data: GB with two decimals from 1 GB, else MB."""
    if kb >= KB_PER_GB:
        return _("%(n)s GB", n=number_text(kb / KB_PER_GB, 2))
    return _("%(n)s MB", n=number_text(kb / KB_PER_MB, 1 if kb % KB_PER_MB else 0))


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
