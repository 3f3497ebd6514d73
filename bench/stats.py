"""Statistics over the tidy sample frame: pure functions, no I/O.

Choices (documented in docs/report.md):

* Only ``status == "ok"`` and non-warmup rows with a finite value are measured; the rest is
  counted elsewhere, never silently dropped.
* Median 95 % CI: distribution-free order-statistic interval (binomial ranks). For n < 6 no
  pair of ranks reaches 95 %: the interval is then [min, max] and ``ci_coverage`` says the true
  coverage (1 - 2 * 0.5**n).
* Ratio of medians CI: percentile bootstrap (fixed seed, 2000 draws) using the *exact*
  bootstrap distribution of the sample median (Efron 1982): the resampled median is an order
  statistic whose law is binomial, so drawing it costs O(n + B) instead of O(n * B) and stays
  fast at a million rows. For even n the two middle order statistics share one uniform draw.
* Outliers: modified Z-score 0.6745 * (x - median) / MAD > 3.5 (Iglewicz & Hoaglin); flagged,
  never removed. MAD == 0 flags nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from bench import metrics

FloatArray = npt.NDArray[np.float64]

#: Grouping of the summary: one row per host x scenario x backend x variant x metric.
KEYS: Final = ("host", "scenario", "backend", "variant", "metric")
#: The same, per run: ratios to native are only ever formed inside one run.
RUN_KEYS: Final = ("host", "run_id", "scenario", "backend", "variant", "metric")
NATIVE: Final = "native"
CONFIDENCE: Final = 0.95
BOOTSTRAP_DRAWS: Final = 2000
SEED: Final = 20240229
CV_LIMIT: Final = 0.10
MIN_SAMPLES: Final = 5
OUTLIER_Z: Final = 3.5
#: First repetition this much worse than the median of the rest (and an outlier) = warm-up.
WARMUP_EFFECT: Final = 0.10


@dataclass(frozen=True, slots=True)
class Limits:
    """Thresholds of the stability warnings."""

    cv: float = CV_LIMIT
    min_samples: int = MIN_SAMPLES


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that count as measurements: ok, not warmup, finite value."""
    return frame.loc[measured_mask(frame)]


def median_ci(sorted_values: FloatArray, level: float = CONFIDENCE) -> tuple[float, float, float]:
    """Order-statistic CI of the median of ``sorted_values``: (low, high, actual coverage)."""
    n = len(sorted_values)
    if n == 0:
        return (np.nan, np.nan, 0.0)
    alpha = 1.0 - level
    # Smallest j with P(B <= j) >= alpha/2 (B ~ Bin(n, 1/2)) gives coverage >= level for the
    # ranks (j, n - j + 1); when j would be 0 we fall back to [min, max].
    j = max(int(sps.binom.ppf(alpha / 2, n, 0.5)), 1)
    k = n - j + 1
    coverage = float(sps.binom.cdf(k - 1, n, 0.5) - sps.binom.cdf(j - 1, n, 0.5))
    return (float(sorted_values[j - 1]), float(sorted_values[k - 1]), coverage)


def _order_stat_indices(n: int, m: int, uniforms: FloatArray) -> npt.NDArray[np.intp]:
    """0-based ranks of the resampled ``m``-th order statistic of a size-``n`` sample.

    P(resampled m-th order statistic <= x_(j)) = P(Bin(n, j/n) >= m): the index is the inverse
    of that CDF at each uniform. Outside m +- 10 sqrt(n) ranks the CDF is 0 or 1 to within
    1e-20, so the binomial tail is evaluated only inside that window (a 20,000-sample group
    needs ~2,800 evaluations, not 20,000).
    """
    half_width = int(10 * np.sqrt(n)) + 10
    ranks = np.arange(1, n + 1)
    cdf = np.where(ranks < m, 0.0, 1.0)
    window = slice(max(m - half_width, 1) - 1, min(m + half_width, n))
    cdf[window] = sps.binom.sf(m - 1, n, ranks[window] / n)
    cdf[-1] = 1.0
    return np.minimum(np.searchsorted(cdf, uniforms, side="left"), n - 1)


