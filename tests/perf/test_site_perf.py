"""Scale: `isobench publish` over 1,000 runs x 500 rows in < 30 s and < 2 GiB (nox -s perf).

The history (1,000 synthetic run directories of ~500 rows over two hosts, each with the
report.html that `nox -s bench` leaves in a run) is generated once, outside the timing. The
figure is a fresh `isobench publish` process: imports, one columnar Parquet query over every
run, per-run ratios with their bootstrap CIs, the trend plots and every page; wall time and
peak RSS come from wait4().
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests import synthetic
from tests.perf import child

pytestmark = pytest.mark.perf

RUNS = 1_000
ROWS = 500
TIME_LIMIT_S = 30.0
MEMORY_LIMIT_B = 2 * 1024**3


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("history")
    synthetic.write_history(root, RUNS, ROWS, hosts=("ci-a", "ci-b"), report=True)
    return root


def test_publish_1000_runs(benchmark: Any, history: Path, tmp_path: Path) -> None:
    figures: dict[str, float] = {}

    def once() -> None:
        out = tmp_path / f"site-{len(figures)}"
        figures.update(child.measure("publish", str(history), "-o", str(out)))
        assert len(list((out / "runs").iterdir())) == RUNS

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(
        f"\n{RUNS} runs x {ROWS} rows: {figures['wall_s']:.2f} s wall, {figures['cpu_s']:.2f} s "
        f"CPU, peak RSS {figures['peak_rss_bytes'] / 2**20:.0f} MiB; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    assert figures["peak_rss_bytes"] < MEMORY_LIMIT_B
    assert figures["wall_s"] < TIME_LIMIT_S
