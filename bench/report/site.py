"""The published site: many runs of many hosts as static, offline HTML pages.

``isobench publish RESULTS... -o report/`` writes:

* ``index.html``: the latest comparison per host (its at-a-glance figure and a link to its full
  report) and the list of every run;
* ``trend-<family>.html``: per host and metric, each backend/variant's overhead ratio (with its
  within-run CI) over time; runs where ``isobench compare`` flagged a regression are marked;
* ``hosts.html``: hosts side by side (latest run of each), told apart by fingerprint;
* ``runs/<run-id>.html``: every run's full report (the run's own ``report.html`` when it has
  one, else rendered once and kept).

The runs and their per-run ratios come from :mod:`bench.report.history`. The pages carry the
run report's Content-Security-Policy: no script, no network.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import jinja2
import numpy as np
import pandas as pd

from bench import __version__, metrics, results
from bench.report import format as fmt
from bench.report import glance as report_glance
from bench.report import html as report_html
from bench.report.history import (
    History,
    Run,
    discover,
    latest_per_host,
    load_history,
    run_ratios,
)
from bench.report.trend import trend_plot

REPORT_HTML: Final = "report.html"


# --- pages ---------------------------------------------------------------------------------


def _run_report(run: Run, out: Path) -> str:
    """Copy (or render once) the run's full report; return its path relative to ``out``."""
    target = out / "runs" / f"{_safe(run.run_id)}.html"
    source = run.path / REPORT_HTML
    if source.is_file():
        if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
            shutil.copyfile(source, target)
    elif not target.exists() or _newer(run.path, target):
        frame, envs = report_html_inputs(run.path)
        target.write_text(report_html.render_html(frame, envs), encoding="utf-8")
    return f"runs/{target.name}"


def _newer(run_dir: Path, target: Path) -> bool:
    """Whether a run's data changed after ``target`` was rendered (an interrupted run grows)."""
    built = target.stat().st_mtime
    files = [
        run_dir / n for n in (results.SAMPLES_JSONL, results.SAMPLES_PARQUET, "environment.json")
    ]
    return any(f.exists() and f.stat().st_mtime > built for f in files)


def report_html_inputs(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One run's frame and environment, as the run report reads them."""
    from bench.report.summary import load_runs  # noqa: PLC0415

    return load_runs([path])


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120] or "run"


def _trend_plots(table: pd.DataFrame, family: str, flagged: Mapping[str, set[str]]) -> list[Any]:
    part = table[(table["family"] == family) & (table["backend"] != "native")]
    part = part[np.isfinite(part["ratio"].astype(float))]
    plots = []
    for (host, metric), rows in part.groupby(["host", "metric"], sort=True, observed=True):
        plots.append(
            {
                "host": str(host),
                "metric": str(metric),
                "svg": trend_plot(rows, str(metric), flagged),
            }
        )
    return plots


def build_site(paths: Sequence[Path], out: Path, title: str = "isobench results") -> list[Path]:
    """Write the site for every run under ``paths`` into ``out``; return the pages written."""
    run_dirs = discover(paths)
    if not run_dirs:
        msg = f"no run directories under {', '.join(map(str, paths))}"
        raise FileNotFoundError(msg)
    history = load_history(run_dirs)
    table = run_ratios(history)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    env = report_html.template_environment()
    reports = {run.run_id: _run_report(run, out) for run in history.runs}
    latest = latest_per_host(history)
    families = sorted(
        {str(f) for f in table["family"]} if not table.empty else set(),
        key=report_glance._family_key,
    )
    common = {
        "title": title,
        "version": __version__,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "families": families,
        "css": (report_html.TEMPLATES / "report.css").read_text(encoding="utf-8"),
    }
    hosts = _host_cards(history, table, latest, reports)
    runs = _run_list(history, reports)
    rows = _host_rows(table, latest)
    written = [
        _write(out / "index.html", env, "site_index.html.j2", common, hosts=hosts, runs=runs),
        _write(out / "hosts.html", env, "site_hosts.html.j2", common, hosts=hosts, rows=rows),
    ]
    flagged = _flagged(history.runs)
    for family in families:
        plots = _trend_plots(table, family, flagged)
        page = out / f"trend-{family}.html"
        written.append(_write(page, env, "site_trend.html.j2", common, family=family, plots=plots))
    return written


def _flagged(runs: Sequence[Run]) -> dict[str, set[str]]:
    """Per run id, the ``scenario/backend/metric`` items ``isobench compare`` flagged."""
    flagged: dict[str, set[str]] = {}
    for run in runs:
        for item in run.regressions:
            flagged.setdefault(run.run_id, set()).add(item)
    return flagged


def _host_cards(
    history: History, table: pd.DataFrame, latest: Mapping[str, Run], reports: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One card per host: its latest run, a link to its report and its at-a-glance figure."""
    hosts = []
    for host, run in sorted(latest.items()):
        part = table[(table["host"] == host) & (table["run_id"] == run.run_id)]
        hosts.append(
            {
                "key": host,
                "label": run.host_label,
                "fingerprint": run.fingerprint,
                "run": run.run_id,
                "complete": run.complete,
                "report": reports[run.run_id],
                "runs": sum(1 for r in history.runs if r.host == host),
                "glance": report_glance.as_context(
                    report_glance.glance(part, report_html.BACKEND_ORDER)
                ),
            }
        )
    return hosts


def _run_list(history: History, reports: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every run, newest first, with a link to its full report."""
    return [
        {
            "id": r.run_id,
            "host": r.host,
            "started": r.started.strftime("%Y-%m-%d %H:%M") if r.started else "?",
            "complete": r.complete,
            "regressions": len(r.regressions),
            "report": reports[r.run_id],
        }
        for r in reversed(history.runs)
    ]


def _host_rows(table: pd.DataFrame, latest: Mapping[str, Run]) -> list[dict[str, Any]]:
    """Hosts side by side: per scenario/metric/backend/variant, each host's latest ratio."""
    if table.empty:
        return []
    latest_run = table["host"].astype(str).map({host: run.run_id for host, run in latest.items()})
    chosen = table[table["run_id"] == latest_run]
    chosen = chosen[chosen["backend"] != "native"]
    hosts = sorted(latest)
    out = []
    keys = ["scenario", "metric", "backend", "variant"]
    for key, rows in chosen.groupby(keys, sort=True, observed=True):
        cells = {}
        for rec in rows.to_dict("records"):
            low, high = float(rec["ratio_low"]), float(rec["ratio_high"])
            cells[str(rec["host"])] = {
                "ratio": fmt.ratio(float(rec["ratio"])),
                "ci": f"[{fmt.ratio(low)}, {fmt.ratio(high)}]" if np.isfinite(low) else "",
                "n": int(rec["n"]),
                "bg": report_glance.colour(float(rec["ratio"])),
            }
        scenario, metric, backend, variant = (str(k) for k in key)
        out.append(
            {
                "scenario": scenario,
                "metric": metric,
                "direction": "higher is better" if metrics.higher_is_better(metric) else "",
                "column": report_glance.column_label(backend, variant),
                "cells": [cells.get(h) for h in hosts],
            }
        )
    return out


def _write(
    path: Path, env: jinja2.Environment, template: str, common: Mapping[str, Any], **extra: Any
) -> Path:
    text = env.get_template(template).render(**common, **extra)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
