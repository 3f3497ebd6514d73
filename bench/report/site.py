"""The published site: many runs of many hosts as static, offline HTML pages.

``isobench publish RESULTS... -o report/`` writes:

* ``index.html``: the latest comparison per host (its at-a-glance figure and a link to its full
  report) and the list of every run;
* ``trend-<family>.html``: per host and metric, each backend/variant's overhead ratio (with its
  within-run CI) over time; runs where ``isobench compare`` flagged a regression are marked;
* ``hosts.html``: hosts side by side (latest run of each), told apart by fingerprint;
* ``runs/<run-id>.html``: every run's full report (the run's own ``report.html`` when it has
  one, else rendered once and kept).

All runs are read with **one columnar query** (a pyarrow dataset over every run's Parquet
file); runs that only have their journal are read one by one. Ratios are computed within each
run (the run's own native is the baseline), never across runs or hosts. The pages carry the
run report's Content-Security-Policy: no script, no network.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import jinja2
import numpy as np
import pandas as pd

from bench import __version__, metrics, results
from bench import stats as st
from bench.report import format as fmt
from bench.report import glance as report_glance
from bench.report import html as report_html
from bench.report.trend import trend_plot
from bench.stats import FloatArray

#: Separator of the composite key used to compute per-run statistics in one pass.
_SEP: Final = "\x1f"
COMPARE_JSON: Final = "compare.json"
REPORT_HTML: Final = "report.html"
#: Columns read from every Parquet file (the rest of the schema is not needed here).
READ_COLUMNS: Final = [
    "run_id",
    "scenario",
    "backend",
    "variant",
    "metric",
    "unit",
    "repetition",
    "warmup",
    "value",
    "status",
]


RATIO_COLUMNS: Final = [
    "host",
    "run_id",
    "scenario",
    "backend",
    "variant",
    "metric",
    "family",
    "n",
    "ratio",
    "ratio_low",
    "ratio_high",
]


@dataclass(frozen=True, slots=True)
class Run:
    """One run directory as the site sees it."""

    run_id: str
    path: Path
    host: str
    host_label: str
    fingerprint: str
    started: datetime | None
    complete: bool
    regressions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class History:
    """Every run's rows (``host`` = the host key) and the runs, oldest first."""

    frame: pd.DataFrame
    runs: tuple[Run, ...]


# --- discovery and loading -----------------------------------------------------------------


def discover(paths: Iterable[Path]) -> list[Path]:
    """Run directories among ``paths``: each is a run directory or a folder of them."""
    found: list[Path] = []
    for path in paths:
        if _is_run(path):
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p))
        else:
            msg = f"{path}: neither a run directory nor a folder of run directories"
            raise FileNotFoundError(msg)
    return list(dict.fromkeys(found))


def _is_run(path: Path) -> bool:
    return (path / results.SAMPLES_PARQUET).is_file() or (path / results.SAMPLES_JSONL).is_file()


def _started(environment: Mapping[str, Any], run_id: str) -> datetime | None:
    for text in (environment.get("started"), environment.get("finished")):
        if isinstance(text, str):
            try:
                stamp = datetime.fromisoformat(text)
            except ValueError:
                continue
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    try:
        return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _regressions(path: Path) -> tuple[str, ...]:
    """Metrics ``isobench compare`` flagged for this run (its ``compare.json``), if kept."""
    file = path / COMPARE_JSON
    if not file.is_file():
        return ()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    records = data.get("comparisons", []) if isinstance(data, Mapping) else data
    flagged = [
        f"{rec.get('scenario')}/{rec.get('backend')}/{rec.get('metric')}"
        for rec in records if isinstance(rec, Mapping) and rec.get("verdict") == "regression"
    ]  # fmt: skip
    return tuple(flagged)


def describe_runs(run_dirs: Sequence[Path]) -> list[Run]:
    """Read each run's environment.json (and end marker) into a :class:`Run`, oldest first.

    The host is :func:`bench.results.host_key`, the same key the run report groups by: the
    fingerprint, never the hostname alone.
    """
    runs = []
    for path in run_dirs:
        env = results.load_environment(path)
        host = results.host_key(env, path.name)
        identity = (
            env.get("host", {}).get("identity") if isinstance(env.get("host"), dict) else None
        )
        fingerprint = str(identity.get("fingerprint", "")) if isinstance(identity, dict) else ""
        run_id = str(env.get("run_id") or path.name)
        complete = results.run_state(path, env) == "complete"
        flagged = _regressions(path)
        label = host.rsplit(" (", 1)[0]
        started = _started(env, run_id)
        runs.append(Run(run_id, path, host, label, fingerprint, started, complete, flagged))
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(runs, key=lambda r: (r.started or epoch, r.run_id))


