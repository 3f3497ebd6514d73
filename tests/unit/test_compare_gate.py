"""The regression gate: run-level statistics, the decision, its calibration and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench import cli, compare
from bench import stats as st
from bench.scenario import loader
from tests import gate_calibration as calibration
from tests import synthetic as report_synthetic

ROOT = Path(__file__).resolve().parents[2]
#: The n the A/A calibration asks for (see docs/report.md, "How many samples the gate needs").
GATE_N = 10
#: Baseline runs the scheduled workflow compares against (bench.yml, BASELINE_RUNS).
BASELINE_RUNS = 5
TRIALS = 150


# --- thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("5%", 0.05), ("0.05", 0.05), (" 12.5% ", 0.125), ("0%", 0.0)]
)
def test_parse_threshold(text: str, value: float) -> None:
    assert compare.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "why"),
    [("5", "ambiguous"), ("1", "ambiguous"), ("abc", "not a number"), ("-5%", "non-negative")],
)
def test_parse_threshold_refuses_with_an_example(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        compare.parse_threshold(text)
    assert "--threshold 5%" in str(info.value)


@pytest.mark.parametrize("text", ["5", "abc"])
def test_cli_threshold_errors_are_clean(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", str(tmp_path), str(tmp_path), "--threshold", text])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: isobench compare" in err
    assert "e.g. --threshold 5%" in err
    assert "Traceback" not in err


# --- run-level statistics on literal samples ------------------------------------------------


def test_run_level_is_the_log_median_with_the_median_variance() -> None:
    values = np.array([1.0, 2.0, 4.0])
    level = st.run_level(values)
    assert level is not None
    assert level.level == pytest.approx(math.log(2.0))
    logs = np.log(values)
    assert level.within_variance == pytest.approx(np.pi / 2 * np.var(logs, ddof=1) / 3)
    assert st.run_level(np.array([1.0, 0.0])) is None  # no log scale


def test_ratio_level_adds_the_within_variances() -> None:
    top, bottom = np.array([4.0, 4.4, 3.6, 4.0, 4.2]), np.array([2.0, 2.1, 1.9, 2.0, 2.05])
    ratio = st.ratio_level(top, bottom)
    a, b = st.run_level(top), st.run_level(bottom)
    assert ratio is not None
    assert a is not None
    assert b is not None
    assert math.exp(ratio.level) == pytest.approx(2.0)
    assert ratio.within_variance == pytest.approx(a.within_variance + b.within_variance)


def _level(level: float, n: int = 10, unit: float = 0.01) -> st.RunLevel:
    return st.RunLevel(level, unit, n)


def test_one_run_per_side_uses_within_run_noise_only() -> None:
    noise = st.run_noise([_level(0.0)], [_level(0.1)])
    assert not noise.between_runs
    assert noise.between_var == 0.0
    change = st.shift([_level(0.0)], [_level(0.1)], noise)
    assert change.estimate == pytest.approx(0.1)
    assert change.se == pytest.approx(math.sqrt(0.002))
    assert change.df == pytest.approx(18.0)  # Welch with equal variances: n1 + n2 - 2


def test_several_runs_make_the_run_the_unit() -> None:
    base = [_level(x) for x in (0.0, 0.2, -0.2, 0.1, -0.1)]  # run levels spread 0.158
    noise = st.run_noise(base, [_level(0.0)])
    assert noise.between_runs
    assert noise.df == 4
    assert noise.per_run() == pytest.approx(np.var([0.0, 0.2, -0.2, 0.1, -0.1], ddof=1))
    change = st.shift(base, [_level(0.0)], noise)
    assert change.se == pytest.approx(math.sqrt(noise.per_run() * (1 / 5 + 1)))
    # more samples per run only shrink the within-run part
    assert noise.per_run(1000) == pytest.approx(noise.between_var + 0.01 / 1000)


def test_run_spread_never_below_the_within_run_noise() -> None:
    noise = st.run_noise([_level(0.0, unit=0.5), _level(0.0, unit=0.5)], [_level(0.0, unit=0.5)])
    assert noise.between_var == 0.0
    assert noise.per_run() == pytest.approx(0.05)


def test_moderation_lifts_quiet_estimates_and_keeps_noisy_ones() -> None:
    quiet = st.Noise(0.0001, 0.0, 10, 4.0, True)
    loud = st.Noise(0.0100, 0.0, 10, 4.0, True)
    within = st.Noise(0.0, 0.01, 10, 18.0, False)
    out = st.moderate([quiet, quiet, loud, within])
    assert out[0].per_run() == pytest.approx((4 * 0.0001 + 4 * 0.01 + 4 * 0.0001) / 12)
    assert out[0].df == 12.0
    assert out[2] == loud  # noisier than its family: own variance and df
    assert out[3] == within  # within-run noise is not pooled


def test_interval_detectable_change_and_family_level() -> None:
    change = st.Shift(0.10, 0.02, 10.0)
    low, high = st.shift_interval(change, 0.95)
    assert (low, high) == pytest.approx((0.10 - 2.228139 * 0.02, 0.10 + 2.228139 * 0.02))
    assert st.detectable_change(change, 0.95) == pytest.approx((2.228139 + 0.879058) * 0.02)
    assert st.family_level(10) == pytest.approx(0.995)
    assert math.isnan(st.shift_interval(st.Shift(0.0, math.nan, 3.0), 0.95)[0])


def test_hierarchical_bootstrap_resamples_runs() -> None:
    tight = [np.array([1.0, 1.01, 0.99, 1.0, 1.0]), np.array([1.0, 1.0, 1.01, 0.99, 1.0])]
    apart = [np.array([1.0, 1.01, 0.99, 1.0, 1.0]), np.array([2.0, 2.0, 2.01, 1.99, 2.0])]
    low_t, high_t = st.hierarchical_median_ci(tight)
    low_a, high_a = st.hierarchical_median_ci(apart)
    assert 0.99 <= low_t <= high_t <= 1.01
    # runs that disagree: the interval spans both run levels, not one run's noise
    assert low_a <= 1.01
    assert high_a >= 1.99
    assert math.isnan(st.hierarchical_median_ci(tight[:1])[0])


# --- the decision through frames -------------------------------------------------------------


def _rows(
    run: str, backend: str, variant: str, metric: str, values: Any, unit: str = "s"
) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run,
            "scenario": "s",
            "scenario_hash": "h1",
            "backend": backend,
            "variant": variant,
            "metric": metric,
            "unit": unit,
            "repetition": i,
            "warmup": False,
            "value": float(x),
            "status": "ok",
            "reason": "",
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
            "host": "h",
        }
        for i, x in enumerate(values)
    ]


def _run(run: str, seed: int, native: float = 1.0, docker: float = 1.3, n: int = 10) -> list[Any]:
    """One run: native and docker startup.total and syscall.null_rate, 3 % noise."""
    rng = np.random.default_rng(seed)
    noise = lambda: rng.lognormal(0.0, 0.03, n)  # noqa: E731
    return [
        *_rows(run, "native", "host", "startup.total", native * noise()),
        *_rows(run, "docker", "d", "startup.total", docker * noise()),
        *_rows(run, "native", "host", "syscall.null_rate", 1e6 / native * noise(), "calls/s"),
        *_rows(run, "docker", "d", "syscall.null_rate", 0.8e6 / native * noise(), "calls/s"),
    ]


def _frame(*runs: list[Any]) -> pd.DataFrame:
    return pd.DataFrame.from_records([row for run in runs for row in run])


def _at(table: pd.DataFrame, kind: str, backend: str, metric: str) -> pd.Series:
    hit = table[
        (table["kind"] == kind) & (table["backend"] == backend) & (table["metric"] == metric)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def test_a_docker_regression_is_flagged_in_the_ratio_and_the_median() -> None:
    table = compare.compare(_frame(_run("a", 1)), _frame(_run("b", 2, docker=1.6)))
    ratio = _at(table, "ratio", "docker", "startup.total")
    assert ratio["verdict"] == "regression"
    assert ratio["change"] == pytest.approx(1.6 / 1.3 - 1, abs=0.05)
    assert ratio["change_low"] > 0.05
    assert ratio["basis"] == "within-run"
    # alone in ratio:startup; alpha split over the 4 families (ratio/median x startup/syscall)
    assert ratio["confidence"] == pytest.approx(st.family_level(1, 0.05 / 4))
    assert _at(table, "median", "docker", "startup.total")["verdict"] == "regression"
    assert _at(table, "median", "native", "startup.total")["verdict"] == "not significant"
    assert compare.has_regression(table)


def test_a_slower_machine_moves_medians_not_ratios() -> None:
    base = _frame(_run("a", 1))
    slower = _frame(_run("b", 2, native=1.4, docker=1.3 * 1.4))  # everything 40 % slower
    gated = compare.compare(base, slower)
    assert _at(gated, "median", "native", "startup.total")["verdict"] == "regression"
    ratios_only = compare.compare(base, slower, gate_medians=False)
    assert not compare.has_regression(ratios_only)
    median = _at(ratios_only, "median", "native", "startup.total")
    assert (median["verdict"], median["note"]) == (
        "not gated",
        "host changed: raw medians not gated",
    )
    assert median["change"] == pytest.approx(0.4, abs=0.05)  # still reported


def test_between_run_noise_makes_the_run_the_unit() -> None:
    base = _frame(*(_run(f"a{i}", i, native=1 + 0.1 * (i % 3)) for i in range(5)))
    table = compare.compare(base, _frame(_run("b", 9, native=1.1)))
    native = _at(table, "median", "native", "startup.total")
    assert native["basis"] == "between-run (5+1 runs)"
    assert native["runs_base"] == 5
    assert native["n_base"] == 50
    assert native["between_spread"] > 0.05
    assert native["verdict"] == "not significant"


def test_detectable_change_and_needed_n_are_reported() -> None:
    rng = np.random.default_rng(3)
    base = _frame(_rows("a", "native", "host", "startup.total", rng.lognormal(0, 0.10, 5)))
    new = _frame(_rows("b", "native", "host", "startup.total", rng.lognormal(0, 0.10, 5)))
    row = compare.compare(base, new).iloc[0]
    assert row["detectable"] > 0.05
    needed = int(row["needed_n"])
    assert needed > 5
    noise = st.run_noise(
        [st.RunLevel(0, np.pi / 2 * 0.01, 5)], [st.RunLevel(0, np.pi / 2 * 0.01, 5)]
    )
    assert noise.df > 0  # the search below uses the same functions as compare
    text = "\n".join(compare_warnings(row))
    assert f"cannot see 5% here (detects {row['detectable']:.0%}); needs n >= {needed}" in text


def compare_warnings(row: pd.Series) -> list[str]:
    from bench.commands import compare as command  # noqa: PLC0415

    return command.warnings(pd.DataFrame([row]), 0.05)


def test_no_interval_below_five_samples_and_one_sided_keys() -> None:
    base = _frame(_rows("a", "native", "host", "startup.total", [1.0, 1.1, 0.9]))
    new = _frame(_rows("b", "native", "host", "startup.total", [2.0, 2.1, 1.9]))
    row = compare.compare(base, new).iloc[0]
    assert row["verdict"] == "not gated"
    assert "n = 3 < 5" in row["note"]
    assert math.isnan(row["change_low"])
    only = compare.compare(base, _frame(_rows("b", "native", "host", "startup.ready", [1.0])))
    assert set(only["verdict"]) == {"only in base", "only in new"}


def test_hash_mismatch_names_scenario_and_both_hashes() -> None:
    base = _frame(_rows("a", "native", "host", "startup.total", [1.0]))
    new = base.assign(scenario_hash="h2")
    (mismatch,) = compare.hash_mismatches(base, new)
    assert str(mismatch) == "scenario 's' changed: base hash h1 != new hash h2"


# --- hosts -------------------------------------------------------------------------------------


def _env(fingerprint: str | None, **facts: Any) -> dict[str, Any]:
    host: dict[str, Any] = {"hostname": "vm", "cpu_model": "A", "cpu_count": 2, **facts}
    if fingerprint:
        host["identity"] = {"fingerprint": fingerprint, "label": "vm", "basis": "machine-id"}
    return {"host": host}


def test_host_check_by_fingerprint_with_the_facts_that_differ() -> None:
    assert compare.check_hosts([_env("f1")], [_env("f1")]).same
    check = compare.check_hosts([_env("f1")], [_env("f2", cpu_model="B", cpu_count=16)])
    assert not check.same
    assert check.differences == (
        "host: vm (f1), vm (f2)",
        "cpu_model: A | B",
        "cpu_count: 16 | 2",
    )
    assert not check.notes


def test_host_check_falls_back_for_old_runs_and_says_so() -> None:
    check = compare.check_hosts([_env(None)], [_env(None)])
    assert check.same  # same hostname and hardware facts: all an old run lets us know
    assert "predate host fingerprints" in check.notes[0]
    other = compare.check_hosts([_env(None)], [_env(None, cpu_count=16)])
    assert not other.same  # same hostname "vm", different hardware: two hosts


# --- calibration: A/A false positives, detection, the shipped n ------------------------------


@pytest.mark.parametrize("profile", calibration.PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("runs", [1, BASELINE_RUNS])
def test_a_a_false_positive_rate_per_gate_run(profile: calibration.Noise, runs: int) -> None:
    if runs == 1 and profile.between > 0:
        pytest.skip("one baseline run cannot see run-to-run noise: the workflow uses several")
    false_runs, _ = calibration.rates(profile, GATE_N, runs, TRIALS, seed=1, detect=False)
    print(f"{profile.name}, {runs} base run(s), n={GATE_N}: {false_runs:.1%} of A/A runs flag")
    assert false_runs <= 0.05


@pytest.mark.parametrize("runs", [1, BASELINE_RUNS])
def test_one_regression_among_forty_is_caught_at_the_gate_n(runs: int) -> None:
    _, detected = calibration.rates(calibration.PROFILES[0], GATE_N, runs, TRIALS, seed=2)
    print(f"+20 % among 40, 3 % noise, {runs} base run(s), n={GATE_N}: {detected:.1%} caught")
    assert detected >= 0.95


def test_shipped_gating_scenarios_use_the_calibrated_n() -> None:
    workflow = (ROOT / ".github" / "workflows" / "bench.yml").read_text()
    assert f"GATE_REPEAT: {GATE_N}" in workflow
    assert f"BASELINE_RUNS: {BASELINE_RUNS}" in workflow
    loaded = loader.read_file(ROOT / "scenarios" / "syscall.yaml").loaded
    assert loaded is not None
    assert loaded.scenario.repeat == GATE_N


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    env = report_synthetic.synthetic_environment()
    env["host"]["identity"] = {"fingerprint": "f1", "label": "synthetic-host", "basis": "test"}
    other = json.loads(json.dumps(env))
    other["host"].update(identity={"fingerprint": "f2"}, cpu_model="Other CPU", cpu_count=16)
    base = report_synthetic.synthetic_frame(1200, seed=1)
    same = report_synthetic.synthetic_frame(1200, seed=2)
    slower = same.copy()
    is_docker_start = (slower["metric"] == "startup.total") & (slower["backend"] == "docker")
    slower.loc[is_docker_start, "value"] = slower.loc[is_docker_start, "value"] * 1.5
    changed = same.copy()
    changed["scenario_hash"] = changed["scenario_hash"].where(
        changed["scenario"] != "disk-fio", "sha256:different"
    )
    made = {
        name: report_synthetic.write_run(tmp_path / name, frame, env)
        for name, frame in {
            "base": base,
            "same": same,
            "slower": slower,
            "changed": changed,
        }.items()
    }
    made["moved"] = report_synthetic.write_run(tmp_path / "moved", same, other)
    nightly = tmp_path / "nightly"
    for seed in range(3):
        frame = report_synthetic.synthetic_frame(1200, seed=10 + seed).assign(run_id=f"r{seed}")
        report_synthetic.write_run(nightly / f"r{seed}", frame, env)
    made["nightly"] = nightly
    return made


def test_cli_exit_0_without_regression(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["base"]), str(runs["same"])]) == 0
    out = capsys.readouterr().out
    assert "not significant" in out
    assert "99.4% within-run" in out or "within-run" in out


def test_cli_exit_1_on_regression(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["base"]), str(runs["slower"]), "--threshold", "10%"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out
    assert "startup.total" in out


def test_cli_rolling_baseline_directory(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["nightly"]), str(runs["same"])]) == 0
    captured = capsys.readouterr()
    assert "between-run (3+1 runs)" in captured.out
    assert "3 base run(s), 1 new run(s)" in captured.err


def test_cli_host_change_exits_2_with_the_facts_unless_allowed(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["base"]), str(runs["moved"])]) == 2
    err = capsys.readouterr().err
    assert "different hosts" in err
    assert "cpu_model: Other CPU | Synthetic CPU @ 2.0GHz" in err
    assert "--allow-host-change" in err
    status = cli.main(["compare", str(runs["base"]), str(runs["moved"]), "--allow-host-change"])
    assert status == 0
    assert "host changed: raw medians not gated" in capsys.readouterr().out


def test_cli_exit_2_on_bad_input(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["base"]), str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert cli.main(["compare", str(runs["base"]), str(runs["changed"])]) == 2
    err = capsys.readouterr().err
    assert "'disk-fio'" in err
    assert "sha256:different" in err


def test_cli_markdown_and_json(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    cli.main(
        ["compare", str(runs["base"]), str(runs["same"]), "--format", "markdown", "-o", str(out)]
    )
    lines = out.read_text().splitlines()
    assert lines[2].startswith("| kind | scenario |")
    assert "95%" not in out.read_text()  # every interval carries its own confidence
    out_json = tmp_path / "table.json"
    cli.main(
        ["compare", str(runs["base"]), str(runs["same"]), "--format", "json", "-o", str(out_json)]
    )
    table = pd.read_json(out_json)
    assert table["verdict"].notna().all()
    assert {"confidence", "basis", "detectable", "needed_n"} <= set(table.columns)
