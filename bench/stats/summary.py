"""One group's descriptive statistics and stability warnings; the summary frame of a run.

* Median with its order-statistic CI (:func:`bench.stats.intervals.median_ci`).
* Outliers: modified Z-score 0.6745 * (x - median) / MAD > 3.5 (Iglewicz & Hoaglin); flagged,
  never removed. MAD == 0 flags nothing.
* Warnings, never filtering: too few samples, CV above the limit, a first repetition that
  stands out (warm-up), outliers kept; and the health warnings recorded with a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from bench import metrics
from bench.stats.intervals import MIN_SAMPLES, median_ci
from bench.stats.samples import KEYS, FloatArray, group_samples, measured, present_keys

CV_LIMIT: Final = 0.10
OUTLIER_Z: Final = 3.5
#: First repetition this much worse than the median of the rest (and an outlier) = warm-up.
WARMUP_EFFECT: Final = 0.10


@dataclass(frozen=True, slots=True)
class Limits:
    """Thresholds of the stability warnings."""

    cv: float = CV_LIMIT
    min_samples: int = MIN_SAMPLES


def summarize(
    frame: pd.DataFrame,
    limits: Limits | None = None,
    samples: Mapping[tuple[str, ...], FloatArray] | None = None,
    declared: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """One row per host x scenario x backend x variant x metric with statistics + warnings.

    ``declared``: directions (higher is better) of metrics scenarios declare outside the catalog.
    """
    limits = limits or Limits()
    units = _units(frame)
    records = []
    if samples is None:
        samples = group_samples(frame)
    for key, values in samples.items():
        host, scenario, backend, variant, metric = key
        hib = metrics.higher_is_better(metric, declared)
        row: dict[str, Any] = {
            "host": host,
            "scenario": scenario,
            "backend": backend,
            "variant": variant,
            "metric": metric,
            "unit": units.get(metric, ""),
            "family": metrics.family(metric),
            "higher_is_better": hib,
        }
        row.update(describe(values, hib, limits))
        negative = int(np.count_nonzero(values < 0))
        if negative and metrics.cannot_be_negative(metric):
            row["warnings"].append(
                f"{negative} of {len(values)} samples negative for a quantity that cannot"
                " be negative: the measurement's noise exceeds the effect (not a figure to quote)"
            )
        records.append(row)
    _say_where_noise_comes_from(records, limits)
    summary = pd.DataFrame.from_records(records, columns=SUMMARY_COLUMNS)
    return summary


def _say_where_noise_comes_from(records: list[dict[str, Any]], limits: Limits) -> None:
    """Noisy rows say whether native, on the same host and metric, was as noisy.

    When native's own CV is above the limit too, the spread is the host's (a noisy disk or
    neighbours), not the isolation layer's, and more repetitions will not make it go away.
    """
    native_cv = {
        (r["host"], r["scenario"], r["metric"]): r["cv"]
        for r in records
        if r["backend"] == "native" and np.isfinite(r["cv"])
    }
    for r in records:
        cv = native_cv.get((r["host"], r["scenario"], r["metric"]))
        noisy = np.isfinite(r["cv"]) and r["cv"] > limits.cv
        if not noisy or cv is None or r["backend"] == "native":
            continue
        if cv > limits.cv:
            why = f"native is as noisy here (CV {cv:.0%}): the host varies, not the isolation"
        else:
            why = f"native is steady here (CV {cv:.0%}): the spread is this environment's own"
        r["warnings"] = [*r["warnings"], why]


SUMMARY_COLUMNS: Final = [
    *KEYS[:4],
    "metric",
    "unit",
    "family",
    "higher_is_better",
    "n",
    "median",
    "ci_low",
    "ci_high",
    "ci_coverage",
    "mean",
    "std",
    "mad",
    "min",
    "max",
    "cv",
    "outliers",
    "warnings",
]


def _units(frame: pd.DataFrame) -> dict[str, str]:
    if frame.empty:
        return {}
    codes, names = pd.factorize(frame["metric"], use_na_sentinel=False)
    _, first = np.unique(codes, return_index=True)
    units = frame["unit"].to_numpy(dtype=object, na_value="")[first]
    return {str(names[c]): str(u) for c, u in zip(codes[first], units, strict=True)}


def describe(values: FloatArray, higher_is_better: bool, limits: Limits) -> dict[str, Any]:
    """Descriptive statistics and stability warnings of one group (values in run order)."""
    ordered = np.sort(values)
    n = len(values)
    median = float(np.median(ordered))
    low, high, coverage = median_ci(ordered)
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if n > 1 else np.nan
    mad = float(np.median(np.abs(values - median)))
    cv = std / abs(mean) if n > 1 and mean != 0 else np.nan
    outliers = int(np.count_nonzero(np.abs(modified_z(values)) > OUTLIER_Z))
    warnings: list[str] = []
    if n < limits.min_samples:
        warnings.append(f"only {n} sample{'s' if n != 1 else ''} (< {limits.min_samples})")
    if np.isfinite(cv) and cv > limits.cv:
        warnings.append(f"noisy: CV {cv:.0%} > {limits.cv:.0%}")
    first = warmup_effect(values, higher_is_better)
    if first is not None:
        warnings.append(f"first repetition {first:.2f}x worse than the rest (warm-up effect?)")
    if outliers:
        warnings.append(f"{outliers} outlier{'s' if outliers != 1 else ''} (kept)")
    return {
        "n": n,
        "median": median,
        "ci_low": low,
        "ci_high": high,
        "ci_coverage": coverage,
        "mean": mean,
        "std": std,
        "mad": mad,
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
        "cv": cv,
        "outliers": outliers,
        "warnings": warnings,
    }


def warmup_effect(values: FloatArray, higher_is_better: bool) -> float | None:
    """How many times worse the first value is than the rest, when it stands out; else None."""
    if len(values) < 3:
        return None
    first, rest = float(values[0]), values[1:]
    med = float(np.median(rest))
    if med == 0 or first == 0:
        return None
    worse = med / first if higher_is_better else first / med
    if worse < 1 + WARMUP_EFFECT:
        return None
    mad = float(np.median(np.abs(rest - med)))
    if mad > 0 and abs(0.6745 * (first - med) / mad) <= OUTLIER_Z:
        return None
    return worse


def modified_z(values: FloatArray) -> FloatArray:
    """Modified Z-scores 0.6745 * (x - median) / MAD (zeros when MAD == 0)."""
    if len(values) == 0:
        return np.zeros(0)
    med = np.median(values)
    mad = np.median(np.abs(values - med))
    if mad == 0:
        return np.zeros(len(values))
    return np.asarray(0.6745 * (values - med) / mad, dtype=np.float64)


def outlier_flags(frame: pd.DataFrame) -> pd.Series:
    """Per-row outlier flag (measured rows only; False elsewhere), by modified Z-score."""
    flags = pd.Series(False, index=frame.index, dtype=bool)
    rows = measured(frame)
    if rows.empty:
        return flags
    grouped = rows.groupby(list(present_keys(rows)), sort=False, observed=True)["value"]
    med = grouped.transform("median")
    mad = (
        (rows["value"] - med)
        .abs()
        .groupby([rows[k] for k in present_keys(rows)], sort=False, observed=True)
        .transform("median")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 0.6745 * (rows["value"] - med) / mad
    flags.loc[rows.index] = (z.abs() > OUTLIER_Z).fillna(False).to_numpy(dtype=bool) & (
        mad > 0
    ).to_numpy(dtype=bool)
    return flags


def run_warnings(environment: Mapping[str, Any]) -> list[str]:
    """Health warnings recorded with a run (swap, throttling...), defensive about shape."""
    found: list[str] = []
    raw = environment.get("warnings")
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        found.extend(str(w) for w in raw if w)
    health = environment.get("health")
    if isinstance(health, Mapping) and not found:
        # Older or partial environment files: derive the warnings from the deltas themselves.
        for name, label in (
            ("swap_delta", "the host swapped"),
            ("throttle_delta", "CPU throttled"),
        ):
            delta = health.get(name)
            if isinstance(delta, Mapping) and any(
                isinstance(v, int | float) and v > 0 for v in delta.values()
            ):
                found.append(f"{label} during the run: {dict(delta)}")
    if environment.get("interrupted"):
        found.append("the run was interrupted: some planned repetitions are missing")
    return found
