"""Money: integers in minor units, wholesale prices in micro-units (DESIGN §4).

Rules, each a named function returning an `int`:

* `round_half_up(n, d)` — n / d rounded to the nearest integer, halves away
  from zero. Used for settlement totals and pro-rating.
* `ceil_div(n, d)` — n / d rounded up (towards +infinity). Used for retail
  per-record charges, so a customer is never charged a fraction short.
* `parse_amount(text, places)` — a decimal string ("29.00", "0.0030") to an
  integer count of 10**-places units. More precision than the unit holds is
  refused rather than rounded ("0.001" as fen is an error, "0.010" is 1 fen);
  so are signs, exponents, blanks and separators.
"""

from __future__ import annotations

import re

MINOR_PLACES = 2
MICRO_PLACES = 6
# The largest single amount of customer money (10,000,000.00): any payment,
# voucher, refund, adjustment or posting above it is refused as input, so
# amount columns (32-bit) never overflow. Cached balances are 64-bit.
MAX_AMOUNT_MINOR = 1_000_000_000

_DECIMAL = re.compile(r"(-?)(\d+)(?:\.(\d+))?")


def round_half_up(numerator: int, denominator: int) -> int:
    """Return numerator / denominator rounded half away from zero."""
    if denominator == 0:
        raise ZeroDivisionError("round_half_up by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return sign * quotient


def ceil_div(numerator: int, denominator: int) -> int:
    """Return numerator / denominator rounded up (towards +infinity)."""
    if denominator == 0:
        raise ZeroDivisionError("ceil_div by zero")
    return -((-numerator) // denominator)


def parse_amount(text: str, *, places: int, allow_negative: bool = False) -> int:
    """Parse a decimal string into an integer number of 10**-places units.

    :raises ValueError: ill-formed, negative (unless allowed), or more
        precise than `places` digits after the point.
    """
    if not isinstance(text, str):
        raise ValueError(f"amount must be a decimal string, got {text!r}")
    match = _DECIMAL.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a decimal amount like 29.00")
    sign, whole, fraction = match.groups()
    fraction = fraction or ""
    if sign and not allow_negative:
        raise ValueError(f"{text!r} is negative")
    if len(fraction.rstrip("0")) > places:
        raise ValueError(f"{text!r} has more than {places} decimal places")
    fraction = fraction[:places].ljust(places, "0")
    value = int(whole) * 10**places + (int(fraction) if fraction else 0)
    return -value if sign else value


def parse_minor(text: str, *, allow_negative: bool = False) -> int:
    """Parse a customer amount ("29.00") into minor units (fen/cents)."""
    return parse_amount(text, places=MINOR_PLACES, allow_negative=allow_negative)


def parse_micro(text: str) -> int:
    """Parse a wholesale unit price ("0.0030") into micro-units."""
    return parse_amount(text, places=MICRO_PLACES)


def format_plain(amount: int, *, places: int = MINOR_PLACES) -> str:
    """Render an integer amount as a plain decimal string for files ("29.00")."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}" if places else f"{sign}{whole}"


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """Format minor units for people in `locale` ("¥39.00", "CN¥39.00") through Babel."""
    from decimal import Decimal

    from babel.numbers import format_currency, get_currency_precision

    places = get_currency_precision(currency)
    return format_currency(Decimal(amount_minor).scaleb(-places), currency, locale=locale)


def check_amount(amount_minor: int, *, field: str = "amount", allow_negative: bool = False) -> int:
    """Refuse a zero, negative (unless allowed) or too large amount of money.

    :raises InvalidInput: naming `field`.
    """
    from app.core.errors import N_, InvalidInput

    if amount_minor == 0 or (amount_minor < 0 and not allow_negative):
        raise InvalidInput(N_("The amount must be more than zero."), field=field)
    if abs(amount_minor) > MAX_AMOUNT_MINOR:
        raise InvalidInput(
            N_("The amount may be at most %(max)s."),
            field=field,
            max=format_plain(MAX_AMOUNT_MINOR),
        )
    return amount_minor
