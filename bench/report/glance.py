"""The at-a-glance figure: overhead by metric family (rows) x backend/variant (columns), per host.

Pure: it reads the summary table (:func:`bench.report.summary.summary_table`) and returns
cells ready to draw. Definitions (docs/report.md, "At a glance"):

* a cell's value is the **geometric mean of the overhead ratios** of every metric of that family
  measured for that backend/variant on that host (each ratio > 1 means "costs more"; the
  geometric mean is the only average of ratios that treats 2x and 0.5x symmetrically);
* a cell is marked **unclear** when no ratio in it has a CI that excludes 1 (nothing in that
  family is distinguishable from native in this run), and **no CI** when none has a CI at all;
* the colour is a diverging scale on log10(ratio), centred on 1x and saturating at
  1/:data:`SATURATION` and :data:`SATURATION`: blue cheaper than native, red costlier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from bench.report import format as fmt

#: Ratio at which the colour saturates (and its inverse on the cheaper side).
SATURATION: Final = 100.0
FAMILY_ORDER: Final = ("startup", "syscall", "disk", "network", "memory", "command")


@dataclass(frozen=True, slots=True)
class Cell:
    """One family x column cell."""

    ratio: float
    metrics: int
    significant: int
    with_ci: int

    @property
    def unclear(self) -> bool:
        """No metric of this cell differs measurably from native."""
        return self.with_ci > 0 and self.significant == 0

    @property
    def colour(self) -> str:
        """Background colour: white at 1x, red above, blue below (log scale)."""
        return colour(self.ratio)


@dataclass(frozen=True, slots=True)
class Glance:
    """The figure for one host: row and column labels and the cells between them."""

    host: str
    families: tuple[str, ...]
    columns: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]


def colour(ratio: float) -> str:
    """Diverging colour for ``ratio`` on a log scale centred on 1 (CSS rgb())."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "rgb(238,238,238)"
    t = max(-1.0, min(1.0, math.log10(ratio) / math.log10(SATURATION)))
    strength = abs(t) ** 0.6  # small overheads stay visible
    if t >= 0:  # towards rgb(203, 24, 29)
        rgb = (255 - 52 * strength, 255 - 231 * strength, 255 - 226 * strength)
    else:  # towards rgb(33, 113, 181)
        rgb = (255 - 222 * strength, 255 - 142 * strength, 255 - 74 * strength)
    return "rgb({},{},{})".format(*(round(c) for c in rgb))


def text_colour(ratio: float) -> str:
    """Black or white, whichever reads on :func:`colour`."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "#000"
    return "#fff" if abs(math.log10(ratio)) / math.log10(SATURATION) > 0.55 else "#000"


def column_label(backend: str, variant: str) -> str:
    """Column heading: the backend, plus its variant unless it is the only/default one."""
    return backend if variant in ("", "default", "host") else f"{backend} {variant}"


def _family_key(name: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(name) if name in FAMILY_ORDER else len(FAMILY_ORDER), name)


def glance(table: pd.DataFrame, backend_order: Sequence[str] = ()) -> list[Glance]:
    """One :class:`Glance` per host of ``table`` (the summary table with ratio columns)."""
    if table.empty or "ratio" not in table:
        return []
    rows = table[(table["backend"] != "native") & np.isfinite(table["ratio"].astype(float))]
    rows = rows[rows["ratio"].astype(float) > 0]
    order = {name: i for i, name in enumerate(backend_order)}
    figures = []
    for host, part in rows.groupby("host", sort=True, observed=True):
        cells: dict[tuple[str, str], Cell] = {}
        columns: dict[str, tuple[int, str, str]] = {}
        keys = ["family", "backend", "variant"]
        for (family, backend, variant), group in part.groupby(keys, sort=False, observed=True):
            label = column_label(str(backend), str(variant))
            columns[label] = (order.get(str(backend), len(order)), str(backend), str(variant))
            cells[(str(family), label)] = _cell(group)
        figures.append(
            Glance(
                host=str(host),
                families=tuple(sorted({f for f, _ in cells}, key=_family_key)),
                columns=tuple(sorted(columns, key=lambda c: columns[c])),
                cells=cells,
            )
        )
    return figures


def _cell(group: pd.DataFrame) -> Cell:
    ratios = group["ratio"].to_numpy(dtype=float)
    low = group["ratio_low"].to_numpy(dtype=float)
    high = group["ratio_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(low) & np.isfinite(high)
    significant = has_ci & ((low > 1.0) | (high < 1.0))
    return Cell(
        ratio=float(np.exp(np.mean(np.log(ratios)))),
        metrics=len(ratios),
        significant=int(significant.sum()),
        with_ci=int(has_ci.sum()),
    )


def as_context(figures: Sequence[Glance]) -> list[dict[str, Any]]:
    """Template-ready rows (strings only) for ``glance.html.j2``."""
    out = []
    for fig in figures:
        rows = []
        for family in fig.families:
            row: list[dict[str, Any] | None] = []
            for column in fig.columns:
                cell = fig.cells.get((family, column))
                if cell is None:
                    row.append(None)
                    continue
                row.append(
                    {
                        "text": fmt.ratio(cell.ratio),
                        "bg": cell.colour,
                        "fg": text_colour(cell.ratio),
                        "unclear": cell.unclear,
                        "no_ci": cell.with_ci == 0,
                        "title": (
                            f"{family}, {column}: geometric mean of {cell.metrics} ratio(s); "
                            f"{cell.significant} of {cell.with_ci} with a CI excluding 1"
                        ),
                    }
                )
            rows.append({"family": family, "cells": row})
        out.append({"host": fig.host, "columns": list(fig.columns), "rows": rows})
    return out
