"""The tidy sample frame as groups of measured values: the input of every statistic.

Only ``status == "ok"`` and non-warmup rows with a finite value are measured; the rest is
counted (:func:`status_counts`), never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

#: Grouping of the summary: one row per host x scenario x backend x variant x metric.
KEYS: Final = ("host", "scenario", "backend", "variant", "metric")
#: The same, per run: ratios to native are only ever formed inside one run.
RUN_KEYS: Final = ("host", "run_id", "scenario", "backend", "variant", "metric")


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that count as measurements: ok, not warmup, finite value."""
    return frame.loc[measured_mask(frame)]


def measured_mask(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Boolean mask of the rows :func:`measured` keeps (no copy of the frame)."""
    values = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    ok = (frame["status"] == "ok").to_numpy(dtype=bool, na_value=False)
    warm = frame["warmup"].to_numpy(dtype=bool, na_value=False)
    mask: npt.NDArray[np.bool_] = ok & ~warm & np.isfinite(values)
    return mask


def present_keys(frame: pd.DataFrame) -> tuple[str, ...]:
    """The summary :data:`KEYS` that ``frame`` has as columns, in order."""
    return tuple(k for k in KEYS if k in frame.columns)


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
