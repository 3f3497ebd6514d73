"""Adaptive repetitions: is the median known precisely enough yet? (pure)

A unit (scenario x backend x variant) with ``precision`` set keeps getting measured
repetitions after its planned ``repeat`` until, for every metric it reports, the 95 %
distribution-free CI of the median (:func:`bench.stats.median_ci`) has a half-width within
``precision`` x |median|, or until ``max_repeat``. The half-width is the larger side of the
interval, which need not be symmetric. Below 6 samples no pair of ranks reaches 95 %
coverage, so a unit is never called precise before that. Like Phoronix's
re-run-until-stable and pyperf's calibration, but on the statistic the report shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from bench import stats

#: Fewest samples whose order-statistic interval reaches 95 % coverage.
MIN_SAMPLES: Final = 6


def relative_half_width(values: Sequence[float]) -> float:
    """Half-width of the median's 95 % CI relative to |median| (inf when unknown)."""
    finite = np.sort(np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64))
    if len(finite) < MIN_SAMPLES:
        return math.inf
    low, high, coverage = stats.median_ci(finite)
    median = float(np.median(finite))
    if coverage < stats.CONFIDENCE or median == 0:
        return math.inf
    return max(median - low, high - median) / abs(median)


@dataclass(frozen=True, slots=True)
class Precision:
    """Where a unit stands: worst relative half-width over its metrics, and that metric."""

    worst: float
    metric: str

    def reached(self, target: float) -> bool:
        """Whether every metric is within ``target``."""
        return self.worst <= target


def precision(values_by_metric: Mapping[str, Sequence[float]]) -> Precision:
    """The worst metric's relative half-width (inf and "" when nothing was measured)."""
    worst, name = math.inf, ""
    measured = {m: v for m, v in values_by_metric.items() if v}
    for metric, values in sorted(measured.items()):
        width = relative_half_width(values)
        if name == "" or width > worst or not math.isfinite(width):
            worst, name = width, metric
            if not math.isfinite(width):
                break
    return Precision(worst, name)
