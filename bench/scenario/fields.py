"""Validators of single scenario fields that need no model: names, selectors, patterns.

Pure, and imported by :mod:`bench.scenario.model`. Messages are phrased "expected ..." like the
model's, because the loader shows them next to the file, line and field.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "backend_name",
    "check_pattern",
    "check_selector",
    "job_name",
    "package_name",
    "selector_steps",
]


def _matching(pattern: re.Pattern[str], value: str, expected: str) -> str:
    """``value`` when ``pattern`` matches it, else ValueError "expected EXPECTED, got VALUE"."""
    if not pattern.match(value):
        msg = f"expected {expected}, got {value!r}"
        raise ValueError(msg)
    return value


#: A fio job name becomes one segment of a metric name (``disk.<job>.read_iops``).
_JOB_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


def job_name(name: str) -> str:
    """Validate a fio job name (one dot-free segment of a metric name)."""
    return _matching(
        _JOB_NAME,
        name,
        "a job name of letters, digits, '_' and '-' (at most 48, no dots: it becomes part "
        "of metric names such as disk.NAME.read_iops)",
    )


#: One step of a JSON selector: ``.key``, ``[index]`` or ``["key with dots"]``.
_SELECTOR_STEP: Final = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\["([^"]*)"\]')


def selector_steps(selector: str) -> tuple[str | int, ...]:
    """``end.sum_received["bits_per_second"]`` or ``jobs[0].read.iops`` as keys and indices."""
    steps: list[str | int] = []
    position = 0
    while position < len(selector):
        match = _SELECTOR_STEP.match(selector, position)
        if match is None or (position == 0 and selector.startswith(".")):
            msg = (
                f"expected a JSON selector like jobs[0].read.iops or "
                f'percentile["99.000000"], got {selector!r} (stuck at {selector[position:]!r})'
            )
            raise ValueError(msg)
        key, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (key if key is not None else quoted))
        position = match.end()
    if not steps:
        msg = "expected a non-empty JSON selector"
        raise ValueError(msg)
    return tuple(steps)


def check_selector(value: str) -> str:
    """Validate a JSON selector (see :func:`selector_steps`)."""
    selector_steps(value)
    return value


def check_pattern(value: str) -> str:
    """Validate a regular expression that has named groups."""
    try:
        compiled = re.compile(value)
    except re.error as exc:
        msg = f"expected a Python regular expression: {exc}"
        raise ValueError(msg) from exc
    if not compiled.groupindex:
        msg = "expected named groups, e.g. (?P<rate>[0-9.]+); each becomes one metric"
        raise ValueError(msg)
    return value


#: A Debian package name (policy 5.6.1): what ``requires`` lists.
_PACKAGE: Final = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def package_name(name: str) -> str:
    """Validate a Debian package name."""
    return _matching(
        _PACKAGE,
        name,
        "a Debian package name (lower-case letters, digits, '+', '-', '.'; at least 2 characters)",
    )


#: What a backend name looks like; whether one is registered is the loader's question.
_BACKEND_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def backend_name(name: str) -> str:
    """Validate the shape of a backend name (the loader checks it is registered)."""
    return _matching(_BACKEND_NAME, name, "a backend name (lower-case letters, digits, '-', '_')")
