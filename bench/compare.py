"""Run comparison and regression gate (pure; the CLI lives in bench.commands.compare).

What is compared, per scenario x backend x variant x metric:

* ``ratio``: the overhead ratio measured **within each run** (container/native, VM/native,
  oriented so that > 1 costs more). A new CI machine moves native and isolated figures
  together, so ratios survive it; they are always gated.
* ``median``: the raw medians. Gated only when every run of both sides comes from one host
  (the caller says so with ``gate_medians``); otherwise shown and marked "not gated".

The change is the difference of mean run levels (log of each run's median). Its noise is the
spread of the run levels when a side holds several runs (the run is the sampling unit; the
variance is moderated within the metric family, see :func:`bench.stats.moderate`), else the
within-run noise only, and the output says which. A change counts when its interval, at a
confidence corrected for the number of comparisons **in its metric family** (Bonferroni),
lies entirely beyond the threshold. ``detectable`` is the smallest change the data could
tell from no change (80 % power); ``needed_n`` how many samples per run would bring it under
the threshold (None when run-to-run spread alone exceeds it: more runs are needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import numpy as np
import pandas as pd

from bench import metrics, results
from bench import stats as st

KEYS: Final = ("scenario", "backend", "variant", "metric")
DEFAULT_THRESHOLD: Final = 0.05
ALPHA: Final = 0.05
#: Fewest samples per run for an interval (below it the order-statistic CI of a median
#: covers < 94 % and no ratio CI is given).
MIN_N: Final = st.MIN_SAMPLES
MAX_N: Final = 1000
KINDS: Final = ("ratio", "median")

COLUMNS: Final = [
    "kind",
    *KEYS,
    "unit",
    "family",
    "runs_base",
    "runs_new",
    "n_base",
    "n_new",
    "base",
    "base_low",
    "base_high",
    "base_coverage",
    "new",
    "change",
    "change_low",
    "change_high",
    "confidence",
    "basis",
    "between_spread",
    "detectable",
    "needed_n",
    "gated",
    "verdict",
    "note",
]

Runs = dict[str, st.FloatArray]  # run_id -> sorted measured values


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


def _per_run(frame: pd.DataFrame) -> dict[tuple[str, ...], Runs]:
    """Measured values per key, then per run."""
    rows = st.measured(frame)
    out: dict[tuple[str, ...], Runs] = {}
    if rows.empty:
        return out
    values = rows["value"].to_numpy(dtype=np.float64)
    indices = rows.groupby([*KEYS, "run_id"], sort=True, observed=True).indices
    for raw_key, idx in indices.items():
        key = tuple(str(p) for p in cast("tuple[object, ...]", raw_key))
        out.setdefault(key[:4], {})[key[4]] = np.sort(values[idx])
    return out


def _ratio_runs(groups: Mapping[tuple[str, ...], Runs]) -> dict[tuple[str, ...], list[Any]]:
    """Per non-native key: [(backend values, native values)] per run that has both."""
    natives: dict[tuple[str, str], tuple[str, ...]] = {}
    for key in groups:
        scenario, backend, variant, metric = key
        if backend == st.NATIVE and ((scenario, metric) not in natives or variant == "host"):
            natives[(scenario, metric)] = key
    out: dict[tuple[str, ...], list[Any]] = {}
    for key, runs in groups.items():
        native_key = natives.get((key[0], key[3]))
        if key[1] == st.NATIVE or native_key is None:
            continue
        native_runs = groups[native_key]
        pairs = [(runs[r], native_runs[r]) for r in sorted(runs) if r in native_runs]
        if pairs:
            out[key] = pairs
    return out


def _levels(kind: str, metric: str, side: Sequence[Any]) -> list[st.RunLevel] | None:
    """Run levels of one side (None when some run cannot be put on a log scale)."""
    levels = []
    for item in side:
        if kind == "ratio":
            mine, native = item
            cost = not metrics.higher_is_better(metric)
            level = st.ratio_level(mine, native) if cost else st.ratio_level(native, mine)
        else:
            level = st.run_level(item)
        if level is None:
            return None
        levels.append(level)
    return levels


def compare(
    base: pd.DataFrame,
    new: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    alpha: float = ALPHA,
    gate_medians: bool = True,
) -> pd.DataFrame:
    """One row per kind x scenario x backend x variant x metric present in either side."""
    base_g, new_g = _per_run(base), _per_run(new)
    units = _units(pd.concat([base, new]))
    sides: dict[tuple[str, ...], tuple[list[Any], list[Any]]] = {}
    for key in base_g.keys() | new_g.keys():
        b, n = base_g.get(key, {}), new_g.get(key, {})
        sides[("median", *key)] = ([b[r] for r in sorted(b)], [n[r] for r in sorted(n)])
    base_r, new_r = _ratio_runs(base_g), _ratio_runs(new_g)
    for key in base_r.keys() | new_r.keys():
        sides[("ratio", *key)] = (base_r.get(key, []), new_r.get(key, []))
    rows = [_describe(k, *sides[k], units.get(k[4], ""), gate_medians) for k in sorted(sides)]
    table = pd.DataFrame.from_records([r for r, _ in rows], columns=COLUMNS)
    text = ("verdict", "basis", "note", "gated", "base_coverage")
    table = table.astype(dict.fromkeys(text, object))
    numeric = [c for c in COLUMNS[COLUMNS.index("base") : COLUMNS.index("gated")] if c not in text]
    table[numeric] = table[numeric].astype(float)
    _decide(table, [lv for _, lv in rows], threshold, alpha)
    order = {kind: i for i, kind in enumerate(KINDS)}
    ranked = table.assign(_k=table["kind"].map(order)).sort_values(["_k", *KEYS], kind="stable")
    return ranked.drop(columns="_k").reset_index(drop=True)


def _units(frame: pd.DataFrame) -> dict[str, str]:
    pairs = frame[["metric", "unit"]].dropna().drop_duplicates("metric")
    return {str(m): str(u) for m, u in pairs.itertuples(index=False)}


def _sizes(kind: str, side: Sequence[Any]) -> int:
    if kind == "ratio":
        return sum(min(len(a), len(b)) for a, b in side)
    return sum(len(v) for v in side)


def _describe(
    key: tuple[str, ...], base: list[Any], new: list[Any], unit: str, gate_medians: bool
) -> tuple[dict[str, object], tuple[list[st.RunLevel], list[st.RunLevel]] | None]:
    """The row of one comparison before the decision, and its run levels when gateable."""
    kind, metric = key[0], key[4]
    row: dict[str, object] = dict(zip(["kind", *KEYS], key, strict=True))
    row.update(
        unit="" if kind == "ratio" else unit,
        family=f"{kind}:{metrics.family(metric)}",
        runs_base=len(base),
        runs_new=len(new),
        n_base=_sizes(kind, base),
        n_new=_sizes(kind, new),
        gated=False,
        note="",
        basis="",
    )
    if not base or not new:
        row["verdict"] = "only in base" if base else "only in new"
        return row, None
    base_lv, new_lv = _levels(kind, metric, base), _levels(kind, metric, new)
    if base_lv is None or new_lv is None:
        if kind == "median":
            row.update(base=float(np.median(np.concatenate(base))))
            row.update(new=float(np.median(np.concatenate(new))))
        row.update(verdict="not gated", note="values <= 0: no relative change")
        return row, None
    row.update(
        base=float(np.exp(np.mean([r.level for r in base_lv]))),
        new=float(np.exp(np.mean([r.level for r in new_lv]))),
    )
    row["change"] = float(row["new"]) / float(row["base"]) - 1  # type: ignore[arg-type]
    if kind == "median":
        row.update(_baseline_interval(base))
    if len(base_lv) > 1:
        row["between_spread"] = float(np.expm1(np.std([r.level for r in base_lv], ddof=1)))
    smallest = min(r.n for r in (*base_lv, *new_lv))
    if smallest < MIN_N:
        row.update(verdict="not gated", note=f"n = {smallest} < {MIN_N} in a run: no interval")
        return row, None
    if kind == "median" and not gate_medians:
        row["note"] = "host changed: raw medians not gated"
    else:
        row["gated"] = True
    return row, (base_lv, new_lv)


def _baseline_interval(runs: list[st.FloatArray]) -> dict[str, object]:
    """The baseline median's interval: hierarchical bootstrap over runs, else order stats.

    Several runs: resample runs, then samples within them (the run is the unit; nominal
    95 %, percentile bootstrap). One run: the order-statistic interval and its exact coverage.
    """
    if len(runs) > 1:
        low, high = st.hierarchical_median_ci(runs)
        return {"base_low": low, "base_high": high, "base_coverage": "95% between-run"}
    low, high, coverage = st.median_ci(np.sort(runs[0]))
    return {"base_low": low, "base_high": high, "base_coverage": f"{coverage:.1%} within-run"}


def _decide(
    table: pd.DataFrame,
    levels: Sequence[tuple[list[st.RunLevel], list[st.RunLevel]] | None],
    threshold: float,
    alpha: float,
) -> None:
    """Intervals, detectable change and verdicts, with noise moderated per metric family."""
    bound = float(np.log1p(threshold))
    # alpha is split evenly over the families, then Bonferroni within each: a gate run of F
    # families flags an A/A change with probability <= alpha overall, and a family's
    # correction depends on its own size only (not on one pool of every comparison).
    gated_families = table.loc[table["gated"].astype(bool), "family"].nunique()
    alpha_family = alpha / max(gated_families, 1)
    for family in table["family"].unique():
        rows = np.flatnonzero(table["family"] == family).tolist()
        idx = [i for i in rows if levels[i] is not None]
        gated = [i for i in idx if bool(table.at[i, "gated"])]
        confidence = st.family_level(len(gated), alpha_family)
        pairs = [cast("tuple[list[st.RunLevel], list[st.RunLevel]]", levels[i]) for i in idx]
        noises = st.moderate([st.run_noise(b, n) for b, n in pairs])
        for i, (b, n), noise in zip(idx, pairs, noises, strict=True):
            change = st.shift(b, n, noise)
            low, high = st.shift_interval(change, confidence)
            resolution = st.detectable_change(change, confidence)
            table.loc[i, ["change_low", "change_high"]] = [np.expm1(low), np.expm1(high)]
            table.at[i, "confidence"] = confidence
            table.at[i, "basis"] = (
                f"between-run ({len(b)}+{len(n)} runs)" if noise.between_runs else "within-run"
            )
            table.at[i, "detectable"] = float(np.expm1(resolution))
            if resolution > bound:
                table.at[i, "needed_n"] = _needed_n(b, n, noise, confidence, bound)
            if not bool(table.at[i, "gated"]):
                table.at[i, "verdict"] = "not gated"
                continue
            worse = _worse(str(table.at[i, "kind"]), str(table.at[i, "metric"]), low, high, bound)
            table.at[i, "verdict"] = worse
    table["verdict"] = table["verdict"].fillna("not significant")


def _worse(kind: str, metric: str, low: float, high: float, bound: float) -> str:
    """Verdict of one gated interval (log scale) against the threshold ``bound``."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not significant"
    up_is_bad = kind == "ratio" or not metrics.higher_is_better(metric)
    if low > bound:
        return "regression" if up_is_bad else "improvement"
    if high < -bound:
        return "improvement" if up_is_bad else "regression"
    return "not significant"


