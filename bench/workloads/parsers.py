"""Generic output parsers of the command workload: ``json`` and ``regex``.

Every metric they emit is declared by the scenario (``workload.metrics``: name, unit,
direction, and ``select`` or ``group``), so nothing about a number is guessed. Pure: text in,
measurements out; a missing or non-numeric value is an error naming the metric and where it
was looked for.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from bench.scenario.fields import selector_steps
from bench.scenario.model import CommandWorkload
from bench.values import BackendError, Measurement

#: Names come from the scenario's declarations (workload.metrics), none from the catalog.
EMITS: Final[frozenset[str]] = frozenset()


def _number(raw: Any, name: str, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        msg = f"metric {name!r}: {where} is {raw!r}, not a number"
        raise BackendError(msg)
    try:
        value = float(raw)
    except ValueError as exc:
        msg = f"metric {name!r}: {where} is {raw!r}, not a number"
        raise BackendError(msg) from exc
    if not math.isfinite(value):
        msg = f"metric {name!r}: {where} is {raw!r}, not a finite number"
        raise BackendError(msg)
    return value


def first_json_document(text: str) -> Any:
    """The first JSON object or array in ``text`` (tools often print a preamble first)."""
    decoder = json.JSONDecoder()
    for position, char in enumerate(text):
        if char in "{[":
            try:
                return decoder.raw_decode(text, position)[0]
            except ValueError:
                continue
    msg = f"no JSON document found in the output: {text[-300:]!r}"
    raise BackendError(msg)


def select(document: Any, selector: str) -> Any:
    """The value at ``selector`` (``a.b[0]["c.d"]``) in a parsed JSON document."""
    current = document
    walked = ""
    for step in selector_steps(selector):
        walked += f"[{step}]" if isinstance(step, int) else f".{step}"
        try:
            current = current[step]
        except (KeyError, IndexError, TypeError) as exc:
            msg = f"{walked.lstrip('.')} not found in the JSON output"
            raise BackendError(msg) from exc
    return current


def parse_json(stdout: str, workload: CommandWorkload) -> list[Measurement]:
    """One measurement per declared metric, read at its ``select`` path."""
    document = first_json_document(stdout)
    out: list[Measurement] = []
    for entry in workload.metrics:
        assert entry.select is not None  # the model requires it for parser json
        try:
            raw = select(document, entry.select)
        except BackendError as exc:
            msg = f"metric {entry.name!r}: {exc}"
            raise BackendError(msg) from exc
        value = _number(raw, entry.name, entry.select) * (entry.scale or 1.0)
        out.append(Measurement(entry.name, value, entry.unit))
    return out


def parse_regex(stdout: str, stderr: str, workload: CommandWorkload) -> list[Measurement]:
    """One measurement per named group of the last match (stdout first, else stderr)."""
    assert workload.pattern is not None  # the model requires it for parser regex
    pattern = re.compile(workload.pattern, re.MULTILINE)
    match = None
    for text in (stdout, stderr):
        matches = list(pattern.finditer(text))
        if matches:
            match = matches[-1]  # summaries come last
            break
    if match is None:
        tail = (stdout or stderr)[-300:]
        msg = f"pattern {workload.pattern!r} matched nothing in the output: {tail!r}"
        raise BackendError(msg)
    out: list[Measurement] = []
    for entry in workload.metrics:
        assert entry.group is not None  # the model requires it for parser regex
        raw = match.group(entry.group)
        if raw is None:
            msg = f"metric {entry.name!r}: group {entry.group!r} did not take part in the match"
            raise BackendError(msg)
        value = _number(raw, entry.name, f"group {entry.group!r}") * (entry.scale or 1.0)
        out.append(Measurement(entry.name, value, entry.unit))
    return out
