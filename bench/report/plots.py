"""Report figures: seaborn/matplotlib rendered to SVG data URIs (no files, no network).

Statistics always use every sample. Only the *strip* layer (one dot per sample) is
subsampled when a box holds more than :data:`STRIP_POINTS` values, so that a million-row
report stays small and fast; the caption says so whenever it happens.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench import metrics
from bench.report import format as fmt
from bench.stats import FloatArray

STRIP_POINTS: Final = 100
#: Use a log axis when the medians of one plot differ by more than this factor.
LOG_SPREAD: Final = 20.0
PALETTE: Final = {"native": "#4c9a2a", "docker": "#2f6db5", "vagrant": "#d9822b"}
_FALLBACK: Final = "#7a7a7a"
#: Stack segment of what startup.total holds beyond its catalogued phases.
OTHER: Final = "other"
#: Phases summing past startup.total by more than this are not stacked (not sequential).
OVERSHOOT: Final = 0.01
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class Plot:
    """One inlined figure."""

    title: str
    uri: str
    caption: str


def _to_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(frame: pd.DataFrame, with_scenario: bool, with_host: bool) -> pd.Series:
    label = frame["backend"].astype(str) + " · " + frame["variant"].astype(str)
    if with_scenario:
        label = frame["scenario"].astype(str) + " · " + label
    if with_host:
        label = frame["host"].astype(str) + " · " + label
    return label.map(_printable)


def _printable(text: str) -> str:
    """Control characters (newlines from workload output, CR...) as spaces: one-line labels."""
    return _CONTROL.sub(" ", text)


def _colors(backends: Sequence[str]) -> list[str]:
    return [PALETTE.get(b, _FALLBACK) for b in backends]


def _box_stats(values: np.ndarray, label: str) -> dict[str, Any]:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    return {
        "med": med,
        "q1": q1,
        "q3": q3,
        "whislo": float(inside.min()) if len(inside) else q1,
        "whishi": float(inside.max()) if len(inside) else q3,
        "fliers": [],
        "label": label,
    }


def _figure(n_rows: int, labels: Sequence[str], right: float = 0.3) -> tuple[Figure, Axes]:
    # Fixed margins sized from the longest label: bbox_inches="tight" would draw every figure
    # twice, which dominates report time.
    left = min(0.12 + 0.0062 * max((len(s) for s in labels), default=10), 0.55) * 10.0
    height = 0.9 + 0.42 * n_rows
    fig = plt.figure(figsize=(10.0, height))
    width = 1 - (left + right) / 10.0
    ax = fig.add_axes((left / 10.0, 0.55 / height, width, 1 - 0.8 / height))
    return fig, ax


def _key_label(key: tuple[str, ...], with_scenario: bool, with_host: bool) -> str:
    host, scenario, backend, variant, _ = key
    label = f"{backend} · {variant}"
    if with_scenario:
        label = f"{scenario} · {label}"
    if with_host:
        label = f"{host} · {label}"
    return _printable(label)


def distribution(
    groups: Mapping[tuple[str, ...], FloatArray], metric: str, unit: str, multi_host: bool
) -> Plot:
    """Box plot (every sample) + strip plot (bounded seeded subsample) per backend/variant."""
    with_scenario = len({k[1] for k in groups}) > 1
    by_label = {_key_label(k, with_scenario, multi_host): (k[2], v) for k, v in groups.items()}
    order = sorted(by_label, key=lambda s: (_backend_rank(s), s))
    everything = np.concatenate([v for _, v in by_label.values()])
    divisor, shown_unit = fmt.scale_for(float(np.median(np.abs(everything))), unit)
    total = len(everything)
    fig, ax = _figure(len(order), order)
    rng = np.random.default_rng(0)
    drawn = 0
    boxes = []
    for position, label in enumerate(order):
        backend, raw = by_label[label]
        mine = raw / divisor
        color = PALETTE.get(backend, _FALLBACK)
        boxes.append((_box_stats(mine, label), color))
        shown = mine if len(mine) <= STRIP_POINTS else rng.choice(mine, STRIP_POINTS, replace=False)
        drawn += len(shown)
        jitter = rng.uniform(-0.18, 0.18, len(shown))
        ax.scatter(
            shown,
            position + jitter,
            s=14,
            color=color,
            alpha=0.7,
            edgecolors="white",
            linewidths=0.4,
            zorder=3,
        )
    artists = ax.bxp(
        [b[0] for b in boxes],
        positions=range(len(order)),
        orientation="horizontal",
        widths=0.6,
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "black", "linewidth": 1.6},
    )
    for patch, (_, color) in zip(artists["boxes"], boxes, strict=True):
        patch.set_facecolor(color)
        patch.set_alpha(0.3)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    medians = [b[0]["med"] for b in boxes]
    log = min(medians) > 0 and max(medians) / min(medians) > LOG_SPREAD
    if log:
        # Native vs VM can differ 1000x: on a linear axis the fast boxes collapse to a line.
        ax.set_xscale("log")
    ax.set_xlabel(_printable(f"{metric} [{shown_unit}]") + (" — log scale" if log else ""))
    ax.grid(axis="x", alpha=0.3)
    caption = f"{total:,} samples; box = quartiles, whiskers = 1.5 IQR, line = median"
    if drawn < total:
        caption += (
            f"; dots: a seeded random subsample of at most {STRIP_POINTS} per box "
            f"({drawn:,} drawn), while boxes and every statistic use all samples"
        )
    return Plot(metric, _to_uri(fig), caption)


def metric_rank(metric: str) -> tuple[int, str]:
    """Catalog order first (headline metrics lead each family), then by name."""
    names = list(metrics.CATALOG)
    return (names.index(metric) if metric in names else len(names), metric)


def _backend_rank(label: str) -> int:
    for rank, name in enumerate(("native", "docker", "vagrant")):
        if f"{name} · " in label or label.startswith(name):
            return rank
    return 9


def phase_segments(medians: Mapping[str, float]) -> list[tuple[str, float]]:
    """Sequential phases of one startup path as (label, seconds), plus "other" up to the total.

    ``medians``: metric -> median of one backend variant. The first path of
    :data:`bench.metrics.STARTUP_PHASES` whose metrics are all present is used; empty when none
    is, or when the phases add up to more than startup.total (they would not be sequential).
    """
    total = medians.get("startup.total")
    for path in metrics.STARTUP_PHASES:
        needed = [p.metric for p in path] + [p.since for p in path if p.since]
        if not all(name in medians for name in needed):
            continue
        segments = [
            (p.label, max(medians[p.metric] - (medians[p.since] if p.since else 0.0), 0.0))
            for p in path
        ]
        stacked = sum(width for _, width in segments)
        if total is None:
            return segments
        if stacked > total * (1 + OVERSHOOT):
            return []
        return [*segments, (OTHER, max(total - stacked, 0.0))]
    return []


def startup_phases(summary: pd.DataFrame, multi_host: bool) -> list[Plot]:
    """Per backend: stacked sequential startup phases per variant, "other" up to the total."""
    startup = summary[summary["family"] == "startup"]
    plots: list[Plot] = []
    with_scenario = summary["scenario"].nunique() > 1
    for backend, group in startup.groupby("backend", sort=True, observed=True):
        part = group.assign(label=_label(group, with_scenario, multi_host))
        stacks = {
            str(label): phase_segments(dict(zip(rows["metric"], rows["median"], strict=True)))
            for label, rows in part.groupby("label", sort=True)
        }
        stacks = {label: segs for label, segs in stacks.items() if segs}
        if not stacks:
            continue
        plots.append(_phase_plot(str(backend), stacks))
    return plots


def _phase_plot(backend: str, stacks: Mapping[str, list[tuple[str, float]]]) -> Plot:
    order = sorted(stacks)
    names = list(dict.fromkeys(name for segs in stacks.values() for name, _ in segs))
    colors = dict(zip(names, sns.color_palette("Set2", len(names)), strict=True))
    colors[OTHER] = (0.8, 0.8, 0.8)
    longest = max(sum(w for _, w in segs) for segs in stacks.values())
    divisor, unit = fmt.scale_for(float(longest), "s")
    fig, ax = _figure(len(order) + 1, order, right=1.6)
    left = np.zeros(len(order))
    for name in names:
        widths = np.array([dict(stacks[lbl]).get(name, 0.0) for lbl in order]) / divisor
        ax.barh(order, widths, left=left, color=colors[name], label=name)
        left += widths
    ax.set_ylim(len(order) - 0.4, -0.6)
    ax.set_xlabel(f"median time [{unit}]")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    caption = (
        "medians of the sequential phases inside startup.total, stacked; the bar ends at the "
        "median startup.total, its unexplained part shown as “other”; teardown (remove, halt, "
        "destroy) comes after startup.total and is not stacked"
    )
    return Plot(f"startup phases: {backend}", _to_uri(fig), caption)


def median_bars(summary: pd.DataFrame, metric: str, multi_host: bool) -> Plot | None:
    """Horizontal bars of medians with their 95 % CI (e.g. memory.environment)."""
    rows = summary[summary["metric"] == metric]
    if rows.empty:
        return None
    rows = rows.assign(label=_label(rows, rows["scenario"].nunique() > 1, multi_host))
    rows = rows.iloc[sorted(range(len(rows)), key=lambda i: _backend_rank(rows["label"].iloc[i]))]
    unit = str(rows["unit"].iloc[0])
    divisor, shown = fmt.scale_for(float(rows["median"].abs().max()), unit)
    med = rows["median"].to_numpy(dtype=float) / divisor
    low = np.clip(med - rows["ci_low"].to_numpy(dtype=float) / divisor, 0, None)
    high = np.clip(rows["ci_high"].to_numpy(dtype=float) / divisor - med, 0, None)
    fig, ax = _figure(len(rows), list(rows["label"]))
    bars = ax.barh(
        rows["label"],
        med,
        xerr=[low, high],
        color=_colors(list(rows["backend"].astype(str))),
        alpha=0.8,
        capsize=3,
    )
    ax.bar_label(bars, [fmt.value(v, unit) for v in rows["median"]], padding=6, fontsize="small")
    ax.set_xlim(0, float(np.nanmax(med + high)) * 1.18)
    ax.invert_yaxis()
    ax.set_xlabel(f"median {metric} [{shown}] with 95 % CI")
    ax.grid(axis="x", alpha=0.3)
    return Plot(f"{metric} (medians)", _to_uri(fig), "bars: median; whiskers: 95 % CI of median")


def family_plots(
    samples: Mapping[tuple[str, ...], FloatArray],
    summary: pd.DataFrame,
    family: str,
    multi_host: bool,
) -> list[Plot]:
    """Every figure of one metric family section."""
    plots: list[Plot] = []
    with mpl.rc_context(), sns.axes_style("whitegrid"):
        # Deterministic SVG ids; fonts stay matplotlib's defaults (text drawn as paths).
        mpl.rcParams["svg.hashsalt"] = "isobench"
        mpl.rcParams["figure.dpi"] = 96
        if family == "startup":
            plots.extend(startup_phases(summary, multi_host))
        if family == "memory":
            for metric in ("memory.environment", "memory.workload_peak"):
                bars = median_bars(summary, metric, multi_host)
                if bars:
                    plots.append(bars)
        units = dict(zip(summary["metric"], summary["unit"], strict=False))
        for metric in sorted({str(m) for m in summary["metric"]}, key=metric_rank):
            groups = {k: v for k, v in samples.items() if k[4] == metric}
            if groups:
                plots.append(distribution(groups, metric, str(units.get(metric, "")), multi_host))
    return plots
