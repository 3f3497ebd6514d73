"""Two-run comparison: which changes are real (pure; the CLI lives in bench.commands.compare).

A change is reported only when the relative change of the median exceeds the threshold
**and** a two-sided Mann-Whitney U test agrees. A run holds dozens of comparisons, so the
p-values are adjusted with Benjamini-Hochberg by default (``q_value``): with 20 comparisons of
7 samples at 5 % CV, raw p < 0.05 flags something in about a third of A/A runs; with the
adjustment the chance that an A/A run flags anything is held near alpha (under the global null
BH controls the family-wise error). Hosts are ignored on purpose: CI runners change hostname
between runs, and the gate compares like-for-like configurations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench import metrics
from bench.stats import SEED, FloatArray, measured, ratio_ci

KEYS: Final = ("scenario", "backend", "variant", "metric")
DEFAULT_THRESHOLD: Final = 0.05
ALPHA: Final = 0.05

COLUMNS: Final = [
    *KEYS,
    "unit",
    "n_base",
    "n_new",
    "base_median",
    "new_median",
    "change",
    "change_low",
    "change_high",
    "p_value",
    "q_value",
    "verdict",
]
CORRECTIONS: Final = ("bh", "none")


@dataclass(frozen=True, slots=True)
class HashMismatch:
    """A scenario whose definition differs between the two runs."""

    scenario: str
    base: tuple[str, ...]
    new: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"scenario {self.scenario!r} changed: base hash {', '.join(self.base)} "
            f"!= new hash {', '.join(self.new)}"
        )


def hash_mismatches(base: pd.DataFrame, new: pd.DataFrame) -> list[HashMismatch]:
    """Scenarios present in both runs whose scenario_hash differs."""

    def hashes(frame: pd.DataFrame) -> dict[str, tuple[str, ...]]:
        pairs = frame[["scenario", "scenario_hash"]].dropna().drop_duplicates()
        out: dict[str, set[str]] = {}
        for scenario, digest in pairs.itertuples(index=False):
            out.setdefault(str(scenario), set()).add(str(digest))
        return {k: tuple(sorted(v)) for k, v in out.items()}

    base_h, new_h = hashes(base), hashes(new)
    return [
        HashMismatch(name, base_h[name], new_h[name])
        for name in sorted(base_h.keys() & new_h.keys())
        if base_h[name] != new_h[name]
    ]


def _groups(frame: pd.DataFrame) -> dict[tuple[str, ...], FloatArray]:
    rows = measured(frame)
    if rows.empty:
        return {}
    values = rows["value"].to_numpy(dtype=np.float64)
    indices = rows.groupby(list(KEYS), sort=True, observed=True).indices
    return {
        tuple(str(p) for p in cast("tuple[object, ...]", k)): np.sort(values[i])
        for k, i in indices.items()
    }


def verdict(
    change: float, p_value: float, higher_is_better: bool, threshold: float, alpha: float
) -> str:
    """'regression', 'improvement' or 'not significant' for one relative change."""
    if not np.isfinite(change) or not np.isfinite(p_value):
        return "not significant"
    if abs(change) <= threshold or p_value >= alpha:
        return "not significant"
    worse = change < 0 if higher_is_better else change > 0
    return "regression" if worse else "improvement"


def compare(
    base: pd.DataFrame,
    new: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    alpha: float = ALPHA,
    seed: int = SEED,
    correction: str = "bh",
) -> pd.DataFrame:
    """One row per scenario x backend x variant x metric present in either run."""
    base_g, new_g = _groups(base), _groups(new)
    units = {
        str(m): str(u)
        for m, u in pd.concat([base, new])[["metric", "unit"]]
        .dropna()
        .drop_duplicates("metric")
        .itertuples(index=False)
    }
    records = []
    for key in sorted(base_g.keys() | new_g.keys()):
        b = base_g.get(key, np.zeros(0))
        n = new_g.get(key, np.zeros(0))
        metric = key[3]
        row: dict[str, object] = dict(zip(KEYS, key, strict=True))
        row.update(unit=units.get(metric, ""), n_base=len(b), n_new=len(n))
        if len(b) == 0 or len(n) == 0:
            row.update(
                base_median=float(np.median(b)) if len(b) else np.nan,
                new_median=float(np.median(n)) if len(n) else np.nan,
                change=np.nan,
                change_low=np.nan,
                change_high=np.nan,
                p_value=np.nan,
                q_value=np.nan,
                verdict="only in base" if len(b) else "only in new",
            )
            records.append(row)
            continue
        b_med, n_med = float(np.median(b)), float(np.median(n))
        change = n_med / b_med - 1 if b_med else np.nan
        low, high = ratio_ci(n, b, seed)
        p_value = mann_whitney_p(b, n)
        row.update(
            base_median=b_med,
            new_median=n_med,
            change=change,
            change_low=low - 1,
            change_high=high - 1,
            p_value=p_value,
        )
        records.append(row)
    table = pd.DataFrame.from_records(records, columns=COLUMNS)
    table["q_value"] = adjust(table["p_value"].to_numpy(dtype=float), correction)
    verdicts = []
    for rec in records:
        if "verdict" in rec:  # one-sided key, already labelled
            verdicts.append(str(rec["verdict"]))
            continue
        verdicts.append("")
    q_values = table["q_value"].to_numpy(dtype=float)
    changes = table["change"].to_numpy(dtype=float)
    for i, rec in enumerate(records):
        if not verdicts[i]:
            hib = metrics.higher_is_better(str(rec["metric"]))
            verdicts[i] = verdict(float(changes[i]), float(q_values[i]), hib, threshold, alpha)
    table["verdict"] = verdicts
    return table


def adjust(p_values: FloatArray, correction: str) -> FloatArray:
    """Multiple-comparison adjusted p-values ('bh' = Benjamini-Hochberg, 'none'); NaN kept."""
    if correction not in CORRECTIONS:
        msg = f"unknown correction {correction!r} (expected one of {', '.join(CORRECTIONS)})"
        raise ValueError(msg)
    adjusted = p_values.astype(float).copy()
    finite = np.isfinite(adjusted)
    if correction == "bh" and finite.any():
        adjusted[finite] = sps.false_discovery_control(adjusted[finite], method="bh")
    return adjusted


def mann_whitney_p(a: FloatArray, b: FloatArray) -> float:
    """Two-sided Mann-Whitney U p-value (NaN when a side has fewer than 2 values or no spread)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def has_regression(table: pd.DataFrame) -> bool:
    """True when the comparison holds at least one significant regression."""
    return bool((table["verdict"] == "regression").any()) if not table.empty else False


def parse_threshold(text: str) -> float:
    """'5%' -> 0.05, '0.05' -> 0.05; raises ValueError on nonsense or a negative value."""
    raw = text.strip()
    value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    if not np.isfinite(value) or value < 0:
        msg = f"threshold must be a non-negative number or percentage, got {text!r}"
        raise ValueError(msg)
    return value
