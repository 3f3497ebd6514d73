"""The self-contained HTML report page.

:func:`render_html` turns :func:`bench.report.summary.summary_table` into one HTML file (jinja2 with
autoescape on; every string from a scenario file or environment.json is escaped; plots are SVG
data URIs; a Content-Security-Policy forbids any network access and any script).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import jinja2
import pandas as pd

from bench import __version__, metrics, results
from bench import stats as st
from bench.report import drift as report_drift
from bench.report import env as report_env
from bench.report import format as fmt
from bench.report import glance as report_glance
from bench.report import ladder as report_ladder
from bench.report import plots as report_plots
from bench.report.summary import summary_table

#: Metrics shown in the headline table (the rest appear in their family's section).
HEADLINE: Final = (
    "startup.ready",
    "startup.total",
    "syscall.null_rate",
    "syscall.mixed_rate",
    "disk.seq_read",
    "disk.seq_write",
    "disk.rand_read_iops",
    "disk.rand_write_iops",
    "disk.fsync_latency",
    "memory.environment",
    "memory.workload_peak",
    "command.wall",
)
BACKEND_ORDER: Final = ("native", "sandbox", "docker", "podman", "vagrant")
FAMILY_ORDER: Final = ("startup", "syscall", "disk", "memory", "command")
FAILURE_ROWS: Final = 200

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in rec.items()} for rec in frame.to_dict("records")]


def _backend_key(name: str) -> tuple[int, str]:
    return (BACKEND_ORDER.index(name) if name in BACKEND_ORDER else len(BACKEND_ORDER), name)


def _family_key(name: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(name) if name in FAMILY_ORDER else len(FAMILY_ORDER), name)


def _finite(row: Mapping[str, Any], name: str) -> float:
    raw = row.get(name)
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _ratio_text(row: Mapping[str, Any]) -> dict[str, str]:
    """The ratio's interval and what it is: within one run, or across runs (run = unit)."""
    low, high = _finite(row, "ratio_low"), _finite(row, "ratio_high")
    runs = int(_finite(row, "ratio_runs")) if math.isfinite(_finite(row, "ratio_runs")) else 0
    ci = f"[{fmt.ratio(low)}, {fmt.ratio(high)}]" if math.isfinite(low) else ""
    if runs <= 1:
        basis = "95 % bootstrap CI, within one run" if ci else "no CI: < 5 samples a side"
    else:
        spread = (
            f"per-run {fmt.ratio(_finite(row, 'ratio_spread_low'))}"
            f"{fmt.DASH}{fmt.ratio(_finite(row, 'ratio_spread_high'))}"
        )
        basis = f"median of {runs} runs' ratios, {spread}" + (
            "; 95 % bootstrap CI over runs" if ci else "; no CI below 5 runs"
        )
    return {"ratio_ci": ci, "ratio_basis": basis}


def _cell(row: Mapping[str, Any]) -> dict[str, Any]:
    unit = str(row["unit"])
    ratio = _finite(row, "ratio")
    low, high = _finite(row, "ratio_low"), _finite(row, "ratio_high")
    difference = _finite(row, "difference")
    runs = int(_finite(row, "runs")) if math.isfinite(_finite(row, "runs")) else 1
    native = row["backend"] == st.NATIVE
    return {
        "backend": str(row["backend"]),
        "variant": str(row["variant"]),
        "median": fmt.value(float(row["median"]), unit),
        "ci": fmt.interval(float(row["ci_low"]), float(row["ci_high"]), unit),
        "coverage": fmt.coverage(float(row["ci_coverage"])),
        "low_coverage": float(row["ci_coverage"]) < st.CONFIDENCE,
        "ci_scope": "within run" if runs <= 1 else f"samples of {runs} runs pooled",
        "runs": runs,
        "run_spread": fmt.interval(
            _finite(row, "run_median_low"), _finite(row, "run_median_high"), unit
        )
        if runs > 1
        else "",
        "n": int(row["n"]),
        "ratio": fmt.ratio(ratio) if not native else "baseline",
        **(_ratio_text(row) if not native else {"ratio_ci": "", "ratio_basis": ""}),
        "difference": fmt.value(difference, unit) if math.isfinite(difference) else "",
        "cls": fmt.ratio_class(ratio, low, high) if not native else "base",
        "warnings": list(row["warnings"]),
        "mean": fmt.value(float(row["mean"]), unit),
        "std": fmt.value(float(row["std"]), unit),
        "mad": fmt.value(float(row["mad"]), unit),
        "min": fmt.value(float(row["min"]), unit),
        "max": fmt.value(float(row["max"]), unit),
        "cv": f"{float(row['cv']):.1%}" if math.isfinite(float(row["cv"])) else fmt.DASH,
        "outliers": int(row["outliers"]),
    } | _difference_headline(row)


def _difference_headline(row: Mapping[str, Any]) -> dict[str, str]:
    """For metrics compared by difference: the overhead in the unit replaces the ratio."""
    if row["backend"] == st.NATIVE or not metrics.compared_by_difference(str(row["metric"])):
        return {}
    unit = str(row["unit"])
    low, high = _finite(row, "difference_low"), _finite(row, "difference_high")
    runs = _finite(row, "ratio_runs")
    several = math.isfinite(runs) and runs > 1
    basis = f"median of {int(runs)} runs' differences" if several else "vs native of the same run"
    if math.isfinite(low):
        basis += "; 95 % bootstrap CI" + (" over runs" if several else "")
    return {
        "ratio": "overhead " + fmt.signed(_finite(row, "difference"), unit),
        "ratio_ci": fmt.interval(low, high, unit) if math.isfinite(low) else "",
        "ratio_basis": basis,
        "cls": fmt.difference_class(low, high),
    }


