"""Scale: `isobench report` over 1,000,000 sample rows in < 10 s and < 2 GiB (nox -s perf).

The run directory (a realistic mix: 4 scenarios, native + 2 Docker runtimes + a TCG VM,
warm-ups and a few failures, 55 series of ~18,000 samples) is generated once, outside the
timing. Two figures are measured:

* end to end: a fresh `isobench report RUN -o report.html` process (imports, Parquet load,
  statistics, plots, HTML), wall time and peak RSS from wait4();
* in process: report.load_runs + render_html, the part a library user pays.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

import pytest

from bench import report, results
from tests import synthetic as report_synthetic
from tests.perf import child

pytestmark = pytest.mark.perf

ROWS = 1_000_000
TIME_LIMIT_S = 10.0
MEMORY_LIMIT_B = 2 * 1024**3


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = report_synthetic.synthetic_frame(ROWS)
    assert len(frame) >= 0.99 * ROWS
    return report_synthetic.write_run(
        tmp_path_factory.mktemp("perf") / "run", frame, report_synthetic.synthetic_environment()
    )


def test_report_end_to_end_1m_rows(benchmark: Any, big_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    figures: dict[str, float] = {}

    def once() -> None:
        figures.update(child.measure("report", str(big_run), "-o", str(out)))

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(
        f"\n1M rows end to end: {figures['wall_s']:.2f} s wall, {figures['cpu_s']:.2f} s CPU, "
        f"peak RSS {figures['peak_rss_bytes'] / 2**20:.0f} MiB, "
        f"report {out.stat().st_size / 2**20:.1f} MiB; load average {os.getloadavg()[0]:.1f}"
    )
    assert out.stat().st_size < 20 * 2**20  # plots stay bounded at scale
    assert figures["peak_rss_bytes"] < MEMORY_LIMIT_B
    assert figures["wall_s"] < TIME_LIMIT_S


def test_report_in_process_1m_rows(benchmark: Any, big_run: Path) -> None:
    def once() -> str:
        frame, envs = report.load_runs([big_run])
        return report.render_html(frame, envs)

    html = benchmark.pedantic(once, rounds=2, iterations=1, warmup_rounds=0)
    assert f"({len(results.load([big_run])):,} rows)" in html  # every row was read
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    benchmark.extra_info["process_peak_rss_bytes"] = peak
    assert benchmark.stats.stats.max < TIME_LIMIT_S
