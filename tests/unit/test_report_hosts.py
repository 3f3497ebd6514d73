"""Hosts are fingerprints, ratios live within one run: the two-host merge of issue 9.

Two machines both called ``vm`` (a 2-core and a 16-core host) each measure Docker's
null-syscall rate at 1.32x native. Merged by hostname, their native samples pooled into one
baseline and the ratio came out wrong, with each host's banners printed for "one" host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench import cli, report, results, schema
from bench import stats as st
from tests import synthetic

NOISE = np.array([0.98, 0.99, 1.0, 1.01, 1.02])


def rows(run_id: str, native: float, docker: float, n_docker: int = 5) -> pd.DataFrame:
    """Literal null-syscall samples of one run: native and one Docker variant."""
    values = [(("native", "host"), native * NOISE)]
    values.append((("docker", "runc"), docker * np.resize(NOISE, n_docker)))
    records: list[dict[str, Any]] = [
        {
            "run_id": run_id,
            "scenario": "syscall",
            "scenario_hash": "sha256:abc",
            "backend": backend,
            "variant": variant,
            "metric": "syscall.null_rate",
            "unit": "calls/s",
            "repetition": i,
            "warmup": False,
            "value": float(v),
            "status": "ok",
            "reason": "",
            "timestamp": "2026-01-01T00:00:00+00:00",
        }
        for (backend, variant), series in values
        for i, v in enumerate(series)
    ]
    return schema.coerce(pd.DataFrame.from_records(records))


def environment(run_id: str, fingerprint: str, cores: int) -> dict[str, Any]:
    env = synthetic.synthetic_environment("vm", run_id, fingerprint)
    env["host"]["cpu_count"] = cores
    env["warnings"] = []
    return env


@pytest.fixture
def two_hosts(tmp_path: Path) -> tuple[Path, Path]:
    # 2-core host: 4.4 M/s native; 16-core host: 9 M/s native, more Docker repetitions.
    small = synthetic.write_run(
        tmp_path / "A", rows("A", 4.4e6, 4.4e6 / 1.32), environment("A", "a" * 16, 2)
    )
    big = synthetic.write_run(
        tmp_path / "B", rows("B", 9.0e6, 9.0e6 / 1.32, 9), environment("B", "b" * 16, 16)
    )
    return small, big


def test_two_hosts_named_vm_stay_two_hosts_with_their_own_ratios(
    two_hosts: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "summary.json"
    assert cli.main(["report", *map(str, two_hosts), "--format", "json", "-o", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert {r["host"] for r in summary} == {"vm (aaaaaaaa)", "vm (bbbbbbbb)"}
    docker = {r["host"]: r for r in summary if r["backend"] == "docker"}
    for row in docker.values():
        assert row["ratio"] == pytest.approx(1.32, rel=1e-9)
        assert row["ratio_runs"] == 1
        assert row["ratio_low"] <= 1.32 <= row["ratio_high"]


def test_pooling_the_two_baselines_would_have_been_wrong(two_hosts: tuple[Path, Path]) -> None:
    frame = results.load(two_hosts)
    pooled = frame.assign(host="vm")  # what a hostname key did
    native = pooled[pooled["backend"] == "native"]["value"].median()
    docker = pooled[pooled["backend"] == "docker"]["value"].median()
    assert abs(native / docker - 1.32) > 0.3  # the pooled "ratio" (0.99): neither host's
    # Even mislabelled as one host, ratios are formed within each run, never across.
    table = report.summary_table(pooled)
    row = table[table["backend"] == "docker"].iloc[0]
    assert row["ratio"] == pytest.approx(1.32, rel=1e-9)
    assert row["ratio_runs"] == 2
    assert np.isnan(row["ratio_low"])  # two runs: too few runs for a between-run CI


def test_banners_are_per_host_and_said_once(two_hosts: tuple[Path, Path], tmp_path: Path) -> None:
    frame, envs = report.load_runs(list(two_hosts))
    for env in envs:
        env["backends"]["vagrant"]["host_virtualized"] = True
    html = report.render_html(frame, envs)
    assert html.count("is itself virtualized") == 2
    assert "The host vm (aaaaaaaa) is itself virtualized" in html
    assert "The host vm (bbbbbbbb) is itself virtualized" in html
    # Two runs of one host: one host, its caveat said once.
    again = synthetic.write_run(
        tmp_path / "A2", rows("A2", 4.4e6, 4.4e6 / 1.32), environment("A2", "a" * 16, 2)
    )
    frame, envs = report.load_runs([two_hosts[0], again])
    assert set(frame["host"].astype(str)) == {"vm (aaaaaaaa)"}
    html = report.render_html(frame, envs)
    assert html.count("is itself virtualized") == 1


def test_runs_without_identity_are_told_apart_by_hardware() -> None:
    small = {"host": {"hostname": "vm", "cpu_count": 2, "memory_bytes": 2**31}}
    big = {"host": {"hostname": "vm", "cpu_count": 16, "memory_bytes": 2**36}}
    assert results.host_key(small) != results.host_key(big)
    assert results.host_key(small) == results.host_key(dict(small))
    assert results.host_key(small).startswith("vm (hw ")
    # Nothing to go on: each run is its own host.
    assert results.host_key({}, "r1") != results.host_key({}, "r2")


def test_native_from_another_run_is_never_a_baseline() -> None:
    frame = pd.concat([rows("A", 4.4e6, 3.3e6), rows("B", 9e6, 6.8e6)], ignore_index=True)
    frame = frame[~((frame["run_id"] == "A") & (frame["backend"] == "native"))]
    frame = frame[~((frame["run_id"] == "B") & (frame["backend"] == "docker"))]
    frame = frame.assign(host="h")  # one host, two runs, no run has both
    table = report.summary_table(frame)
    assert np.isnan(table[table["backend"] == "docker"]["ratio"].iloc[0])


def test_ratio_ci_needs_five_samples_a_side() -> None:
    short = rows("A", 4.4e6, 3.3e6).groupby("backend").head(4).assign(host="h")
    table = st.overhead(
        st.summarize(short, samples=st.group_samples(short)),
        st.group_samples(short),
        by_run=st.group_samples(short, st.RUN_KEYS),
    )
    assert np.isfinite(table["ratio"].iloc[0])
    assert np.isnan(table["ratio_low"].iloc[0])


def test_five_runs_give_a_between_run_ci_with_the_run_as_unit() -> None:
    factors = [1.28, 1.30, 1.32, 1.34, 1.36]
    frame = pd.concat(
        [rows(f"R{i}", 4.4e6, 4.4e6 / f) for i, f in enumerate(factors)], ignore_index=True
    ).assign(host="h")
    row = report.summary_table(frame).query("backend == 'docker'").iloc[0]
    assert row["ratio"] == pytest.approx(1.32)
    assert row["ratio_runs"] == 5
    assert 1.28 <= row["ratio_low"] <= row["ratio_high"] <= 1.36
    assert (row["ratio_spread_low"], row["ratio_spread_high"]) == pytest.approx((1.28, 1.36))
    assert row["runs"] == 5


def test_html_labels_real_coverage_and_within_run_intervals() -> None:
    five = rows("A", 4.4e6, 3.3e6).assign(host="h")
    html = report.render_html(five, [{}])
    assert "94 % CI, within run" in html  # n = 5: [min, max] covers 1 - 2 * 0.5**5
    assert "95 % CI, within run" not in html
    assert "95 % bootstrap CI, within one run" in html  # the ratio, 5 samples a side
    four = five.groupby("backend").head(4)
    html = report.render_html(four, [{}])
    assert "88 % CI, within run" in html
    assert "no CI: &lt; 5 samples a side" in html
    markdown = report.export_summary(report.summary_table(four), "markdown")
    assert "(88 % CI)" in markdown
    assert "bootstrap" not in markdown.split("\n", 2)[2]  # no ratio CI below n = 5


def test_merged_runs_show_the_between_run_spread() -> None:
    frame = pd.concat([rows("A", 4.4e6, 3.3e6), rows("B", 4.0e6, 3.1e6)], ignore_index=True).assign(
        host="h"
    )
    html = report.render_html(frame, [{}])
    assert "samples of 2 runs pooled" in html
    assert "run medians [4, 4.4] M calls/s" in html
    assert "median of 2 runs&#39; ratios" in html
