"""Golden numbers: tiers of memorable numbers, recognised from their digits.

Patterns are looked for in the **last 8 digits** of the number, as Chinese
operators do (the country code and the operator prefix are the same for a
whole block). "Ascending" and "descending" mean steps of exactly one digit;
0 does not follow 9, so 7890 is not a run. Tiers, from the most to the least
valuable (this is also the order of `DEFAULT_TIERS`, and when a number
matches several tiers it gets the first one):

=========  ===========================================================  ================
code       rule                                                         example (last 8)
=========  ===========================================================  ================
aaaaa      five or more equal digits in a row, anywhere in the last 8   1 88888 12
aaaa       four equal digits in a row, anywhere (so also "ends 8888",   12 6666 30,
           "ends 6666")                                                 1234 8888
abcde      five ascending digits in a row, anywhere                     1 34567 90
abcd       four ascending digits in a row, anywhere (1234, 5678)        90 5678 11
end_1314   ends in 1314 (一生一世, "for a lifetime")                     2035 1314
end_520    ends in 520 (我爱你, "I love you")                            20349 520
dcba       four descending digits in a row, anywhere (4321, 9876)       0 9876 202
aabb       the last four digits are AABB with A ≠ B                     2035 1122
abab       the last four digits are ABAB with A ≠ B                     2035 1212
end_aaa    the last three digits are equal                              20351 777
end_168    ends in 168 (一路发, "prosper all the way")                   20351 168
end_88     ends in 88                                                   203514 88
end_66     ends in 66                                                   203514 66
=========  ===========================================================  ================

The surcharges in `DEFAULT_TIERS` are defaults in minor units (88800 is
888.00); staff change them, and switch tiers off, in the `golden_tier` table.

Speed: a block load classifies up to a million numbers. Every run of four or
five digits inside the last eight lies inside one of the four 5-digit
windows at offsets 0–3, and every tail rule reads only the last four digits,
so `classify` is four lookups in two tables precomputed for all 10⁵
windows (the last window's table adds the tail rules), OR-ed into a bit mask
of matching tiers (bit i = i-th tier of `DEFAULT_TIERS`); the lowest set bit
among the enabled tiers is the answer: under a microsecond per number. The
tables are built on first use (about a tenth of a second).

**Against the block.** A pattern made only of digits that every number of
the block shares is the block's, not the number's: in the block
+86170123400xx every number's last eight digits start 123400, and "1234"
there makes none of them golden. `classifier(shared=n)` (with
`shared_digits(first, last)` of the block) counts a run or a tail rule only
when it takes in at least one of the digits after the first `n` of the last
eight. The windows that straddle that edge are evaluated with the edge and
remembered (a block's shared digits are fixed, so there are few).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from itertools import pairwise

DEFAULT_TIERS: dict[str, int] = {
    "aaaaa": 88800,
    "aaaa": 28800,
    "abcde": 18800,
    "abcd": 8800,
    "end_1314": 5200,
    "end_520": 5200,
    "dcba": 3800,
    "aabb": 2800,
    "abab": 2800,
    "end_aaa": 1800,
    "end_168": 1680,
    "end_88": 880,
    "end_66": 660,
}

TIER_CODES: tuple[str, ...] = tuple(DEFAULT_TIERS)
_BIT: dict[str, int] = {code: 1 << index for index, code in enumerate(TIER_CODES)}
_ALL = (1 << len(TIER_CODES)) - 1
PATTERN_DIGITS = 8


def _longest_run(digits: str, step: int, cut: int = 0) -> int:
    """The longest run of digits each differing from the previous by `step`.

    Only runs that end at index `cut` or later count (a run ending earlier
    lies wholly in digits the block shares).
    """
    best = 1 if cut == 0 else 0
    run = 1
    for index, (previous, current) in enumerate(pairwise(digits), start=1):
        run = run + 1 if int(current) - int(previous) == step else 1
        if index >= cut:
            best = max(best, run)
    return best


def _run_mask(window: str, cut: int = 0) -> int:
    """Tiers recognised from runs inside one 5-digit window (ending at `cut` or later)."""
    mask = 0
    same = _longest_run(window, 0, cut)
    up = _longest_run(window, 1, cut)
    down = _longest_run(window, -1, cut)
    if same >= 5:
        mask |= _BIT["aaaaa"]
    if same >= 4:
        mask |= _BIT["aaaa"]
    if up >= 5:
        mask |= _BIT["abcde"]
    if up >= 4:
        mask |= _BIT["abcd"]
    if down >= 4:
        mask |= _BIT["dcba"]
    return mask


def _tail_mask(tail: str) -> int:
    """Tiers recognised from the last four digits."""
    mask = 0
    a, b, c, d = tail[0], tail[1], tail[2], tail[3]
    if tail == "1314":
        mask |= _BIT["end_1314"]
    if tail.endswith("520"):
        mask |= _BIT["end_520"]
    if a == b and c == d and a != c:
        mask |= _BIT["aabb"]
    if a == c and b == d and a != b:
        mask |= _BIT["abab"]
    if b == c == d:
        mask |= _BIT["end_aaa"]
    if tail.endswith("168"):
        mask |= _BIT["end_168"]
    if tail.endswith("88"):
        mask |= _BIT["end_88"]
    if tail.endswith("66"):
        mask |= _BIT["end_66"]
    return mask


@cache
def _tables() -> tuple[dict[str, int], dict[str, int]]:
    """(mask of each 5-digit window, the same for the last window plus the tail rules).

    Only windows that hold a 4-run (and tails that match a tail rule) have a
    mask other than 0, so those are enumerated instead of testing all 10⁵.
    """
    inner = dict.fromkeys((f"{n:05d}" for n in range(100_000)), 0)
    for step in (0, 1, -1):
        for start in range(10):
            if not 0 <= start + 3 * step <= 9:
                continue
            run = "".join(str(start + i * step) for i in range(4))
            for extra in "0123456789":
                for window in (run + extra, extra + run):
                    inner[window] = _run_mask(window)
    last = dict(inner)
    for n in range(10_000):
        tail = f"{n:04d}"
        mask = _tail_mask(tail)
        if mask:
            for lead in "0123456789":
                last[lead + tail] |= mask
    return inner, last


def _enabled_mask(enabled: Iterable[str] | None) -> int:
    if enabled is None:
        return _ALL
    return sum(_BIT[code] for code in set(enabled) if code in _BIT)


def tier_mask(msisdn: str) -> int:
    """Bit mask of every tier the number matches (bit i = `TIER_CODES[i]`)."""
    inner, last = _tables()
    tail = msisdn[-PATTERN_DIGITS:]
    try:
        return inner[tail[0:5]] | inner[tail[1:6]] | inner[tail[2:7]] | last[tail[3:8]]
    except KeyError:  # fewer than 8 characters, or not ASCII digits
        return 0


def shared_digits(first: str, last: str) -> int:
    """How many leading digits of the last eight every number from `first` to `last` shares.

    A contiguous range shares exactly the common prefix of its two ends. A
    block of one number is judged on its own digits: nothing is shared.
    """
    a, b = first.lstrip("+"), last.lstrip("+")
    if a == b or len(a) != len(b) or len(a) < PATTERN_DIGITS:
        return 0
    common = 0
    for x, y in zip(a, b, strict=True):
        if x != y:
            break
        common += 1
    return max(0, min(PATTERN_DIGITS, common - (len(a) - PATTERN_DIGITS)))


@cache
def _edge_mask(window: str, cut: int, last_window: bool) -> int:
    """The mask of a window whose first `cut` digits the block shares (0 < cut < 5)."""
    mask = _run_mask(window, cut)
    if last_window:  # the tail rules all take in the last digit, which is not shared
        mask |= _tail_mask(window[1:])
    return mask


def _block_mask(tail: str, shared: int) -> int:
    """`tier_mask` of the last eight digits, counting only patterns past `shared` digits."""
    inner, last = _tables()
    if shared >= PATTERN_DIGITS:
        return 0
    mask = 0
    for offset in range(4):
        window = tail[offset : offset + 5]
        if offset + 5 <= shared:
            continue
        if offset >= shared:
            mask |= last[window] if offset == 3 else inner[window]
        else:
            mask |= _edge_mask(window, shared - offset, offset == 3)
    return mask


def classifier(
    enabled: Iterable[str] | None = None, *, shared: int = 0
) -> Callable[[str], str | None]:
    """A `classify` with the enabled set fixed once, for classifying whole blocks.

    `shared`: the digits of the last eight the whole block shares
    (`shared_digits`), whose patterns do not count.
    """
    inner, last = _tables()
    allowed = _enabled_mask(enabled)
    codes = TIER_CODES
    if shared:

        def classify_in_block(msisdn: str) -> str | None:
            tail = msisdn[-PATTERN_DIGITS:]
            if len(tail) < PATTERN_DIGITS or not tail.isascii() or not tail.isdigit():
                return None
            mask = _block_mask(tail, shared) & allowed
            return codes[(mask & -mask).bit_length() - 1] if mask else None

        return classify_in_block

    def classify_one(msisdn: str) -> str | None:
        tail = msisdn[-PATTERN_DIGITS:]
        try:
            mask = (
                inner[tail[0:5]] | inner[tail[1:6]] | inner[tail[2:7]] | last[tail[3:8]]
            ) & allowed
        except KeyError:  # fewer than 8 characters, or not ASCII digits
            return None
        if not mask:
            return None
        return codes[(mask & -mask).bit_length() - 1]

    return classify_one


def classify(msisdn: str, enabled: set[str] | None = None) -> str | None:
    """The most valuable tier the number matches, among `enabled` (all tiers when None).

    Takes an E.164 number ("+8617012348888") or bare digits; only the last 8
    digits count. Returns None for an ordinary number.
    """
    mask = tier_mask(msisdn) & _enabled_mask(enabled)
    if not mask:
        return None
    return TIER_CODES[(mask & -mask).bit_length() - 1]
