"""`isobench export --format pytest-benchmark`: read back by pytest-benchmark itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import cli, export
from tests import synthetic as report_synthetic


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    frame = report_synthetic.synthetic_frame(1500)
    run = report_synthetic.write_run(
        tmp_path / "run", frame, report_synthetic.synthetic_environment()
    )
    out = tmp_path / "bench.json"
    assert cli.main(["export", "--format", "pytest-benchmark", str(run), "-o", str(out)]) == 0
    return out


def test_fields_github_action_benchmark_reads(exported: Path) -> None:
    # benchmark-action/github-action-benchmark (src/extract.ts, extractPytestResult) reads
    # benchmarks[].fullname, .stats.ops, .stats.stddev, .stats.mean and .stats.rounds.
    document = json.loads(exported.read_text())
    assert document["benchmarks"]
    for bench in document["benchmarks"]:
        stats = bench["stats"]
        assert isinstance(bench["fullname"], str)
        assert bench["fullname"]
        for field in ("ops", "stddev", "mean", "rounds", "min", "max", "median", "data"):
            assert field in stats
        assert stats["ops"] == pytest.approx(1 / stats["mean"])
        assert stats["rounds"] == len(stats["data"])


def test_throughput_is_exported_as_time_per_operation(exported: Path) -> None:
    document = json.loads(exported.read_text())
    by_name = {b["name"]: b for b in document["benchmarks"]}
    rate = by_name["syscall-rate::native[host]::syscall.null_rate[s/call]"]
    assert rate["extra_info"]["transform"] == "reciprocal"
    assert rate["stats"]["median"] == pytest.approx(1 / rate["extra_info"]["median"], rel=1e-3)
    memory = by_name["memory-idle::native[host]::memory.environment[B]"]
    assert memory["extra_info"]["transform"] == "identity"
    # lower is better everywhere: the slower VM has the larger exported mean
    vm = by_name["syscall-rate::vagrant[accel=tcg,cpus=2,memory=1024]::syscall.null_rate[s/call]"]
    assert vm["stats"]["mean"] > rate["stats"]["mean"]


def test_pytest_benchmark_compare_reads_the_file(exported: Path) -> None:
    tool = shutil.which("pytest-benchmark") or shutil.which("py.test-benchmark")
    command = [tool] if tool else [sys.executable, "-m", "pytest_benchmark.cli"]
    done = subprocess.run(
        [*command, "compare", str(exported), "--group-by", "group"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=exported.parent,
    )
    assert done.returncode == 0, done.stderr
    assert "syscall.null_rate[s/call]" in done.stdout
    assert "disk-fio::disk.seq_read" in done.stdout  # a group header


def test_export_skips_failed_and_warmup_rows() -> None:
    frame = report_synthetic.synthetic_frame(800)
    document = export.to_pytest_benchmark(frame, {})
    total = sum(b["stats"]["rounds"] for b in document["benchmarks"])
    measured = int(((frame["status"] == "ok") & ~frame["warmup"] & frame["value"].notna()).sum())
    assert total == measured
    assert all(np.isfinite(b["stats"]["mean"]) for b in document["benchmarks"])


def test_export_missing_run_exits_2(tmp_path: Path) -> None:
    assert cli.main(["export", str(tmp_path / "nope")]) == 2
