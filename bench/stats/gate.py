"""Run-level inference for the regression gate (:mod:`bench.compare`): the run as the unit.

A run's *level* for one group is log(median). Its within-run variance is (pi/2) s^2 / n (the
asymptotic variance of a median, s the standard deviation of the log values). Between runs
the level moves by more than that on a real host (load, placement, frequency), so when a side
holds several runs the spread of their levels is the noise (the run is the unit); with one
run per side only the within-run noise is known and the interval says so. The variances of
one metric family are moderated together (:func:`moderate`); :func:`detectable_change` says
the smallest change the data could see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from bench.stats.intervals import CONFIDENCE
from bench.stats.samples import FloatArray

# scipy is imported inside the functions that use it: it costs about 0.5 s to import
# (several seconds on a loaded host), and `isobench publish` needs none of it.

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
    from scipy import stats as sps  # noqa: PLC0415 (lazy: see the top of this module)

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
    from scipy import stats as sps  # noqa: PLC0415 (lazy: see the top of this module)

    if not (np.isfinite(change.se) and np.isfinite(change.df)) or change.df <= 0:
        return (np.nan, np.nan)
    half = float(sps.t.ppf(0.5 + level / 2, change.df)) * change.se
    return (change.estimate - half, change.estimate + half)


def detectable_change(change: Shift, level: float, power: float = POWER) -> float:
    """Smallest log-change whose ``level`` interval excludes 0 with probability ``power``."""
    from scipy import stats as sps  # noqa: PLC0415 (lazy: see the top of this module)

    if not (np.isfinite(change.se) and np.isfinite(change.df)) or change.df <= 0:
        return np.nan
    t_level = float(sps.t.ppf(0.5 + level / 2, change.df))
    return (t_level + float(sps.t.ppf(power, change.df))) * change.se


def family_level(comparisons: int, alpha: float = 1 - CONFIDENCE) -> float:
    """Per-comparison confidence giving ``1 - alpha`` simultaneous coverage (Bonferroni)."""
    return 1.0 - alpha / max(comparisons, 1)
