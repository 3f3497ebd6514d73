"""The summary table: the single source of every number the report and the exports show.

:func:`summary_table` gives statistics per host x scenario x backend x variant x metric with
the overhead ratio to native; :func:`export_summary` writes it as csv, markdown or json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench import __version__, metrics, results
from bench import stats as st
from bench.report import format as fmt


def load_runs(
    paths: Sequence[str | Path], *, consolidate: bool = False
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Samples of every run directory plus each run's environment.json.

    String columns stay dictionary-encoded (categoricals): at a million rows that is several
    times faster than plain strings, and every statistic groups on the codes directly. Runs
    that only have their journal (interrupted, killed) are read from it; ``consolidate``
    finishes those whose harness died (see :func:`bench.results.read_run`). Each environment
    gains a ``load`` block: the run's path, state (complete, interrupted...) and the loader's
    notes, which the report shows as banners.
    """
    # A run directory is named by its run id: an environment.json without one (or none at
    # all) still names its run, so the host key of its rows and of its banners agree.
    runs = [results.read_run(Path(p), categorical=True, consolidate=consolidate) for p in paths]
    envs = [
        {"run_id": run.path.name}
        | run.environment
        | {"load": {"path": str(run.path), "state": run.state, "notes": run.notes}}
        for run in runs
    ]
    if not runs:
        return results.load([]), envs
    if len(runs) == 1:
        return runs[0].frame, envs
    return pd.concat([run.frame for run in runs], ignore_index=True), envs


def summary_table(
    frame: pd.DataFrame,
    limits: st.Limits | None = None,
    samples: Mapping[tuple[str, ...], st.FloatArray] | None = None,
    declared: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """Statistics per host x scenario x backend x variant x metric, with overhead vs native.

    ``declared``: directions of metrics the scenarios declare (:func:`declared_directions`).

    Runs of one host pool into one row (``runs`` counts them and ``run_median_low/high`` is
    the range of their medians); ratios to native are formed within each run only
    (:func:`bench.stats.overhead`).
    """
    if samples is None:
        samples = st.group_samples(frame)
    summary = st.summarize(frame, limits, samples, declared)
    if summary.empty:
        return summary.assign(
            **{column: [] for column in COMPARISON_COLUMNS},
            runs=[],
            run_median_low=[],
            run_median_high=[],
        )
    by_run = st.group_samples(frame, st.RUN_KEYS)
    ratios = st.overhead(summary, samples, by_run=by_run)
    merged = summary.merge(ratios.drop(columns=["native_median"]), on=list(st.KEYS), how="left")
    return merged.merge(st.run_spread(by_run), on=list(st.KEYS), how="left")


# --- exports of the summary table ---------------------------------------------------------

#: Columns comparing a row with native (none on native's own rows).
COMPARISON_COLUMNS: Final = tuple(
    c for c in st.OVERHEAD_COLUMNS if c not in st.KEYS and c != "native_median"
)
EXPORT_COLUMNS: Final = [
    *st.SUMMARY_COLUMNS,
    *COMPARISON_COLUMNS,
    "runs",
    "run_median_low",
    "run_median_high",
]


def export_summary(table: pd.DataFrame, fmt_name: str) -> str:
    """The summary table as csv, markdown or json text."""
    table = table.reindex(columns=EXPORT_COLUMNS)
    table = table.assign(warnings=[" ; ".join(w) for w in table["warnings"]])
    if fmt_name == "csv":
        text_columns = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
        safe = table.astype(dict.fromkeys(text_columns, object))
        for column in text_columns:
            safe[column] = safe[column].map(fmt.csv_cell)
        return str(safe.to_csv(index=False))
    if fmt_name == "json":
        records = json.loads(table.to_json(orient="records"))
        return json.dumps({"isobench_version": __version__, "summary": records}, indent=2) + "\n"
    if fmt_name == "markdown":
        return _markdown(table)
    msg = f"unknown format {fmt_name!r}"
    raise ValueError(msg)


def _markdown(table: pd.DataFrame) -> str:
    header = [
        "host",
        "scenario",
        "backend",
        "variant",
        "metric",
        "n",
        "median",
        "CI of median (real coverage, within run)",
        "vs same-run native",
        "warnings",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.to_dict("records"):
        unit = str(row["unit"])
        ratio = float(row["ratio"]) if row["ratio"] is not None else math.nan
        cells = [
            str(row["host"]),
            str(row["scenario"]),
            str(row["backend"]),
            str(row["variant"]),
            str(row["metric"]),
            str(row["n"]),
            fmt.value(float(row["median"]), unit),
            fmt.interval(float(row["ci_low"]), float(row["ci_high"]), unit)
            + f" ({fmt.coverage(float(row['ci_coverage']))})",
            _versus_native(row, ratio, unit),
            str(row["warnings"]),
        ]
        lines.append("| " + " | ".join(fmt.markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _versus_native(row: Mapping[Any, Any], ratio: float, unit: str) -> str:
    """Ratio with its CI; for metrics compared by difference, the overhead in the unit."""
    if metrics.compared_by_difference(str(row["metric"])):
        difference = float(row["difference"]) if row["difference"] is not None else math.nan
        if not math.isfinite(difference):
            return ""
        low, high = float(row["difference_low"]), float(row["difference_high"])
        return f"overhead {fmt.signed(difference, unit)} {fmt.interval(low, high, unit)}"
    if not math.isfinite(ratio):
        return fmt.ratio(ratio)
    low, high = float(row["ratio_low"]), float(row["ratio_high"])
    if not math.isfinite(low):
        return fmt.ratio(ratio)  # no ratio CI below 5 samples a side
    return f"{fmt.ratio(ratio)} {fmt.interval(low, high, '')} (95 % bootstrap)"
