"""Intervals of one median: from one sample, and from several runs with the run as the unit.

* Median 95 % CI of one sample: distribution-free order-statistic interval (binomial ranks).
  For n < 6 no pair of ranks reaches 95 %: the interval is then [min, max] and the returned
  coverage says the true one (1 - 2 * 0.5**n).
* Bootstrap of a median: the *exact* bootstrap distribution of the sample median (Efron
  1982): the resampled median is an order statistic whose law is binomial, so drawing it
  costs O(n + B) instead of O(n * B) and stays fast at a million rows. For even n the two
  middle order statistics share one uniform draw. Fixed seed, 2000 draws, percentile
  intervals (:func:`percentile_interval`).
* Several runs: resample runs (:func:`between_runs_ci` on per-run values,
  :func:`hierarchical_median_ci` on the pooled samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from bench.stats.samples import FloatArray

# scipy is imported inside the functions that use it: it costs about 0.5 s to import
# (several seconds on a loaded host), and `isobench publish` needs none of it.

CONFIDENCE: Final = 0.95
BOOTSTRAP_DRAWS: Final = 2000
SEED: Final = 20240229
#: Fewer samples (or runs) than this: no bootstrap interval, and a stability warning.
MIN_SAMPLES: Final = 5


def median_ci(sorted_values: FloatArray, level: float = CONFIDENCE) -> tuple[float, float, float]:
    """Order-statistic CI of the median of ``sorted_values``: (low, high, actual coverage)."""
    from scipy import stats as sps  # noqa: PLC0415 (lazy: see the top of this module)

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
    from scipy import stats as sps  # noqa: PLC0415 (lazy: see the top of this module)

    half_width = int(10 * np.sqrt(n)) + 10
    ranks = np.arange(1, n + 1)
    cdf = np.where(ranks < m, 0.0, 1.0)
    window = slice(max(m - half_width, 1) - 1, min(m + half_width, n))
    cdf[window] = sps.binom.sf(m - 1, n, ranks[window] / n)
    cdf[-1] = 1.0
    return np.minimum(np.searchsorted(cdf, uniforms, side="left"), n - 1)


def median_indices(n: int, uniforms: FloatArray) -> tuple[npt.NDArray[np.intp], ...]:
    """The one (odd n) or two (even n) order statistics a resampled median averages."""
    if n % 2:
        return (_order_stat_indices(n, (n + 1) // 2, uniforms),)
    return (_order_stat_indices(n, n // 2, uniforms), _order_stat_indices(n, n // 2 + 1, uniforms))


def bootstrap_medians(sorted_values: FloatArray, uniforms: FloatArray) -> FloatArray:
    """Bootstrap replicates of the median, drawn from its exact resampling law."""
    picks = [sorted_values[idx] for idx in median_indices(len(sorted_values), uniforms)]
    return picks[0] if len(picks) == 1 else (picks[0] + picks[1]) / 2.0


def batch_medians(rows: FloatArray, indices: tuple[npt.NDArray[np.intp], ...]) -> FloatArray:
    """Resampled medians of every row of ``rows`` (sorted rows) at the given rank draws."""
    if len(indices) == 1:
        return rows[:, indices[0]]
    return (rows[:, indices[0]] + rows[:, indices[1]]) / 2.0


def percentile_interval(replicates: FloatArray, level: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided ``level`` percentile interval of bootstrap replicates (NaN when none)."""
    if len(replicates) == 0:
        return (np.nan, np.nan)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return (float(low), float(high))


def between_runs_ci(
    per_run: FloatArray, seed: int = SEED, draws: int = BOOTSTRAP_DRAWS
) -> tuple[float, float]:
    """Bootstrap CI of the median of per-run values, the run as the sampling unit (k >= 5)."""
    if len(per_run) < MIN_SAMPLES:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_run), size=(draws, len(per_run)))
    return percentile_interval(np.median(per_run[picks], axis=1))


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
    return percentile_interval(np.nanmedian(values.reshape(draws, -1), axis=1), level)
