"""Trend figures for the published site: overhead ratio per run over time, with its CI.

One figure per host x metric: a line per backend/variant through each run's ratio to that
run's native, a band for each run's ratio CI (within-run: it says nothing about between-run
spread, which the line itself shows), and a red ring on runs where ``isobench compare``
flagged a regression of that metric.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Final

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.report import glance
from bench.report.plots import PALETTE, _to_uri

FALLBACK = "#7a7a7a"
#: A series of more runs than this is drawn as a line without a dot per run: the dots would
#: overlap into a thick line anyway, and drawing them was a third of a large site's plotting.
MARKER_POINTS: Final = 120


def trend_plot(rows: pd.DataFrame, metric: str, flagged: Mapping[str, set[str]]) -> str:
    """SVG data URI of ``metric``'s overhead ratio over runs (``rows`` of one host)."""
    fig, ax = plt.subplots(figsize=(10.0, 3.6))
    fig.subplots_adjust(left=0.07, right=0.64, top=0.9, bottom=0.27)
    series = rows.sort_values("started")
    # Runs on a plain numeric axis (seconds since the first run) with a few hand-placed date
    # labels: matplotlib's date locators cost ~1 s per figure and dominate a large site.
    seconds = (series["started"] - series["started"].min()).dt.total_seconds()
    series = series.assign(x=seconds.to_numpy(dtype=float))
    ratios = series["ratio"].astype(float)
    spread = ratios[ratios > 0]
    if len(spread) and spread.max() / spread.min() > 20:
        ax.set_yscale("log")
    for (backend, variant), part in series.groupby(["backend", "variant"], observed=True):
        colour = PALETTE.get(str(backend), FALLBACK)
        x = part["x"].to_numpy(dtype=float)
        y = part["ratio"].to_numpy(dtype=float)
        low = part["ratio_low"].to_numpy(dtype=float)
        high = part["ratio_high"].to_numpy(dtype=float)
        label = textwrap.fill(
            glance.column_label(str(backend), str(variant)).replace(",", ", "), 40
        )
        marker = "o" if len(x) <= MARKER_POINTS else None
        ax.plot(x, y, marker=marker, markersize=3, linewidth=1.2, color=colour, label=label)
        ok = np.isfinite(low) & np.isfinite(high)
        if ok.any():
            ax.fill_between(x[ok], low[ok], high[ok], color=colour, alpha=0.18, linewidth=0)
        marked = [
            i for i, (run, scen) in enumerate(zip(part["run_id"], part["scenario"], strict=True))
            if f"{scen}/{backend}/{metric}" in flagged.get(str(run), set())
        ]  # fmt: skip
        if marked:
            ax.scatter(x[marked], y[marked], s=90, facecolors="none", edgecolors="#c0392b",
                       linewidths=1.6, zorder=5)  # fmt: skip
    ax.axhline(1.0, color="#333", linewidth=0.8, linestyle="--")
    ax.text(0, 1.02, f"{metric}: overhead vs native (> 1 costs more)", fontsize=10,
            transform=ax.transAxes)  # fmt: skip
    ax.set_ylabel("ratio")
    ticks = np.unique(np.linspace(0, len(series) - 1, min(len(series), 6)).round().astype(int))
    ax.set_xticks(series["x"].to_numpy()[ticks])
    ax.set_xticklabels(
        [s.strftime("%m-%d %H:%M") for s in series["started"].iloc[ticks]], fontsize=8, rotation=30
    )
    ax.set_xlabel("run start (UTC)", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _to_uri(fig)
