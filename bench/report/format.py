"""Human formatting of measured values (pure): SI/binary prefixes chosen per unit."""

from __future__ import annotations

import math
from typing import Final

#: Shown for a missing or undefined number (en dash); times sign for ratios.
DASH: Final = "\u2013"
TIMES: Final = "\u00d7"

_TIME: Final = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
_BYTES: Final = ((1024.0**3, "GiB"), (1024.0**2, "MiB"), (1024.0, "KiB"), (1.0, "B"))
_COUNT: Final = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def _sig(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def scale_for(value: float, unit: str) -> tuple[float, str]:
    """(divisor, display unit) suited to ``value`` expressed in ``unit``."""
    magnitude = abs(value) if math.isfinite(value) else 0.0
    if unit == "s":
        table = _TIME
        for divisor, label in table:
            if magnitude >= divisor:
                return divisor, label
        return table[-1]
    if unit in ("B", "B/s"):
        suffix = "/s" if unit == "B/s" else ""
        for divisor, label in _BYTES:
            if magnitude >= divisor:
                return divisor, label + suffix
        return 1.0, unit
    for divisor, prefix in _COUNT:
        if magnitude >= divisor:
            return divisor, f"{prefix} {unit}".strip() if prefix else unit
    return 1.0, unit


def value(number: float, unit: str) -> str:
    """``0.00123, 's'`` -> ``'1.23 ms'``; NaN -> :data:`DASH`."""
    if number is None or not math.isfinite(number):
        return DASH
    divisor, label = scale_for(number, unit)
    return f"{_sig(number / divisor)} {label}".strip()


def interval(low: float, high: float, unit: str) -> str:
    """A CI in the unit of its upper bound: ``'[1.20, 1.31] ms'``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return DASH
    divisor, label = scale_for(max(abs(low), abs(high)), unit)
    return f"[{_sig(low / divisor)}, {_sig(high / divisor)}] {label}".strip()


def signed(number: float, unit: str) -> str:
    """A difference with its sign: ``'+11.9 MiB'``, ``'-3 ms'``; NaN -> :data:`DASH`."""
    if number is None or not math.isfinite(number):
        return DASH
    return ("+" if number >= 0 else "-") + value(abs(number), unit)


def difference_class(low: float, high: float) -> str:
    """CSS class of a difference to native: 'unclear' when its CI includes 0, else 'delta'."""
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0.0 <= high:
        return "unclear"
    return "delta"


def ratio(number: float) -> str:
    """``1.234`` -> ``'1.23x'`` (with a times sign)."""
    if number is None or not math.isfinite(number):
        return DASH
    return f"{number:.3g}{TIMES}" if number < 100 else f"{number:,.0f}{TIMES}"


def percent(number: float) -> str:
    """``0.1234`` -> ``'+12.3%'``."""
    if number is None or not math.isfinite(number):
        return DASH
    return f"{number:+.1%}"


def coverage(number: float) -> str:
    """True coverage of an interval as a label: ``0.9375`` -> ``'94 % CI'``."""
    if number is None or not math.isfinite(number) or number <= 0:
        return "no CI"
    return f"{number * 100:.0f} % CI"


def ratio_class(number: float, low: float = math.nan, high: float = math.nan) -> str:
    """CSS class for an overhead ratio: ok (< 1.1), mild (< 1.5), costly (< 3), severe.

    'unclear' when the ratio is undefined or its CI includes 1 (no measurable difference).
    """
    if number is None or not math.isfinite(number):
        return "unclear"
    if math.isfinite(low) and math.isfinite(high) and low <= 1.0 <= high:
        return "unclear"
    if number < 1.10:
        return "ok"
    if number < 1.5:
        return "mild"
    if number < 3.0:
        return "costly"
    return "severe"


# -- safe text exports -------------------------------------------------------------------------

#: Markdown punctuation that could start emphasis, code or a table cell boundary (brackets
#: stay readable: a link needs ``](``, which :func:`markdown_cell` breaks instead).
_MARKDOWN_SPECIAL: Final = str.maketrans(
    {c: f"\\{c}" for c in "\\`*|~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
)
#: OWASP CSV injection: a cell starting with one of these is read as a formula.
CSV_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def markdown_cell(text: object) -> str:
    r"""``text`` safe inside a GitHub-markdown table cell.

    Newlines become ``<br>`` (a row cannot be split), ``|`` and the characters that start
    emphasis or code are backslash-escaped, ``](`` (a link) becomes ``]\(``, and HTML is
    entity-escaped (no tag, no autolink), so a scenario or metric name can neither add rows nor
    inject markup.
    """
    value = str(text).translate(_MARKDOWN_SPECIAL).replace("](", "]\\(")
    for newline in ("\r\n", "\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x85"):
        value = value.replace(newline, "<br>")
    return value


def csv_cell(text: object) -> object:
    """A text cell neutralised per OWASP: one leading ``'`` if it would start a formula.

    Non-text values (numbers, which may well be negative) pass through unchanged.
    """
    if isinstance(text, str) and text.startswith(CSV_FORMULA_START):
        return "'" + text
    return text
