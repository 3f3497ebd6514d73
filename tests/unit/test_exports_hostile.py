"""Hostile names through every export (issue 14 item 5): no row splitting, no markup, no formula.

The scenario name, the variant label (a backend's) and thus every exported cell carry
``|``, a newline, HTML and a leading ``=``; report csv/markdown/json/html, compare markdown and
the pytest-benchmark export must keep them inert.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import backends as registry
from bench.cli import main
from bench.report.format import csv_cell, markdown_cell
from bench.run import runner as runner_module
from tests.fake_backend import FakeScript, register_fake

NAME = "=HYPERLINK(x)|<b onclick=y>bold [a](b)"
VARIANT = "+cmd|x\n| injected | row |\r<img src=y>"
SCENARIO = f"""\
format_version: 1
name: '{NAME}'
workload: {{kind: startup}}
backends: [fake]
repeat: 2
warmup: 0
timeout: 5
"""


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(runner_module, "host_info", lambda: {"hostname": "@host"})
    register_fake("fake", FakeScript(values={"startup.ready": 0.5}, variants=(VARIANT, "-ok")))
    try:
        path = tmp_path / "s.yaml"
        path.write_text(SCENARIO)
        assert main(["validate", str(path)]) == 0
        assert main(["run", str(path), "-q", "--out", str(tmp_path / "r")]) == 0
        yield next((tmp_path / "r").iterdir())
    finally:
        registry.unregister("fake")


def _table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def _cells(line: str) -> int:
    """Cells of a markdown table row: pipes not escaped by a backslash."""
    count, escaped = 0, False
    for char in line:
        if char == "|" and not escaped:
            count += 1
        escaped = char == "\\" and not escaped
    return count - 1


def test_markdown_report_keeps_one_row_per_line_and_no_html(run_dir, capsys) -> None:
    capsys.readouterr()
    assert main(["report", str(run_dir), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    rows = _table_rows(text)
    assert len(rows) == len(text.strip().splitlines())  # no line outside the table
    assert len({_cells(row) for row in rows}) == 1  # every row has the header's cell count
    assert "<b " not in text
    assert "<img" not in text
    assert "&lt;b onclick=y&gt;" in text


def test_compare_markdown_is_escaped_the_same_way(run_dir, capsys) -> None:
    capsys.readouterr()
    main(["compare", str(run_dir), str(run_dir), "--format", "markdown"])
    text = capsys.readouterr().out
    rows = _table_rows(text)
    assert len({_cells(row) for row in rows}) == 1
    assert len(rows) == 2 + 2 * 2  # header, rule, 2 variants x 2 metrics
    assert "<b " not in text
    assert "<img" not in text


def test_csv_cells_never_start_a_formula(run_dir, capsys) -> None:
    capsys.readouterr()
    assert main(["report", str(run_dir), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows
    for row in rows:
        for column, cell in row.items():
            if column not in {"median", "ci_low", "ci_high", "ratio", "difference"}:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    assert {row["scenario"] for row in rows} == {"'" + NAME}
    assert all(row["host"].startswith("'@host") for row in rows)
    assert "'" + VARIANT.replace("\r", "\n") in {r["variant"].replace("\r", "\n") for r in rows}


def test_json_and_html_carry_the_names_verbatim_but_inert(run_dir, capsys) -> None:
    capsys.readouterr()
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert {row["scenario"] for row in summary} == {NAME}
    assert VARIANT in {row["variant"] for row in summary}
    assert main(["report", str(run_dir), "-o", "-"]) == 0
    html = capsys.readouterr().out
    assert "<b onclick" not in html
    assert "<img src=y>" not in html
    assert "&lt;b onclick=y&gt;bold" in html


def test_pytest_benchmark_export_round_trips_the_names(run_dir, capsys) -> None:
    capsys.readouterr()
    assert main(["export", str(run_dir)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {b["extra_info"]["scenario"] for b in document["benchmarks"]} == {NAME}
    assert VARIANT in {b["extra_info"]["variant"] for b in document["benchmarks"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a|b", "a\\|b"),
        ("line\nbreak\r\nx", "line<br>break<br>x"),
        ("<script>&", "&lt;script&gt;&amp;"),
        ("*em* `code` [l](u) ~s~", "\\*em\\* \\`code\\` [l]\\(u) \\~s\\~"),
        ("[95% CI]", "[95% CI]"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_markdown_cell(text: str, expected: str) -> None:
    assert markdown_cell(text) == expected


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cell_neutralises_formula_starts(start: str) -> None:
    assert csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert csv_cell(f"a{start}") == f"a{start}"
    assert csv_cell(-1.5) == -1.5  # numbers are not text
