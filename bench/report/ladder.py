"""The isolation ladder: variants ordered from least to most isolation, each step's cost.

Rungs, bottom to top: native -> namespaces (bubblewrap) -> + cgroup -> + seccomp -> Docker
(runc/crun) -> Podman -> gVisor (Docker with runsc) -> VM. Per scenario and metric, every
measured variant is placed on its rung and compared with the *step below*: the representative
variant of the nearest lower rung that was measured (for several variants on one rung, the
most default one: runc before crun, default seccomp before unconfined, rootful before
rootless). Ratios follow the report's convention, > 1 always means "costs more" (throughputs
inverted), with the same bootstrap CI as the overhead ratios; the cumulative ratio to native
is the product a waterfall adds up. Pure: takes the summary table and the samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from bench import stats as st

#: (rank, rung name) in ladder order.
RUNGS: Final = (
    "native",
    "namespaces",
    "+ cgroup",
    "+ seccomp",
    "Docker (runc/crun)",
    "Podman",
    "gVisor",
    "VM",
)


def _params(variant: str) -> dict[str, str]:
    pairs = (part.partition("=") for part in variant.split(","))
    return {key: value for key, sep, value in pairs if sep}


def rung_of(backend: str, variant: str) -> int | None:
    """The rung index of a (backend, variant), or None when it is not on the ladder."""
    params = _params(variant)
    if backend == "native":
        return 0
    if backend == "sandbox":
        layers = params.get("layers", "namespaces").split("+")
        if "seccomp" in layers:
            return 3
        return 2 if "cgroup" in layers else 1
    if backend == "docker":
        return 6 if params.get("runtime") == "runsc" or "platform" in params else 4
    if backend == "podman":
        return 5
    if backend == "vagrant":
        return 7
    return None


def _default_rank(variant: str) -> tuple[int, str]:
    """Lower = more default (the representative of its rung)."""
    odd = ("unconfined", "path=cli", "storage=volume", "rootless", "runtime=crun", "network=host")
    return (sum(word in variant for word in odd), variant)


@dataclass(frozen=True, slots=True)
class Step:
    """One variant on the ladder for one metric."""

    rung: int
    backend: str
    variant: str
    median: float
    below: str  # "backend/variant" of the step below ("" for the bottom)
    ratio: float  # to the step below; > 1 costs more
    ratio_low: float
    ratio_high: float
    cumulative: float  # to the bottom of this ladder (native when measured)


def _cost_ratio(
    mine: st.FloatArray, base: st.FloatArray, higher_is_better: bool
) -> tuple[float, float, float]:
    my_med, base_med = float(np.median(mine)), float(np.median(base))
    if higher_is_better:
        ratio = base_med / my_med if my_med else math.nan
        low, high = st.ratio_ci(base, mine)
    else:
        ratio = my_med / base_med if base_med else math.nan
        low, high = st.ratio_ci(mine, base)
    return ratio, low, high


def steps(rows: pd.DataFrame, samples: Mapping[tuple[str, ...], st.FloatArray]) -> list[Step]:
    """The ladder of one host x scenario x metric (``rows``: its summary-table rows)."""
    placed: dict[int, list[tuple[str, str]]] = {}
    for backend, variant in rows[["backend", "variant"]].itertuples(index=False):
        rung = rung_of(str(backend), str(variant))
        if rung is not None:
            placed.setdefault(rung, []).append((str(backend), str(variant)))
    if not placed:
        return []
    first = rows.iloc[0]
    higher = bool(first["higher_is_better"])
    prefix = (str(first["host"]), str(first["scenario"]))
    metric = str(first["metric"])

    def values(backend: str, variant: str) -> st.FloatArray:
        return np.sort(samples[(*prefix, backend, variant, metric)])

    out: list[Step] = []
    below: tuple[str, str] | None = None
    bottom: tuple[str, str] | None = None
    for rung in sorted(placed):
        members = sorted(placed[rung], key=lambda bv: _default_rank(bv[1]))
        for backend, variant in members:
            mine = values(backend, variant)
            ratio = low = high = cumulative = math.nan
            if below is not None and bottom is not None:
                ratio, low, high = _cost_ratio(mine, values(*below), higher)
                cumulative = _cost_ratio(mine, values(*bottom), higher)[0]
            elif bottom is None:
                cumulative = 1.0
            step_below = f"{below[0]}/{below[1]}" if below else ""
            median = float(np.median(mine))
            out.append(
                Step(rung, backend, variant, median, step_below, ratio, low, high, cumulative)
            )
        below = members[0]
        bottom = bottom or members[0]
    return out


def ladder_table(
    table: pd.DataFrame,
    samples: Mapping[tuple[str, ...], st.FloatArray],
    scenarios: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Ladders per host x scenario x metric with at least two rungs measured."""
    if table.empty:
        return []
    chosen = table if scenarios is None else table[table["scenario"].isin(list(scenarios))]
    out: list[dict[str, Any]] = []
    for (host, scenario, metric), rows in chosen.groupby(
        ["host", "scenario", "metric"], sort=True, observed=True
    ):
        found = steps(rows, samples)
        if len({s.rung for s in found}) < 2:
            continue
        out.append(
            {
                "host": str(host),
                "scenario": str(scenario),
                "metric": str(metric),
                "unit": str(rows["unit"].iloc[0]),
                "higher_is_better": bool(rows["higher_is_better"].iloc[0]),
                "steps": found,
            }
        )
    return out