def headline(table: pd.DataFrame, multi_host: bool) -> dict[str, Any]:
    """Headline rows: one per (host,) scenario x metric, one column per backend."""
    chosen = table[table["metric"].isin(HEADLINE)]
    if chosen.empty:
        chosen = table
    backends = sorted({str(b) for b in chosen["backend"]}, key=_backend_key)
    families: dict[str, list[dict[str, Any]]] = {}
    keys = ["host", "scenario", "metric"] if multi_host else ["scenario", "metric"]
    rank = {m: i for i, m in enumerate(HEADLINE)}
    for key, rows in chosen.groupby(keys, sort=False, observed=True):
        parts = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        metric = str(parts["metric"])
        cells: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
        for record in _records(rows.sort_values("variant")):
            cells[str(record["backend"])].append(_cell(record))
        families.setdefault(str(rows["family"].iloc[0]), []).append(
            {
                "host": str(parts.get("host", "")),
                "scenario": str(parts["scenario"]),
                "metric": metric,
                "direction": "higher is better"
                if bool(rows["higher_is_better"].iloc[0])
                else "lower is better",
                "cells": cells,
                "_rank": (rank.get(metric, 99), str(parts.get("host", "")), str(parts["scenario"])),
            }
        )
    ordered: list[dict[str, Any]] = [
        {"name": fam, "rows": sorted(families[fam], key=lambda r: r["_rank"])}
        for fam in sorted(families, key=_family_key)
    ]
    return {"backends": backends, "families": ordered}


def _failure_rows(counts: pd.DataFrame) -> tuple[list[dict[str, Any]], int, int]:
    total = int(counts["rows"].sum()) if not counts.empty else 0
    rows = [
        {k: str(v) if k != "rows" else int(v) for k, v in rec.items()}
        for rec in _records(counts.head(FAILURE_ROWS))
    ]
    return rows, total, len(counts)


def render_html(
    frame: pd.DataFrame, envs: Sequence[Mapping[str, Any]], title: str = "isobench report"
) -> str:
    """The complete, self-contained report page."""
    samples = st.group_samples(frame)
    table = summary_table(frame, samples=samples, declared=report_env.declared_directions(envs))
    multi_host = len({k[0] for k in samples}) > 1
    families = _family_sections(table, samples, multi_host)
    counts = st.status_counts(frame)
    failures, failure_total, failure_groups = _failure_rows(counts)
    runs, banners = _run_sections(envs, _variants_by_host(samples, counts))
    drifts = report_drift.native_drift(frame, envs)
    banners += [
        d.describe() + ": the host changed while the block ran; figures around it may be skewed."
        for d in drifts
        if d.moved
    ]
    banners = list(dict.fromkeys(banners))  # per host, said once (runs of one host repeat it)
    context = {
        "title": title,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "version": __version__,
        "n_samples": len(frame),
        "n_measured": sum(len(v) for v in samples.values()),
        "run_ids": sorted({str(r) for r in frame["run_id"].dropna().unique()}),
        "hosts": sorted({str(h) for h in frame["host"].dropna().unique()}),
        "multi_host": multi_host,
        "banners": banners,
        "headline": headline(table, multi_host),
        "glance": report_glance.as_context(report_glance.glance(table, BACKEND_ORDER)),
        "ladders": report_ladder.section(table, samples, envs),
        "families": families,
        "failures": failures,
        "failure_total": failure_total,
        "failure_groups": failure_groups,
        "runs": runs,
        "drifts": [{"text": d.describe(), "moved": d.moved} for d in drifts],
        "scenarios": report_env.scenario_rows(envs),
    }
    return template_environment().get_template("report.html.j2").render(**context)


def _family_sections(
    table: pd.DataFrame, samples: Mapping[tuple[str, ...], Any], multi_host: bool
) -> list[dict[str, Any]]:
    """One section per metric family: its table rows and its figures."""
    families = []
    for family in sorted({str(f) for f in table["family"]}, key=_family_key):
        part = table[table["family"] == family]
        records = sorted(_records(part), key=_row_order)
        families.append(
            {
                "name": family,
                "rows": [_cell(r) | _keys(r) for r in records],
                "plots": report_plots.family_plots(samples, part, family, multi_host),
            }
        )
    return families


def _run_sections(
    envs: Sequence[Mapping[str, Any]], variants_by_host: Mapping[str, set[tuple[str, str]]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each run's environment section, and the banners its environment calls for."""
    runs = []
    banners: list[str] = []
    for env in envs:
        host = results.host_key(env)
        variants = variants_by_host.get(host, set())
        runs.append(
            {
                "run_id": str(env.get("run_id", "")),
                "host": host,
                "facts": report_env.host_facts(env),
                "kernels": report_env.kernel_rows(env, variants),
                "backends": report_env.backend_rows(env),
            }
        )
        banners.extend(report_env.banners(env, variants, host))
    return runs, banners


def _row_order(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        report_plots.metric_rank(str(row["metric"])),
        str(row["host"]),
        str(row["scenario"]),
        _backend_key(str(row["backend"])),
        str(row["variant"]),
    )


def _keys(row: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(row[k]) for k in ("host", "scenario", "metric")}


def _variants_by_host(
    samples: Mapping[tuple[str, ...], Any], failed: pd.DataFrame
) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for host, _, backend, variant, _ in samples:
        out.setdefault(host, set()).add((backend, variant))
    for host, backend, variant in failed[["host", "backend", "variant"]].itertuples(index=False):
        out.setdefault(str(host), set()).add((str(backend), str(variant)))
    return out


def template_environment() -> jinja2.Environment:
    """The jinja2 environment of every page (run report and site): autoescape always on."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # always: scenario names, host labels, run ids are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
