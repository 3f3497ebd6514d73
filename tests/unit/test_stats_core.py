"""bench.stats on literal samples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench import stats
from tests import synthetic as report_synthetic


def _frame(rows: list[tuple[str, str, str, float]], **extra: object) -> pd.DataFrame:
    """rows: (backend, variant, metric, value) for scenario 's' on host 'h'."""
    records = [
        {
            "run_id": "r1",
            "scenario": "s",
            "scenario_hash": "abc",
            "backend": b,
            "variant": v,
            "metric": m,
            "unit": "s" if m.startswith("startup") else "calls/s",
            "repetition": i,
            "warmup": False,
            "value": x,
            "status": "ok",
            "reason": "",
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
            "host": "h",
        }
        for i, (b, v, m, x) in enumerate(rows)
    ]
    frame = pd.DataFrame.from_records(records)
    for key, value in extra.items():
        frame[key] = value
    return frame


def test_median_ci_uses_binomial_ranks() -> None:
    values = np.arange(1.0, 11.0)
    low, high, coverage = stats.median_ci(values)
    assert (low, high) == (2.0, 9.0)
    assert coverage == pytest.approx(1 - 2 * 11 / 1024)


def test_median_ci_small_n_is_min_max_with_true_coverage() -> None:
    low, high, coverage = stats.median_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert (low, high) == (1.0, 5.0)
    assert coverage == pytest.approx(1 - 2 / 32)
    assert coverage < stats.CONFIDENCE


def test_median_ci_empty() -> None:
    low, high, coverage = stats.median_ci(np.zeros(0))
    assert math.isnan(low)
    assert math.isnan(high)
    assert coverage == 0.0


def test_describe_literal_sample_flags_outlier_without_dropping_it() -> None:
    result = stats.describe(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), False, stats.Limits())
    assert result["n"] == 5
    assert result["median"] == 3.0
    assert result["mad"] == 1.0
    assert result["mean"] == 22.0
    assert result["max"] == 100.0  # kept
    assert result["outliers"] == 1
    assert result["std"] == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert any("CV" in w for w in result["warnings"])
    assert any("outlier" in w for w in result["warnings"])


def test_describe_warns_about_few_samples() -> None:
    result = stats.describe(np.array([1.0, 1.0, 1.0]), False, stats.Limits(min_samples=5))
    assert result["warnings"] == ["only 3 samples (< 5)"]
    quiet = stats.describe(np.array([1.0, 1.0, 1.0]), False, stats.Limits(min_samples=3))
    assert quiet["warnings"] == []


def test_modified_z_matches_formula_and_handles_zero_mad() -> None:
    z = stats.modified_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert z[-1] == pytest.approx(0.6745 * 97)
    assert z[2] == 0.0
    assert stats.modified_z(np.array([5.0, 5.0, 5.0, 9.0])).tolist() == [0.0] * 4


@pytest.mark.parametrize(
    ("values", "higher", "expected"),
    [
        ([2.0, 1.0, 1.01, 0.99, 1.0, 1.02], False, 2.0),  # slow first run of a time
        ([0.5, 1.0, 1.01, 0.99, 1.0, 1.02], True, 2.0),  # low first run of a rate
        ([1.0, 1.0, 1.01, 0.99, 1.0, 1.02], False, None),
        ([0.5, 1.0, 1.01, 0.99, 1.0, 1.02], False, None),  # first is faster: no warning
        ([2.0, 1.0], False, None),  # too short to judge
    ],
)
def test_warmup_effect(values: list[float], higher: bool, expected: float | None) -> None:
    found = stats.warmup_effect(np.array(values), higher)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected, rel=0.02)


def test_summarize_counts_only_ok_non_warmup_rows() -> None:
    frame = _frame([("native", "host", "startup.total", x) for x in (1.0, 2.0, 3.0, 50.0, 9.0)])
    frame.loc[3, "warmup"] = True
    frame.loc[4, "status"] = "failed"
    frame.loc[4, "value"] = np.nan
    summary = stats.summarize(frame)
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["n"] == 3
    assert row["median"] == 2.0
    assert row["family"] == "startup"
    assert not row["higher_is_better"]


def test_group_samples_keeps_repetition_order_and_splits_keys() -> None:
    frame = _frame(
        [
            ("native", "host", "startup.total", 3.0),
            ("docker", "runtime=runc", "startup.total", 7.0),
            ("native", "host", "startup.total", 1.0),
        ]
    )
    frame["repetition"] = [2, 0, 1]
    groups = stats.group_samples(frame)
    assert groups[("h", "s", "native", "host", "startup.total")].tolist() == [1.0, 3.0]
    assert groups[("h", "s", "docker", "runtime=runc", "startup.total")].tolist() == [7.0]


def test_overhead_ratio_is_oriented_so_above_one_costs_more() -> None:
    rows = [("native", "host", "startup.total", 1.0 + d) for d in (0, 0.01, -0.01, 0.02, -0.02)]
    rows += [
        ("docker", "runtime=runc", "startup.total", 1.2 + d) for d in (0, 0.01, -0.01, 0.02, -0.02)
    ]
    rows += [("native", "host", "syscall.null_rate", 100.0 + d) for d in (0, 1, -1, 2, -2)]
    rows += [("docker", "runtime=runc", "syscall.null_rate", 80.0 + d) for d in (0, 1, -1, 2, -2)]
    frame = _frame(rows)
    summary = stats.summarize(frame)
    table = stats.overhead(summary, stats.group_samples(frame)).set_index("metric")
    time_row, rate_row = table.loc["startup.total"], table.loc["syscall.null_rate"]
    assert time_row["ratio"] == pytest.approx(1.2)
    assert time_row["difference"] == pytest.approx(0.2)
    assert rate_row["ratio"] == pytest.approx(100 / 80)  # throughput inverted
    assert rate_row["difference"] == pytest.approx(-20.0)
    for row in (time_row, rate_row):
        assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"]
        assert row["ratio_low"] > 1.0


def test_bootstrap_medians_match_brute_force_resampling() -> None:
    rng = np.random.default_rng(3)
    values = np.sort(rng.lognormal(0.0, 0.3, 11))
    exact = stats.bootstrap_medians(values, np.random.default_rng(1).random(100_000))
    brute = np.median(values[np.random.default_rng(2).integers(0, 11, (100_000, 11))], axis=1)
    for q in (2.5, 25, 50, 75, 97.5):
        assert np.percentile(exact, q) == pytest.approx(np.percentile(brute, q), rel=0.01)


def test_ratio_ci_is_deterministic_and_covers_the_true_ratio() -> None:
    rng = np.random.default_rng(7)
    a = np.sort(rng.lognormal(np.log(2.0), 0.05, 30))
    b = np.sort(rng.lognormal(np.log(1.0), 0.05, 30))
    first = stats.ratio_ci(a, b)
    assert first == stats.ratio_ci(a, b)
    assert first[0] < 2.0 < first[1]
    assert all(math.isnan(x) for x in stats.ratio_ci(a, np.zeros(0)))


def test_outlier_flags_are_per_row_and_never_drop() -> None:
    frame = _frame([("native", "host", "startup.total", x) for x in (1.0, 1.1, 0.9, 1.0, 9.0)])
    flags = stats.outlier_flags(frame)
    assert flags.tolist() == [False, False, False, False, True]
    assert len(frame) == 5


def test_run_warnings_reads_warnings_health_and_interruption() -> None:
    assert stats.run_warnings({"warnings": ["the host swapped"]}) == ["the host swapped"]
    derived = stats.run_warnings({"health": {"swap_delta": {"pswpin": 3}, "throttle_delta": {}}})
    assert derived
    assert "swapped" in derived[0]
    assert stats.run_warnings({"interrupted": True})[0].startswith("the run was interrupted")
    assert stats.run_warnings({"warnings": "not a list", "health": 3}) == []
    assert stats.run_warnings({}) == []


def test_status_counts_lists_failures_with_reasons() -> None:
    frame = _frame([("native", "host", "startup.total", x) for x in (1.0, 2.0, 3.0)])
    frame.loc[0, ["status", "reason"]] = ["timeout", "exceeded 5 s"]
    frame.loc[1, ["status", "reason"]] = ["timeout", "exceeded 5 s"]
    counts = stats.status_counts(frame)
    assert counts[["status", "reason", "rows"]].values.tolist() == [["timeout", "exceeded 5 s", 2]]


def test_summarize_scales_to_synthetic_frame() -> None:
    frame = report_synthetic.synthetic_frame(3000)
    summary = stats.summarize(frame)
    assert set(summary["backend"]) == {"native", "docker", "vagrant"}
    assert (summary["n"] >= 5).all()
    assert (summary["ci_low"] <= summary["median"]).all()
    assert (summary["median"] <= summary["ci_high"]).all()


def test_batched_ratio_cis_equal_one_at_a_time():
    rng = np.random.default_rng(3)
    pairs = []
    for n_num, n_den in [(5, 5), (5, 5), (6, 5), (7, 10), (1, 3), (4, 4), (0, 3)]:
        num = np.sort(rng.lognormal(0, 0.2, n_num))
        den = np.sort(rng.lognormal(0, 0.2, n_den))
        pairs.append((num, den))
    pairs.append((np.sort(np.array([1.0, 2.0, 3.0])), np.zeros(3)))  # zero medians: no ratio
    batched = stats.ratio_cis(pairs)
    for (num, den), (low, high) in zip(pairs, batched, strict=True):
        expected = stats.ratio_ci(num, den)
        np.testing.assert_allclose([low, high], expected, equal_nan=True)


def test_a_noisy_row_says_whether_native_was_as_noisy() -> None:
    steady = [1.0, 1.01, 0.99, 1.0, 1.0]
    noisy = [1.0, 1.5, 0.6, 1.3, 0.8]
    rows = [("native", "host", "disk.seq_read", x) for x in noisy]
    rows += [("docker", "a", "disk.seq_read", x) for x in noisy]
    rows += [("native", "host", "syscall.null_rate", x) for x in steady]
    rows += [("docker", "a", "syscall.null_rate", x) for x in noisy]
    summary = stats.summarize(_frame(rows)).set_index(["backend", "metric"])
    host_noise = summary.loc[("docker", "disk.seq_read"), "warnings"]
    assert any("native is as noisy here" in w for w in host_noise)
    own_noise = summary.loc[("docker", "syscall.null_rate"), "warnings"]
    assert any("native is steady here" in w for w in own_noise)
    own = summary.loc[("native", "disk.seq_read"), "warnings"]
    assert any("noisy" in w for w in own)
    assert not any("native is" in w for w in own)


def test_negative_samples_of_a_catalog_quantity_are_flagged_not_dropped() -> None:
    metric = "density.available_per_instance"
    rows = [("docker", "n=1", metric, x) for x in (-4.0e7, -2.0e7, 1.0e7)]
    rows += [("docker", "n=32", metric, x) for x in (2.0e7, 2.2e7, 2.1e7)]
    rows += [("cmd", "a", "command.delta_celsius", x) for x in (-1.0, -2.0, -1.5)]
    summary = stats.summarize(_frame(rows)).set_index(["variant", "metric"])
    flagged = summary.loc[("n=1", metric)]
    assert flagged["n"] == 3
    assert flagged["min"] == -4.0e7  # kept
    assert any("2 of 3 samples negative" in w for w in flagged["warnings"])
    assert not any("negative" in w for w in summary.loc[("n=32", metric), "warnings"])
    # a metric a scenario declares for its own command may be signed
    assert not any("negative" in w for w in summary.loc[("a", "command.delta_celsius"), "warnings"])
