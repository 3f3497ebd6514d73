"""bench.compare and `isobench compare`: the decision rule, the A/A false-positive rate, exits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import cli, compare
from tests import synthetic as report_synthetic

A_A_TRIALS = 1000
A_A_CV = 0.05


def test_verdict_needs_threshold_and_significance() -> None:
    assert compare.verdict(0.20, 0.001, False, 0.05, 0.05) == "regression"
    assert compare.verdict(-0.20, 0.001, False, 0.05, 0.05) == "improvement"
    assert compare.verdict(-0.20, 0.001, True, 0.05, 0.05) == "regression"  # rate dropped
    assert compare.verdict(0.20, 0.2, False, 0.05, 0.05) == "not significant"  # p too big
    assert compare.verdict(0.03, 0.001, False, 0.05, 0.05) == "not significant"  # too small
    assert compare.verdict(math.nan, 0.001, False, 0.05, 0.05) == "not significant"


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.1", 0.1), (" 12.5% ", 0.125)])
def test_parse_threshold(text: str, value: float) -> None:
    assert compare.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-5%", "abc", "nan"])
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"threshold|could not convert"):
        compare.parse_threshold(text)


def _aa_false_positive_rate(seed: int) -> float:
    """Two samples of the same lognormal process (5 % CV), n = 5..10: how often flagged?"""
    rng = np.random.default_rng(seed)
    sigma = math.sqrt(math.log(1 + A_A_CV**2))
    flagged = 0
    for _ in range(A_A_TRIALS):
        n_base, n_new = rng.integers(5, 11, 2)
        base = np.sort(rng.lognormal(0.0, sigma, n_base))
        new = np.sort(rng.lognormal(0.0, sigma, n_new))
        change = float(np.median(new) / np.median(base) - 1)
        p_value = compare.mann_whitney_p(base, new)
        decision = compare.verdict(change, p_value, False, compare.DEFAULT_THRESHOLD, compare.ALPHA)
        flagged += decision != "not significant"
    return flagged / A_A_TRIALS


def test_a_a_false_positive_rate_at_default_threshold() -> None:
    rate = _aa_false_positive_rate(seed=20240229)
    print(f"A/A false-positive rate: {rate:.1%} over {A_A_TRIALS} trials (5 % CV, n=5..10)")
    assert rate <= 0.05


def _aa_run_level_rate(correction: str, runs: int = 300, comparisons: int = 20) -> float:
    """Share of simulated A/A runs (``comparisons`` metrics, n=7, 5 % CV) flagging anything."""
    rng = np.random.default_rng(7)
    sigma = math.sqrt(math.log(1 + A_A_CV**2))
    flagged_runs = 0
    for _ in range(runs):
        base = np.sort(rng.lognormal(0.0, sigma, (comparisons, 7)), axis=1)
        new = np.sort(rng.lognormal(0.0, sigma, (comparisons, 7)), axis=1)
        change = np.median(new, axis=1) / np.median(base, axis=1) - 1
        p_values = np.array([compare.mann_whitney_p(b, n) for b, n in zip(base, new, strict=True)])
        q_values = compare.adjust(p_values, correction)
        flagged_runs += any(
            compare.verdict(c, q, False, compare.DEFAULT_THRESHOLD, compare.ALPHA)
            != "not significant"
            for c, q in zip(change, q_values, strict=True)
        )
    return flagged_runs / runs


def test_a_a_run_level_rate_needs_the_multiple_comparison_adjustment() -> None:
    raw = _aa_run_level_rate("none")
    adjusted = _aa_run_level_rate("bh")
    label = "A/A runs flagging anything (20 comparisons, n=7, 5 % CV)"
    print(f"{label}: raw {raw:.0%}, BH {adjusted:.1%}")
    assert adjusted <= 0.05
    assert raw > adjusted


def test_bh_still_catches_a_broad_regression() -> None:
    rng = np.random.default_rng(11)
    sigma = math.sqrt(math.log(1 + A_A_CV**2))
    base = np.sort(rng.lognormal(0.0, sigma, (20, 7)), axis=1)
    new = np.sort(rng.lognormal(np.log(1.2), sigma, (20, 7)), axis=1)
    p_values = np.array([compare.mann_whitney_p(b, n) for b, n in zip(base, new, strict=True)])
    q_values = compare.adjust(p_values, "bh")
    assert (q_values < compare.ALPHA).mean() >= 0.9


def _frame(values: dict[str, list[float]], scale: float = 1.0, digest: str = "h1") -> pd.DataFrame:
    rows = []
    for metric, xs in values.items():
        for i, x in enumerate(xs):
            rows.append(
                {
                    "run_id": "r",
                    "scenario": "s",
                    "scenario_hash": digest,
                    "backend": "native",
                    "variant": "host",
                    "metric": metric,
                    "unit": "s",
                    "repetition": i,
                    "warmup": False,
                    "value": x * scale,
                    "status": "ok",
                    "reason": "",
                    "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
                    "host": "h",
                }
            )
    return pd.DataFrame.from_records(rows)


def test_compare_through_frames_detects_a_clear_regression_and_only_that() -> None:
    rng = np.random.default_rng(1)
    times = list(rng.lognormal(0.0, 0.03, 10))
    rates = list(rng.lognormal(10.0, 0.03, 10))
    base = _frame({"startup.total": times, "syscall.null_rate": rates})
    new = _frame({"startup.total": [t * 1.3 for t in times], "syscall.null_rate": rates})
    table = compare.compare(base, new).set_index("metric")
    assert table.loc["startup.total", "verdict"] == "regression"
    assert table.loc["startup.total", "change"] == pytest.approx(0.3)
    assert table.loc["startup.total", "change_low"] > 0.2
    assert table.loc["syscall.null_rate", "verdict"] == "not significant"
    assert compare.has_regression(table.reset_index())


def test_compare_marks_one_sided_keys() -> None:
    base = _frame({"startup.total": [1.0, 1.1, 0.9]})
    new = _frame({"startup.ready": [1.0, 1.1, 0.9]})
    verdicts = set(compare.compare(base, new)["verdict"])
    assert verdicts == {"only in base", "only in new"}


def test_hash_mismatch_names_scenario_and_both_hashes() -> None:
    base = _frame({"startup.total": [1.0]}, digest="aaa")
    new = _frame({"startup.total": [1.0]}, digest="bbb")
    (mismatch,) = compare.hash_mismatches(base, new)
    assert str(mismatch) == "scenario 's' changed: base hash aaa != new hash bbb"


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    env = report_synthetic.synthetic_environment()
    base = report_synthetic.synthetic_frame(1200, seed=1)
    same = report_synthetic.synthetic_frame(1200, seed=2)
    slower = same.copy()
    is_startup = slower["metric"] == "startup.total"
    slower.loc[is_startup, "value"] = slower.loc[is_startup, "value"] * 1.5
    changed = same.copy()
    changed["scenario_hash"] = changed["scenario_hash"].where(
        changed["scenario"] != "disk-fio", "sha256:different"
    )
    return {
        name: report_synthetic.write_run(tmp_path / name, frame, env)
        for name, frame in {
            "base": base,
            "same": same,
            "slower": slower,
            "changed": changed,
        }.items()
    }


def test_cli_exit_0_without_regression(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["base"]), str(runs["same"])]) == 0
    assert "not significant" in capsys.readouterr().out


def test_cli_exit_1_on_regression(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["base"]), str(runs["slower"]), "--threshold", "10%"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out
    assert "startup.total" in out


def test_cli_exit_2_on_bad_input(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", str(runs["base"]), str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert cli.main(["compare", str(runs["base"]), str(runs["changed"])]) == 2
    err = capsys.readouterr().err
    assert "'disk-fio'" in err
    assert "sha256:different" in err
    assert cli.main(["compare", str(runs["base"]), str(runs["same"]), "--threshold", "x"]) == 2


def test_cli_markdown_and_json(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    cli.main(
        ["compare", str(runs["base"]), str(runs["same"]), "--format", "markdown", "-o", str(out)]
    )
    assert out.read_text().splitlines()[2].startswith("| scenario |")
    out_json = tmp_path / "table.json"
    cli.main(
        ["compare", str(runs["base"]), str(runs["same"]), "--format", "json", "-o", str(out_json)]
    )
    assert pd.read_json(out_json)["verdict"].notna().all()
