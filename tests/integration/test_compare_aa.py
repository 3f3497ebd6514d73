"""Real A/A: the native backend measured as two interleaved series; the gate must stay quiet.

Two *consecutive* runs on a shared host are not an A/A test of the statistics: when the load
changes between them (here, other jobs' VMs), the gate rightly reports the difference. So the
two series alternate run by run (A B A B ...), like the runner interleaves backends, and each
side is the union of its runs (`bench.results.load` takes several run directories).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import cli, compare, results

pytestmark = pytest.mark.integration

ROUNDS = 4
SCENARIO = """\
format_version: 1
name: aa-syscall
description: tiny syscall workload for the A/A check of `isobench compare`
workload:
  kind: syscall
  null_calls: 200000
  mixed_calls: 20000
backends: [native]
repeat: 3
warmup: 1
timeout: 60
"""


def _run(scenario: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    status = cli.main(["run", str(scenario), "--backend", "native", "--out", str(out), "--plain"])
    assert status == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert run_dir.is_dir()
    return run_dir


def test_native_interleaved_a_a_flags_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "aa.yaml"
    scenario.write_text(SCENARIO)
    side_a, side_b = [], []
    for _ in range(ROUNDS):
        side_a.append(_run(scenario, tmp_path / "a", capsys))
        side_b.append(_run(scenario, tmp_path / "b", capsys))
    table = compare.compare(results.load(side_a), results.load(side_b))
    print(f"\nload average {os.getloadavg()}")
    print(table[["metric", "n_base", "n_new", "change", "p_value", "verdict"]].to_string())
    assert set(table["metric"]) == {"syscall.null_rate", "syscall.mixed_rate"}
    assert (table["n_base"] == 3 * ROUNDS).all()
    assert (table["verdict"] == "not significant").all()
    # the CLI reads real run directories (exit 2 would mean it rejected them as bad input)
    assert cli.main(["compare", str(side_a[-1]), str(side_b[-1])]) != 2