def _needed_n(
    base: list[st.RunLevel],
    new: list[st.RunLevel],
    noise: st.Noise,
    confidence: float,
    bound: float,
) -> float:
    """Samples per run that bring the detectable change within ``bound`` (NaN: none does)."""
    for n in range(min(r.n for r in (*base, *new)) + 1, MAX_N + 1):
        if st.detectable_change(st.shift(base, new, noise, n), confidence) <= bound:
            return float(n)
    return np.nan


def has_regression(table: pd.DataFrame) -> bool:
    """True when the comparison holds at least one gated regression."""
    return bool((table["verdict"] == "regression").any()) if not table.empty else False


THRESHOLD_EXAMPLE: Final = "write it with a unit, e.g. --threshold 5% (or as a fraction: 0.05)"


def parse_threshold(text: str) -> float:
    """'5%' -> 0.05, '0.05' -> 0.05; a bare number >= 1 ('5') is ambiguous and refused."""
    raw = text.strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        msg = f"threshold {text!r} is not a number; {THRESHOLD_EXAMPLE}"
        raise ValueError(msg) from None
    if not np.isfinite(value) or value < 0:
        msg = f"threshold {text!r} must be a non-negative number; {THRESHOLD_EXAMPLE}"
        raise ValueError(msg)
    if raw.endswith("%"):
        return value / 100
    if value >= 1:
        msg = f"threshold {text!r} is ambiguous ({value:g}% or {value:.0%}?); {THRESHOLD_EXAMPLE}"
        raise ValueError(msg)
    return value


