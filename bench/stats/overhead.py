"""Overhead vs native: each backend's ratio and difference to the native baseline of its run.

A ratio is only ever formed inside one run (per-run samples keyed by
:data:`bench.stats.samples.RUN_KEYS`); over several runs the run is the sampling unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import pandas as pd

from bench.stats.intervals import MIN_SAMPLES, SEED, between_runs_ci
from bench.stats.ratios import difference_ci, ratio_ci
from bench.stats.samples import KEYS, FloatArray

NATIVE: Final = "native"


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


def run_spread(by_run: Mapping[tuple[str, ...], FloatArray]) -> pd.DataFrame:
    """Per summary key: how many runs it pools and the range of their medians."""
    columns = [*KEYS, "runs", "run_median_low", "run_median_high"]
    records = []
    for key, runs in by_series(by_run).items():
        medians = [float(np.median(v)) for v in runs.values()]
        records.append((*key, len(runs), min(medians), max(medians)))
    return pd.DataFrame.from_records(records, columns=columns)
