"""Fault injection: every case records one row (case, outcome, data kept, leftovers).

Each test in this folder provokes one fault against the real harness (and the real engines
where the case is about them) and asserts the harness's behaviour; it also calls the
``fault_row`` fixture once with what it saw. ``nox -s faults`` (or ``pytest tests/faults``)
prints the rows as a table at the end, and writes them to ``$ISOBENCH_FAULT_TABLE`` when set
(the README's reliability section is that table).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROWS: list[dict[str, str]] = []
COLUMNS = ("case", "outcome", "data kept", "leftovers")


@pytest.fixture
def fault_row(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record this case's row (keywords: case, outcome, data_kept, leftovers)."""

    def record(*, case: str, outcome: str, data_kept: str, leftovers: str = "none") -> None:
        ROWS.append(
            {
                "test": request.node.nodeid,
                "case": case,
                "outcome": outcome,
                "data kept": data_kept,
                "leftovers": leftovers,
            }
        )

    return record


def table(rows: list[dict[str, str]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [row[c].replace("|", "\\|").replace("\n", " ") for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    text = table(ROWS)
    terminalreporter.write_sep("=", "fault injection: case, outcome, data kept, leftovers")
    terminalreporter.write(text)
    target = os.environ.get("ISOBENCH_FAULT_TABLE")
    if target:
        Path(target).write_text(text, encoding="utf-8")
