"""Statistics over the tidy sample frame: pure functions, no I/O (choices: docs/report.md).

Read in this order; each module imports only the ones above it (plus numpy, pandas, scipy and
the metric catalog):

* :mod:`~bench.stats.samples`: which rows are measured, and the frame as groups of values;
* :mod:`~bench.stats.intervals`: intervals of one median: order statistics, the exact
  bootstrap of a median, the run as the unit (between runs, hierarchical);
* :mod:`~bench.stats.ratios`: ratio and difference of two medians with bootstrap CIs;
* :mod:`~bench.stats.summary`: one group's statistics, outliers and stability warnings;
* :mod:`~bench.stats.overhead`: each backend against the native baseline of its own run;
* :mod:`~bench.stats.gate`: run-level inference for the regression gate (noise,
  moderation, detectable change).

Callers use the package as one namespace (``from bench import stats as st``;
``st.ratio_ci``): the names below are its public API.
"""

from __future__ import annotations

from bench.stats.gate import (
    MEDIAN_VARIANCE_FACTOR,
    OUTLYING,
    POWER,
    Noise,
    RunLevel,
    Shift,
    detectable_change,
    family_level,
    moderate,
    ratio_level,
    run_level,
    run_noise,
    shift,
    shift_interval,
)
from bench.stats.intervals import (
    BOOTSTRAP_DRAWS,
    CONFIDENCE,
    MIN_SAMPLES,
    SEED,
    between_runs_ci,
    bootstrap_medians,
    hierarchical_median_ci,
    median_ci,
)
from bench.stats.overhead import (
    NATIVE,
    OVERHEAD_COLUMNS,
    by_series,
    native_baseline,
    overhead,
    run_spread,
)
from bench.stats.ratios import difference_ci, ratio_ci, ratio_cis
from bench.stats.samples import (
    KEYS,
    RUN_KEYS,
    FloatArray,
    group_samples,
    measured,
    measured_mask,
    status_counts,
)
from bench.stats.summary import (
    CV_LIMIT,
    OUTLIER_Z,
    SUMMARY_COLUMNS,
    WARMUP_EFFECT,
    Limits,
    describe,
    modified_z,
    outlier_flags,
    run_warnings,
    summarize,
    warmup_effect,
)

__all__ = [
    "BOOTSTRAP_DRAWS",
    "CONFIDENCE",
    "CV_LIMIT",
    "KEYS",
    "MEDIAN_VARIANCE_FACTOR",
    "MIN_SAMPLES",
    "NATIVE",
    "OUTLIER_Z",
    "OUTLYING",
    "OVERHEAD_COLUMNS",
    "POWER",
    "RUN_KEYS",
    "SEED",
    "SUMMARY_COLUMNS",
    "WARMUP_EFFECT",
    "FloatArray",
    "Limits",
    "Noise",
    "RunLevel",
    "Shift",
    "between_runs_ci",
    "bootstrap_medians",
    "by_series",
    "describe",
    "detectable_change",
    "difference_ci",
    "family_level",
    "group_samples",
    "hierarchical_median_ci",
    "measured",
    "measured_mask",
    "median_ci",
    "moderate",
    "modified_z",
    "native_baseline",
    "outlier_flags",
    "overhead",
    "ratio_ci",
    "ratio_cis",
    "ratio_level",
    "run_level",
    "run_noise",
    "run_spread",
    "run_warnings",
    "shift",
    "shift_interval",
    "status_counts",
    "summarize",
    "warmup_effect",
]
