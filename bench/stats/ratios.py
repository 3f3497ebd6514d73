"""Two samples compared: the ratio and the difference of their medians, with bootstrap CIs.

Both sides are resampled independently from the exact bootstrap law of the median
(:func:`bench.stats.intervals.bootstrap_medians`); the same seed gives every comparison the
same uniforms, so :func:`ratio_cis` (batched) returns exactly what :func:`ratio_ci` returns
pair by pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.stats.intervals import (
    BOOTSTRAP_DRAWS,
    CONFIDENCE,
    SEED,
    batch_medians,
    bootstrap_medians,
    median_indices,
    percentile_interval,
)
from bench.stats.samples import FloatArray


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
    num, den = _bootstrap_both(numerator, denominator, seed, draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = num / den
    return percentile_interval(ratios[np.isfinite(ratios)], level)  # zero medians: dropped


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
    mine_medians, base_medians = _bootstrap_both(mine, base, seed, draws)
    return percentile_interval(mine_medians - base_medians, level)


def _bootstrap_both(
    first: FloatArray, second: FloatArray, seed: int, draws: int
) -> tuple[FloatArray, FloatArray]:
    """Bootstrap medians of two independent sorted samples (``first``'s uniforms drawn first)."""
    rng = np.random.default_rng(seed)
    return bootstrap_medians(first, rng.random(draws)), bootstrap_medians(second, rng.random(draws))


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
        num_idx, den_idx = median_indices(n_num, u_num), median_indices(n_den, u_den)
        for start in range(0, len(members), 2048):  # bounded memory: 2048 x draws per array
            chunk = members[start : start + 2048]
            nums = np.stack([pairs[i][0] for i in chunk])
            dens = np.stack([pairs[i][1] for i in chunk])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = batch_medians(nums, num_idx) / batch_medians(dens, den_idx)
            finite = np.isfinite(ratios)
            clean = finite.all(axis=1)  # the common case: one vectorised percentile call
            rows = np.asarray(chunk)
            out[rows[clean]] = np.percentile(ratios[clean], [tail, 100 - tail], axis=1).T
            for bad in np.flatnonzero(~clean):  # zero medians: drop the undefined draws
                out[rows[bad]] = percentile_interval(ratios[bad][finite[bad]], level)
    return out
