"""Every number in a scenario is finite and bounded; names fit any file system (issue 14 item 6).

Each case must be refused by `validate` with file, line and field, not pass and then fail or
exhaust the host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scenario.loader import parse_text

BASE = "format_version: 1\nname: s\nworkload: {kind: startup}\n"


def errors(text: str) -> list[str]:
    return [str(e) for e in parse_text(text, Path("x.yaml")).errors]


@pytest.mark.parametrize(
    ("extra", "where", "expected"),
    [
        ("timeout: .inf\n", "x.yaml:4:1: timeout:", "expected a finite number"),
        ("timeout: 86401\n", "x.yaml:4:1: timeout:", "expected a value <= 86400"),
        ("repeat: 200000000\n", "x.yaml:4:1: repeat:", "expected a value <= 10000"),
        ("warmup: 5000\n", "x.yaml:4:1: warmup:", "expected a value <= 1000"),
        ("limits: {cpus: .inf}\n", "x.yaml:4:10: limits.cpus:", "expected a finite number"),
        ("limits: {cpus: 5000}\n", "x.yaml:4:10: limits.cpus:", "expected a value <= 1024"),
        ("limits: {memory: 2TiB}\n", "x.yaml:4:10: limits.memory:", "expected at most 1024GiB"),
        ("precision: 2\n", "x.yaml:4:1: precision:", "expected a value < 1"),
        ("precision: .nan\n", "x.yaml:4:1: precision:", "got nan"),
        ("repeat: 5\nprecision: 5%\nmax_repeat: 3\n", "x.yaml:6:1: max_repeat:", "at least repeat"),
        ("max_repeat: 10001\n", "x.yaml:4:1: max_repeat:", "expected a value <= 10000"),
        ("docker: {runtimes: [" + "r" * 65 + "]}\n", "docker.runtimes[0]", "at most 64 bytes"),
    ],
)
def test_out_of_bounds_values_are_refused_with_file_line_field(
    extra: str, where: str, expected: str
) -> None:
    found = errors(BASE + extra)
    assert len(found) == 1, found
    assert found[0].startswith(where) or where in found[0], found
    assert expected in found[0], found


def test_memory_idle_and_disk_runtime_are_finite_and_bounded() -> None:
    idle = errors(BASE.replace("{kind: startup}", "{kind: memory, idle: .inf}"))
    assert idle == ["x.yaml:3:26: workload.idle: expected a finite number (not .inf or .nan), "
                    "got inf (number)"]  # fmt: skip
    runtime = errors(BASE.replace("{kind: startup}", "{kind: disk, runtime: 1.0e+9}"))
    assert "workload.runtime: expected a value <= 86400" in runtime[0]
    calls = errors(BASE.replace("{kind: startup}", "{kind: syscall, null_calls: 100000000000}"))
    assert "workload.null_calls: expected a value <= 1e+10" in calls[0]


def test_names_are_bounded_in_utf8_bytes_as_well_as_characters() -> None:
    emoji = "\U0001f600" * 40  # 40 characters, 160 bytes: under 100 characters, over 128 bytes
    found = errors(BASE.replace("name: s", f"name: {emoji}"))
    assert found == ["x.yaml:2:1: name: expected at most 128 bytes of UTF-8, got 160 bytes"]
    assert errors(BASE.replace("name: s", "name: " + "\U0001f600" * 32)) == []  # 128 bytes


def test_precision_reads_percent_or_fraction() -> None:
    for text in ("5%", "0.05"):
        loaded = parse_text(BASE + f"precision: {text}\n", Path("x.yaml")).loaded
        assert loaded is not None
        assert loaded.scenario.precision == pytest.approx(0.05)
        assert loaded.scenario.repeat_cap == 20  # 4 x repeat (5), at least 20


def test_counts_and_precision_do_not_change_the_hash() -> None:
    plain = parse_text(BASE, Path("x.yaml")).loaded
    adaptive = parse_text(BASE + "precision: 1%\nmax_repeat: 50\n", Path("x.yaml")).loaded
    assert plain is not None
    assert adaptive is not None
    assert plain.scenario.hash == adaptive.scenario.hash