def flagged_scenarios(envs: Sequence[Mapping[str, Any]]) -> set[str]:
    """Scenarios whose definition sets ``ladder: true`` in any of the runs."""
    names: set[str] = set()
    for env in envs:
        scenarios = env.get("scenarios")
        if not isinstance(scenarios, Mapping):
            continue
        for name, info in scenarios.items():
            definition = info.get("definition") if isinstance(info, Mapping) else None
            if isinstance(definition, Mapping) and definition.get("ladder") is True:
                names.add(str(name))
    return names


# --- the report section -------------------------------------------------------------------


def _waterfall(found: Sequence[Step]) -> list[tuple[float, float]]:
    """(left %, width %) of each step's bar on a log axis from the ladder's min to max."""
    cumulative = {(s.backend, s.variant): s.cumulative for s in found}
    logs: list[tuple[float, float]] = []
    for step in found:
        end = math.log(step.cumulative) if step.cumulative > 0 else math.nan
        below = tuple(step.below.split("/", 1)) if step.below else None
        start_value = cumulative.get(below, 1.0) if below else 1.0  # type: ignore[arg-type]
        start = math.log(start_value) if start_value > 0 else math.nan
        logs.append((start, end))
    finite = [x for pair in logs for x in pair if math.isfinite(x)] + [0.0]
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    bars = []
    for start, end in logs:
        if not (math.isfinite(start) and math.isfinite(end)):
            bars.append((0.0, 0.0))
            continue
        left = (min(start, end) - low) / span * 100
        bars.append((left, max(abs(end - start) / span * 100, 0.5)))
    return bars


def section(
    table: pd.DataFrame,
    samples: Mapping[tuple[str, ...], st.FloatArray],
    envs: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Template context of the ladder section: scenarios flagged ``ladder: true`` only."""
    from bench.report import format as fmt  # noqa: PLC0415 - keeps the pure part import-light

    flagged = flagged_scenarios(envs)
    if not flagged:
        return []
    out = []
    for ladder in ladder_table(table, samples, flagged):
        rows = []
        for step, (left, width) in zip(ladder["steps"], _waterfall(ladder["steps"]), strict=True):
            known = math.isfinite(step.ratio)
            rows.append(
                {
                    "rung": RUNGS[step.rung],
                    "backend": step.backend,
                    "variant": step.variant,
                    "median": fmt.value(step.median, ladder["unit"]),
                    "ratio": fmt.ratio(step.ratio) if known else "bottom",
                    "ci": f"[{fmt.ratio(step.ratio_low)}, {fmt.ratio(step.ratio_high)}]"
                    if known
                    else "",
                    "below": step.below,
                    "cumulative": fmt.ratio(step.cumulative),
                    "cls": fmt.ratio_class(step.ratio, step.ratio_low, step.ratio_high)
                    if known
                    else "base",
                    "left": f"{left:.1f}",
                    "width": f"{width:.1f}",
                }
            )
        out.append({**{k: ladder[k] for k in ("host", "scenario", "metric")}, "rows": rows})
    return out