#: Host facts listed when two runs come from different hosts (environment.json ``host``).
HOST_FACTS: Final = ("hostname", "cpu_model", "cpu_count", "memory_bytes", "kernel", "os")


@dataclass(frozen=True, slots=True)
class HostCheck:
    """Whether every run of both sides comes from one host, and the facts that differ."""

    same: bool
    differences: tuple[str, ...]
    notes: tuple[str, ...]


def host_id(environment: Mapping[str, Any]) -> tuple[str, str]:
    """(host key, how it was found): the fingerprint, or the fallback of older runs."""
    identity = _host(environment).get("identity")
    found = isinstance(identity, Mapping) and bool(identity.get("fingerprint"))
    return results.host_key(environment), "fingerprint" if found else "fallback"


def check_hosts(base: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> HostCheck:
    """Compare the hosts of the base runs and the new runs (environment.json contents)."""
    envs = [*base, *new]
    ids = [host_id(env) for env in envs]
    notes = []
    if any(how == "fallback" for _, how in ids):
        notes.append(
            "some runs predate host fingerprints: hosts told apart by hostname and the "
            "recorded hardware facts only"
        )
    if len({identity for identity, _ in ids}) <= 1:
        return HostCheck(True, (), tuple(notes))
    differences = [f"host: {', '.join(sorted({i for i, _ in ids}))}"]
    for fact in HOST_FACTS:
        seen = {str(_host(env).get(fact)) for env in envs}
        if len(seen) > 1:
            differences.append(f"{fact}: {' | '.join(sorted(seen))}")
    return HostCheck(False, tuple(differences), tuple(notes))


def _host(environment: Mapping[str, Any]) -> Mapping[str, Any]:
    host = environment.get("host")
    return host if isinstance(host, Mapping) else {}
