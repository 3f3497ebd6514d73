"""The isolation ladder on literal data: rung placement, step ratios, CIs, cumulative ratios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench import stats as st
from bench.report import ladder


def _frame(groups: dict[tuple[str, str], list[float]], metric: str, higher: bool) -> tuple:
    samples = {
        ("h", "s", b, v, metric): np.array(vals, dtype=float) for (b, v), vals in groups.items()
    }
    rows = pd.DataFrame(
        [
            {
                "host": "h",
                "scenario": "s",
                "backend": b,
                "variant": v,
                "metric": metric,
                "unit": "s",
                "higher_is_better": higher,
            }
            for (b, v) in groups
        ]
    )
    return rows, samples


@pytest.mark.parametrize(
    ("backend", "variant", "rung"),
    [
        ("native", "host", 0),
        ("sandbox", "layers=namespaces", 1),
        ("sandbox", "layers=namespaces+cgroup", 2),
        ("sandbox", "layers=namespaces+cgroup+seccomp", 3),
        ("sandbox", "layers=namespaces+seccomp", 3),
        ("docker", "runtime=runc,network=none,seccomp=default", 4),
        ("docker", "runtime=crun,network=none,seccomp=unconfined", 4),
        ("podman", "mode=rootless,storage=vfs,network=none", 5),
        ("docker", "runtime=runsc,platform=ptrace,network=none,seccomp=sentry", 6),
        ("vagrant", "cpus=2,memory=1GiB,accel=tcg", 7),
        ("fake", "x", None),
    ],
)
def test_rungs(backend, variant, rung):
    assert ladder.rung_of(backend, variant) == rung


def test_each_step_is_compared_with_the_representative_of_the_rung_below():
    rows, samples = _frame(
        {
            ("docker", "runtime=crun,seccomp=default"): [0.33, 0.30, 0.36],
            ("native", "host"): [0.001, 0.001, 0.001],
            ("docker", "runtime=runc,seccomp=default"): [0.30, 0.30, 0.30],
            ("sandbox", "layers=namespaces"): [0.010, 0.010, 0.010],
            ("docker", "runtime=runsc,platform=ptrace,seccomp=sentry"): [0.60, 0.60, 0.60],
        },
        "startup.total",
        higher=False,
    )
    found = ladder.steps(rows, samples)
    assert [(s.backend, s.variant.split(",")[0]) for s in found] == [
        ("native", "host"),
        ("sandbox", "layers=namespaces"),
        ("docker", "runtime=runc"),  # runc before crun: the rung's representative
        ("docker", "runtime=crun"),
        ("docker", "runtime=runsc"),
    ]
    bottom, ns, runc, crun, runsc = found
    assert math.isnan(bottom.ratio)
    assert bottom.cumulative == 1.0
    assert ns.ratio == pytest.approx(10.0)
    assert ns.below == "native/host"
    assert runc.ratio == pytest.approx(30.0)
    assert crun.below == "sandbox/layers=namespaces"  # both Docker runtimes vs the rung below
    assert crun.ratio == pytest.approx(33.0)
    assert runsc.below == "docker/runtime=runc,seccomp=default"
    assert runsc.ratio == pytest.approx(2.0)
    assert runsc.cumulative == pytest.approx(600.0)
    # Constant samples: the bootstrap interval collapses onto the ratio.
    assert (runsc.ratio_low, runsc.ratio_high) == (pytest.approx(2.0), pytest.approx(2.0))


def test_throughputs_are_inverted_so_greater_than_one_costs_more():
    rows, samples = _frame(
        {
            ("native", "host"): [4.0e6, 4.2e6, 4.4e6, 4.1e6, 4.3e6],
            ("sandbox", "layers=namespaces+cgroup+seccomp"): [3.0e6, 3.1e6, 2.9e6, 3.2e6, 3.0e6],
        },
        "syscall.null_rate",
        higher=True,
    )
    _, seccomp = ladder.steps(rows, samples)
    assert seccomp.ratio == pytest.approx(4.2e6 / 3.0e6)
    expected = st.ratio_ci(
        np.sort([4.0e6, 4.2e6, 4.4e6, 4.1e6, 4.3e6]), np.sort([3.0e6, 3.1e6, 2.9e6, 3.2e6, 3.0e6])
    )
    assert (seccomp.ratio_low, seccomp.ratio_high) == pytest.approx(expected)
    assert seccomp.ratio_low <= seccomp.ratio <= seccomp.ratio_high


def test_a_missing_rung_is_skipped_and_the_next_compares_with_the_nearest_below():
    rows, samples = _frame(
        {("native", "host"): [1.0, 1.0, 1.0], ("vagrant", "cpus=2"): [30.0, 31.0, 29.0]},
        "startup.total",
        higher=False,
    )
    _, vm = ladder.steps(rows, samples)
    assert vm.below == "native/host"
    assert vm.ratio == pytest.approx(30.0)


def test_ladder_table_needs_two_rungs_and_a_flag():
    rows, samples = _frame(
        {("native", "host"): [1.0, 1.0], ("docker", "runtime=runc"): [2.0, 2.0]},
        "startup.total",
        higher=False,
    )
    assert [t["metric"] for t in ladder.ladder_table(rows, samples)] == ["startup.total"]
    one, one_samples = _frame({("native", "host"): [1.0]}, "startup.total", higher=False)
    assert ladder.ladder_table(one, one_samples) == []
    envs = [{"scenarios": {"s": {"definition": {"ladder": True}}, "t": {"definition": {}}}}]
    assert ladder.flagged_scenarios(envs) == {"s"}
    assert ladder.section(rows, samples, [{"scenarios": {}}]) == []
    shown = ladder.section(rows, samples, envs)
    assert [r["ratio"] for r in shown[0]["rows"]] == ["bottom", "2\u00d7"]
    assert shown[0]["rows"][1]["width"] == "100.0"  # the only cost spans the whole axis