def _median_indices(n: int, uniforms: FloatArray) -> tuple[npt.NDArray[np.intp], ...]:
    """The one (odd n) or two (even n) order statistics a resampled median averages."""
    if n % 2:
        return (_order_stat_indices(n, (n + 1) // 2, uniforms),)
    return (_order_stat_indices(n, n // 2, uniforms), _order_stat_indices(n, n // 2 + 1, uniforms))


def bootstrap_medians(sorted_values: FloatArray, uniforms: FloatArray) -> FloatArray:
    """Bootstrap replicates of the median, drawn from its exact resampling law."""
    picks = [sorted_values[idx] for idx in _median_indices(len(sorted_values), uniforms)]
    return picks[0] if len(picks) == 1 else (picks[0] + picks[1]) / 2.0


def ratio_ci(
    numerator: FloatArray,
    denominator: FloatArray,
    seed: int = SEED,
    draws: int = BOOTSTRAP_DRAWS,
    level: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of median(numerator) / median(denominator) (sorted inputs)."""
    if len(numerator) == 0 or len(denominator) == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    num = bootstrap_medians(numerator, rng.random(draws))
    den = bootstrap_medians(denominator, rng.random(draws))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = num / den
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) == 0:
        return (np.nan, np.nan)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return (float(low), float(high))


def difference_ci(
    mine: FloatArray,
    base: FloatArray,
    seed: int = SEED,
    draws: int = BOOTSTRAP_DRAWS,
    level: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of median(mine) - median(base) (sorted inputs, independent)."""
    if len(mine) == 0 or len(base) == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    differences = bootstrap_medians(mine, rng.random(draws)) - bootstrap_medians(
        base, rng.random(draws)
    )
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return (float(low), float(high))


def ratio_cis(
    pairs: Sequence[tuple[FloatArray, FloatArray]],
    seed: int = SEED,
    draws: int = BOOTSTRAP_DRAWS,
    level: float = CONFIDENCE,
) -> FloatArray:
    """:func:`ratio_ci` of many (numerator, denominator) pairs at once: an array (len, 2).

    The same numbers as calling :func:`ratio_ci` on each pair (the same seed gives every pair
    the same uniforms, so the resampled ranks depend only on the sample sizes): pairs are
    batched by their two sizes and resampled as 2-D arrays. This is what keeps a site of
    thousands of runs fast.
    """
    out = np.full((len(pairs), 2), np.nan)
    if not pairs:
        return out
    rng = np.random.default_rng(seed)
    u_num, u_den = rng.random(draws), rng.random(draws)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, (num, den) in enumerate(pairs):
        if len(num) and len(den):
            by_size.setdefault((len(num), len(den)), []).append(i)
    tail = (1.0 - level) / 2 * 100
    for (n_num, n_den), members in by_size.items():
        num_idx, den_idx = _median_indices(n_num, u_num), _median_indices(n_den, u_den)
        for start in range(0, len(members), 2048):  # bounded memory: 2048 x draws per array
            chunk = members[start : start + 2048]
            nums = np.stack([pairs[i][0] for i in chunk])
            dens = np.stack([pairs[i][1] for i in chunk])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = _batch_medians(nums, num_idx) / _batch_medians(dens, den_idx)
            finite = np.isfinite(ratios)
            clean = finite.all(axis=1)  # the common case: one vectorised percentile call
            rows = np.asarray(chunk)
            out[rows[clean]] = np.percentile(ratios[clean], [tail, 100 - tail], axis=1).T
            for bad in np.flatnonzero(~clean):  # zero medians: drop the undefined draws
                kept = ratios[bad][finite[bad]]
                if len(kept):
                    out[rows[bad]] = np.percentile(kept, [tail, 100 - tail])
    return out


def _batch_medians(rows: FloatArray, indices: tuple[npt.NDArray[np.intp], ...]) -> FloatArray:
    """Resampled medians of every row of ``rows`` (sorted rows) at the given rank draws."""
    if len(indices) == 1:
        return rows[:, indices[0]]
    return (rows[:, indices[0]] + rows[:, indices[1]]) / 2.0


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
    grouped = rows.groupby(list(_present_keys(rows)), sort=False, observed=True)["value"]
    med = grouped.transform("median")
    mad = (
        (rows["value"] - med)
        .abs()
        .groupby([rows[k] for k in _present_keys(rows)], sort=False, observed=True)
        .transform("median")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 0.6745 * (rows["value"] - med) / mad
    flags.loc[rows.index] = (z.abs() > OUTLIER_Z).fillna(False).to_numpy(dtype=bool) & (
        mad > 0
    ).to_numpy(dtype=bool)
    return flags


def _present_keys(frame: pd.DataFrame) -> tuple[str, ...]:
    return tuple(k for k in KEYS if k in frame.columns)


def measured_mask(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Boolean mask of the rows :func:`measured` keeps (no copy of the frame)."""
    values = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    ok = (frame["status"] == "ok").to_numpy(dtype=bool, na_value=False)
    warm = frame["warmup"].to_numpy(dtype=bool, na_value=False)
    mask: npt.NDArray[np.bool_] = ok & ~warm & np.isfinite(values)
    return mask


def group_samples(
    frame: pd.DataFrame, keys: Sequence[str] = KEYS
) -> dict[tuple[str, ...], FloatArray]:
    """Measured values per summary key (``keys``), in run then repetition order.

    Works on factorized codes and numpy sorts only: at a million rows, materializing
    filtered or sorted copies of the string columns costs seconds.
    """
    if frame.empty:
        return {}
    mask = measured_mask(frame)
    if not mask.any():
        return {}
    keys = tuple(k for k in keys if k in frame.columns)
    codes, uniques = [], []
    for key in keys:
        code, unique = pd.factorize(frame[key], use_na_sentinel=False)
        codes.append(code[mask])
        uniques.append(np.asarray(unique, dtype=object))
    run_code = pd.factorize(frame["run_id"], use_na_sentinel=False, sort=True)[0][mask]
    repetition = frame["repetition"].to_numpy(dtype=np.int64, na_value=0)[mask]
    values = frame["value"].to_numpy(dtype=np.float64, na_value=np.nan)[mask]
    # lexsort: last key is primary -> group codes, then run, then repetition.
    order = np.lexsort((repetition, run_code, *reversed(codes)))
    sorted_codes = np.stack([c[order] for c in codes])
    values = values[order]
    change = np.flatnonzero(np.any(np.diff(sorted_codes, axis=1) != 0, axis=0)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(values)]))
    groups: dict[tuple[str, ...], FloatArray] = {}
    for begin, end in zip(starts, ends, strict=True):
        group = tuple(str(uniques[i][sorted_codes[i, begin]]) for i in range(len(keys)))
        groups[group] = values[begin:end]
    return dict(sorted(groups.items()))


def _as_tuple(key: Any) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


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
        records.append(row)
    summary = pd.DataFrame.from_records(records, columns=SUMMARY_COLUMNS)
    return summary


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


def _native_keys(summary: pd.DataFrame) -> dict[tuple[str, str, str], list[tuple[str, ...]]]:
    """(host, scenario, metric) -> summary keys of its native variants ("host" first)."""
    native_by: dict[tuple[str, str, str], list[tuple[str, ...]]] = {}
    for row in summary[summary["backend"] == NATIVE].itertuples(index=False):
        native_key = (str(row.host), str(row.scenario), str(row.metric))
        key = (str(row.host), str(row.scenario), NATIVE, str(row.variant), str(row.metric))
        keys = native_by.setdefault(native_key, [])
        if row.variant == "host":
            keys.insert(0, key)
        else:
            keys.append(key)
    return native_by


def native_baseline(candidates: Sequence[tuple[str, ...]], variant: str) -> tuple[str, ...] | None:
    """The native variant a backend ``variant`` is compared with.

    The one whose ``key=value`` pairs all appear in ``variant`` (the most of them: density's
    ``instances=8,start=sequential`` for a container's ``runtime=runc,...,instances=8,
    start=sequential``); else the first candidate ("host" when present).
    """
    pairs = set(variant.split(","))
    matching = [c for c in candidates if set(c[3].split(",")) <= pairs]
    if matching:
        return max(matching, key=lambda c: len(c[3].split(",")))
    return candidates[0] if candidates else None


def by_series(
    by_run: Mapping[tuple[str, ...], FloatArray],
) -> dict[tuple[str, ...], dict[str, FloatArray]]:
    """Per-run samples (:data:`RUN_KEYS`) regrouped as summary key -> {run: values}."""
    out: dict[tuple[str, ...], dict[str, FloatArray]] = {}
    for (host, run, *rest), values in by_run.items():
        out.setdefault((host, *rest), {})[run] = values
    return out


def _within_run(
    mine: FloatArray, base: FloatArray, higher_is_better: bool, seed: int
) -> tuple[float, float, float, float, float, float]:
    """(ratio, low, high, difference, low, high) of one run.

    No ratio CI when either side has < 5 samples; the difference keeps its bootstrap CI.
    """
    mine, base = np.sort(mine), np.sort(base)
    my_med, base_med = float(np.median(mine)), float(np.median(base))
    num, den = (base, mine) if higher_is_better else (mine, base)
    num_med, den_med = float(np.median(num)), float(np.median(den))
    ratio = num_med / den_med if den_med else np.nan
    low, high = np.nan, np.nan
    if min(len(mine), len(base)) >= MIN_SAMPLES:
        low, high = ratio_ci(num, den, seed)
    d_low, d_high = difference_ci(mine, base, seed)
    return ratio, low, high, my_med - base_med, d_low, d_high


def between_runs_ci(
    per_run: FloatArray, seed: int = SEED, draws: int = BOOTSTRAP_DRAWS
) -> tuple[float, float]:
    """Bootstrap CI of the median of per-run values, the run as the sampling unit (k >= 5)."""
    if len(per_run) < MIN_SAMPLES:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_run), size=(draws, len(per_run)))
    medians = np.median(per_run[picks], axis=1)
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return (float(low), float(high))


OVERHEAD_COLUMNS: Final = [
    *KEYS,
    "ratio",
    "ratio_low",
    "ratio_high",
    "ratio_runs",
    "ratio_spread_low",
    "ratio_spread_high",
    "difference",
    "difference_low",
    "difference_high",
    "native_median",
]


def overhead(
    summary: pd.DataFrame,
    samples: Mapping[tuple[str, ...], FloatArray],
    seed: int = SEED,
    by_run: Mapping[tuple[str, ...], FloatArray] | None = None,
) -> pd.DataFrame:
    """Ratio to native per non-native summary row: > 1 always means "costs more".

    Cost metrics: backend / native. Throughput metrics (higher is better): native / backend.
    A ratio is only formed **within one run** (``by_run``, keyed by :data:`RUN_KEYS`): the
    native baseline of the same run, never one pooled over runs or hosts. With one run the
    ratio's CI is the bootstrap of that run (none below 5 samples a side); with several runs
    of one host the ratio is the median of the per-run ratios, the run is the sampling unit
    (CI only from 5 runs up) and ``ratio_spread_*`` give the per-run range. A series whose
    native baseline was measured in other runs only gets no ratio. ``difference`` is the
    backend median minus the same run's native median, in the metric's unit, with its
    bootstrap CI (``difference_low``/``difference_high``; over several runs: the median of
    the per-run differences, CI over runs from 5 up); for metrics compared by difference
    (:data:`bench.metrics.DIFFERENCE_METRICS`) it is the headline, not the ratio.
    """
    if summary.empty:
        return pd.DataFrame(columns=OVERHEAD_COLUMNS)
    if by_run is None:  # every group is one run
        by_run = {(k[0], "", *k[1:]): v for k, v in samples.items()}
    runs_of = by_series(by_run)
    native_by = _native_keys(summary)
    records = []
    for row in summary[summary["backend"] != NATIVE].itertuples(index=False):
        key = tuple(str(getattr(row, k)) for k in KEYS)
        base_key = native_baseline(native_by.get((key[0], key[1], key[4]), []), key[3])
        if base_key is None:
            continue
        mine_runs, base_runs = runs_of.get(key, {}), runs_of.get(base_key, {})
        shared = sorted(mine_runs.keys() & base_runs.keys())
        if not shared:
            continue
        per_run = np.array(
            [
                _within_run(mine_runs[r], base_runs[r], bool(row.higher_is_better), seed)
                for r in shared
            ]
        )
        base_med = float(np.median([np.median(base_runs[r]) for r in shared]))
        if len(shared) == 1:
            ratio, low, high, diff, d_low, d_high = (float(v) for v in per_run[0])
        else:
            ratio, diff = float(np.median(per_run[:, 0])), float(np.median(per_run[:, 3]))
            low, high = between_runs_ci(per_run[:, 0], seed)
            d_low, d_high = between_runs_ci(per_run[:, 3], seed)
        spread = (float(per_run[:, 0].min()), float(per_run[:, 0].max()))
        records.append(
            (*key, ratio, low, high, len(shared), *spread, diff, d_low, d_high, base_med)
        )
    return pd.DataFrame.from_records(records, columns=OVERHEAD_COLUMNS)


def run_spread(by_run: Mapping[tuple[str, ...], FloatArray]) -> pd.DataFrame:
    """Per summary key: how many runs it pools and the range of their medians."""
    columns = [*KEYS, "runs", "run_median_low", "run_median_high"]
    records = []
    for key, runs in by_series(by_run).items():
        medians = [float(np.median(v)) for v in runs.values()]
        records.append((*key, len(runs), min(medians), max(medians)))
    return pd.DataFrame.from_records(records, columns=columns)


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


def status_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-ok rows counted per host x scenario x backend x variant x status x reason."""
    columns = ["host", "scenario", "backend", "variant", "status", "reason", "rows"]
    bad = frame[frame["status"] != "ok"] if not frame.empty else frame
    if bad.empty:
        return pd.DataFrame(columns=columns)
    keys = ["host", "scenario", "backend", "variant", "status", "reason"]
    bad = bad.assign(reason=bad["reason"].astype("string").fillna(""))
    counted = bad.groupby(keys, observed=True, dropna=False).size().reset_index(name="rows")
    return counted.sort_values(["host", "scenario", "backend", "variant", "status"])


# --- run-level inference: the run as the sampling unit (used by bench.compare) -------------
#
# A run's *level* for one group is log(median). Its within-run variance is (pi/2) s^2 / n
# (the asymptotic variance of a median, s the standard deviation of the log values). Between
# runs the level moves by more than that on a real host (load, placement, frequency), so when
# a side holds several runs the spread of their levels is the noise (the run is the unit);
# with one run per side only the within-run noise is known and the interval says so.

#: Var(median) ~ (pi/2) sigma^2 / n for a normal sample (asymptotic efficiency 2/pi).
MEDIAN_VARIANCE_FACTOR: Final = float(np.pi / 2)
#: A variance this far in its family's upper tail (F quantile) is not moderated.
OUTLYING: Final = 0.99
#: Power at which :func:`detectable_change` is quoted.
POWER: Final = 0.80


@dataclass(frozen=True, slots=True)
class RunLevel:
    """One run's log-median of a group and the within-run variance of that estimate."""

    level: float
    unit_variance: float  # (pi/2) s^2: the within-run variance is unit_variance / n
    n: int

    @property
    def within_variance(self) -> float:
        """Within-run variance of ``level``."""
        return self.unit_variance / self.n


def run_level(values: FloatArray) -> RunLevel | None:
    """The level of one run's samples; None when empty or not all positive (no log scale)."""
    if len(values) == 0 or not bool(np.all(values > 0)):
        return None
    logs = np.log(values)
    spread = float(np.var(logs, ddof=1)) if len(values) > 1 else np.nan
    return RunLevel(float(np.median(logs)), MEDIAN_VARIANCE_FACTOR * spread, len(values))


def ratio_level(numerator: FloatArray, denominator: FloatArray) -> RunLevel | None:
    """The level of median(numerator) / median(denominator) within one run."""
    top, bottom = run_level(numerator), run_level(denominator)
    if top is None or bottom is None:
        return None
    n = min(top.n, bottom.n)
    # within variance = top.u/top.n + bottom.u/bottom.n, expressed per common n
    unit = n * (top.within_variance + bottom.within_variance)
    return RunLevel(top.level - bottom.level, unit, n)


@dataclass(frozen=True, slots=True)
class Noise:
    """Variance of one run's level: between-run part + within-run part / n, and its df."""

    between_var: float  # tau^2 >= 0 (0 when only within-run noise is known)
    unit_variance: float  # mean within-run unit variance: within part = unit_variance / n
    n: int
    df: float
    between_runs: bool  # measured between runs (some side holds >= 2 runs)

    def per_run(self, n: int | None = None) -> float:
        """Variance of one run's level at ``n`` samples per run (default: as measured)."""
        return self.between_var + self.unit_variance / (n or self.n)


def _welch_df(parts: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of (variance, df) parts."""
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / d for v, d in parts if d > 0 and v > 0)
    return total * total / denominator if denominator > 0 else np.nan


def run_noise(base: Sequence[RunLevel], new: Sequence[RunLevel]) -> Noise:
    """Noise of a run level, the run as the unit when a side holds several runs.

    Several runs on a side: the pooled variance of the run levels (never less than the mean
    within-run variance), with the runs' degrees of freedom. One run per side: within-run
    variances only (Welch df), and ``between_runs`` is False.
    """
    runs = (*base, *new)
    n = min(r.n for r in runs)
    unit = float(np.mean([r.unit_variance * n / r.n for r in runs]))
    groups = [[r.level for r in side] for side in (base, new) if len(side) > 1]
    df_between = sum(len(g) - 1 for g in groups)
    if df_between > 0:
        pooled = sum(float(np.var(g, ddof=1)) * (len(g) - 1) for g in groups) / df_between
        return Noise(max(pooled - unit / n, 0.0), unit, n, float(df_between), True)
    df = _welch_df([(r.within_variance, r.n - 1) for r in runs])
    return Noise(0.0, unit, n, df, False)


def moderate(noises: Sequence[Noise]) -> list[Noise]:
    """Shrink between-run noise estimates of one metric family towards their pooled value.

    A handful of runs gives each comparison only a few degrees of freedom; the comparisons of
    one family share the host's run-to-run behaviour, so each variance is averaged with the
    family's pooled variance (weights: degrees of freedom, as in limma's moderated t) and
    gains its df. A comparison clearly noisier than its family (F test, 1 %) keeps its own
    variance and df, so one erratic metric does not borrow the calm of the others.
    """
    measured = [x for x in noises if x.between_runs and np.isfinite(x.df)]
    total_df = sum(x.df for x in measured)
    total_var = sum(x.df * x.per_run() for x in measured)
    out = []
    for x in noises:
        prior_df = total_df - x.df if x in measured else 0.0
        if prior_df <= 0:
            out.append(x)
            continue
        prior = (total_var - x.df * x.per_run()) / prior_df
        shrunk = (prior_df * prior + x.df * x.per_run()) / (prior_df + x.df)
        if prior <= 0 or x.per_run() / prior > float(sps.f.ppf(OUTLYING, x.df, prior_df)):
            out.append(x)  # clearly noisier than its family: not shrunk
            continue
        between = max(shrunk - x.unit_variance / x.n, 0.0)  # never below the within part
        out.append(Noise(between, x.unit_variance, x.n, prior_df + x.df, True))
    return out


@dataclass(frozen=True, slots=True)
class Shift:
    """Estimated log-change new vs base with its standard error and degrees of freedom."""

    estimate: float
    se: float
    df: float


def shift(
    base: Sequence[RunLevel], new: Sequence[RunLevel], noise: Noise, n: int | None = None
) -> Shift:
    """Change of the mean run level, new vs base; ``n`` re-evaluates at another sample size."""
    estimate = float(np.mean([r.level for r in new]) - np.mean([r.level for r in base]))
    if noise.between_runs:
        se = float(np.sqrt(noise.per_run(n) * (1 / len(base) + 1 / len(new))))
        return Shift(estimate, se, noise.df)
    parts = [(r.unit_variance / (n or r.n), (n or r.n) - 1) for r in (*base, *new)]
    return Shift(estimate, float(np.sqrt(sum(v for v, _ in parts))), _welch_df(parts))


def shift_interval(change: Shift, level: float) -> tuple[float, float]:
    """Two-sided ``level`` t-interval of the log-change (NaN when the noise is unknown)."""
    if not (np.isfinite(change.se) and np.isfinite(change.df)) or change.df <= 0:
        return (np.nan, np.nan)
    half = float(sps.t.ppf(0.5 + level / 2, change.df)) * change.se
    return (change.estimate - half, change.estimate + half)


def detectable_change(change: Shift, level: float, power: float = POWER) -> float:
    """Smallest log-change whose ``level`` interval excludes 0 with probability ``power``."""
    if not (np.isfinite(change.se) and np.isfinite(change.df)) or change.df <= 0:
        return np.nan
    t_level = float(sps.t.ppf(0.5 + level / 2, change.df))
    return (t_level + float(sps.t.ppf(power, change.df))) * change.se


def family_level(comparisons: int, alpha: float = 1 - CONFIDENCE) -> float:
    """Per-comparison confidence giving ``1 - alpha`` simultaneous coverage (Bonferroni)."""
    return 1.0 - alpha / max(comparisons, 1)


def hierarchical_median_ci(
    runs: Sequence[FloatArray],
    seed: int = SEED,
    draws: int = BOOTSTRAP_DRAWS,
    level: float = CONFIDENCE,
) -> tuple[float, float]:
    """CI of the median of merged runs, the run as the unit: resample runs, then samples.

    Each draw picks len(runs) runs with replacement and, inside each picked run, as many
    samples as it has with replacement; the statistic is the median of the pooled draw.
    Needs >= 2 runs (one run: use :func:`median_ci`).
    """
    usable = [np.asarray(r, dtype=np.float64) for r in runs if len(r)]
    if len(usable) < 2:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    k, longest = len(usable), max(len(r) for r in usable)
    padded = np.full((k, longest), np.nan)
    for i, r in enumerate(usable):
        padded[i, : len(r)] = r
    sizes = np.array([len(r) for r in usable])
    picked = rng.integers(0, k, (draws, k))  # runs, with replacement
    # then, inside each picked run, as many samples as it has, with replacement
    slots = np.arange(longest)
    within = (rng.random((draws, k, longest)) * sizes[picked][..., None]).astype(np.int64)
    values = padded[picked[..., None], within]
    values[slots[None, None, :] >= sizes[picked][..., None]] = np.nan
    medians = np.nanmedian(values.reshape(draws, -1), axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return (float(low), float(high))