def load_history(run_dirs: Sequence[Path]) -> History:
    """Every run's samples in one frame, read with one columnar query where possible."""
    import pyarrow.dataset as ds  # noqa: PLC0415 - pandas already loaded pyarrow

    runs = describe_runs(run_dirs)
    parquet = [r for r in runs if (r.path / results.SAMPLES_PARQUET).is_file()]
    frames = []
    if parquet:
        dataset = ds.dataset([str(r.path / results.SAMPLES_PARQUET) for r in parquet])
        table = dataset.to_table(columns=READ_COLUMNS)
        frames.append(table.to_pandas(strings_to_categorical=True))
    for run in runs:
        if run not in parquet:
            frames.append(results.read_run(run.path).frame[READ_COLUMNS])
    frame = pd.concat(frames, ignore_index=True) if frames else results.empty_frame()
    host_of = {r.run_id: r.host for r in runs}
    run_ids = frame["run_id"].astype("category") if len(frame) else frame["run_id"]
    frame["run_id"] = run_ids
    if len(frame):
        cats = run_ids.cat.categories
        frame["host"] = pd.Categorical(
            np.asarray([host_of.get(str(c), "unknown") for c in cats], dtype=object)[
                run_ids.cat.codes.to_numpy()
            ]
        )
    else:
        frame["host"] = pd.Series([], dtype="string")
    return History(frame, tuple(runs))


# --- per-run ratios ----------------------------------------------------------------------


def run_ratios(history: History) -> pd.DataFrame:
    """Overhead ratio to native per run and series, with its CI: the trend's data points.

    Each run is its own baseline (its native series of the same scenario and metric, variant
    ``host`` preferred). The ratio CI is :func:`bench.stats.ratio_ci` (batched with
    :func:`bench.stats.ratio_cis`), given only when both sides have at least
    :data:`bench.stats.MIN_SAMPLES` samples, as in the run report.
    """
    frame = history.frame
    if frame.empty:
        return pd.DataFrame(columns=RATIO_COLUMNS)
    composite = frame["host"].astype(str) + _SEP + frame["run_id"].astype(str)
    samples = st.group_samples(frame.assign(host=composite.astype("category")))
    natives: dict[tuple[str, str, str], FloatArray] = {}
    for (host_run, scenario, backend, variant, metric), values in samples.items():
        key = (host_run, scenario, metric)
        if backend == st.NATIVE and (key not in natives or variant == "host"):
            natives[key] = np.sort(values)
    records: list[tuple[Any, ...]] = []
    pairs: list[tuple[FloatArray, FloatArray]] = []
    wanted: list[int] = []
    for (host_run, scenario, backend, variant, metric), values in samples.items():
        base = natives.get((host_run, scenario, metric))
        if backend == st.NATIVE or base is None:
            continue
        mine = np.sort(values)
        hib = metrics.higher_is_better(metric)
        my_med, base_med = _sorted_median(mine), _sorted_median(base)
        top, bottom = (base_med, my_med) if hib else (my_med, base_med)
        ratio = top / bottom if bottom else np.nan
        if min(len(mine), len(base)) >= st.MIN_SAMPLES:
            wanted.append(len(records))
            pairs.append((base, mine) if hib else (mine, base))
        host, run_id = host_run.split(_SEP, 1)
        family = metrics.family(metric)
        records.append((host, run_id, scenario, backend, variant, metric, family, len(mine), ratio))
    table = pd.DataFrame.from_records(records, columns=RATIO_COLUMNS[:-2])
    bounds = np.full((len(records), 2), np.nan)
    if pairs:
        bounds[wanted] = st.ratio_cis(pairs)
    table["ratio_low"], table["ratio_high"] = bounds[:, 0], bounds[:, 1]
    started = {r.run_id: r.started for r in history.runs}
    table["started"] = pd.to_datetime(table["run_id"].map(started), utc=True)
    return table


def _sorted_median(values: FloatArray) -> float:
    middle = len(values) // 2
    if len(values) % 2:
        return float(values[middle])
    return float(values[middle - 1] + values[middle]) / 2.0


def latest_per_host(history: History) -> dict[str, Run]:
    """The newest run of each host (complete runs preferred)."""
    latest: dict[str, Run] = {}
    for run in history.runs:  # oldest first: later ones win
        if run.complete or run.host not in latest or not latest[run.host].complete:
            latest[run.host] = run
    return latest


# --- pages ---------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(report_html.TEMPLATES),
        autoescape=True,  # run ids, host labels and scenario names are untrusted strings
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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
    env = _environment()
    reports = {run.run_id: _run_report(run, out) for run in history.runs}
    latest = latest_per_host(history)
    families = sorted(
        {str(f) for f in table["family"]} if not table.empty else set(),
        key=report_glance._family_key,
    )
    flagged: dict[str, set[str]] = {}
    for run in history.runs:
        for item in run.regressions:
            flagged.setdefault(run.run_id, set()).add(item)
    common = {
        "title": title,
        "version": __version__,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "families": families,
        "css": (report_html.TEMPLATES / "report.css").read_text(encoding="utf-8"),
    }
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
    runs = [
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
    written = [
        _write(out / "index.html", env, "site_index.html.j2", common, hosts=hosts, runs=runs),
        _write(
            out / "hosts.html",
            env,
            "site_hosts.html.j2",
            common,
            hosts=hosts,
            rows=_host_rows(table, latest),
        ),
    ]
    for family in families:
        written.append(
            _write(
                out / f"trend-{family}.html",
                env,
                "site_trend.html.j2",
                common,
                family=family,
                plots=_trend_plots(table, family, flagged),
            )
        )
    return written


def _host_rows(table: pd.DataFrame, latest: Mapping[str, Run]) -> list[dict[str, Any]]:
    """Hosts side by side: per scenario/metric/backend/variant, each host's latest ratio."""
    if table.empty:
        return []
    chosen = table[
        table.apply(lambda r: latest.get(str(r["host"])) is not None
                    and latest[str(r["host"])].run_id == r["run_id"], axis=1)
    ]  # fmt: skip
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
