"""The site's data: every run of a results folder, read at once, and its per-run ratios.

All runs are read with **one columnar query** (a pyarrow dataset over every run's Parquet
file); runs that only have their journal are read one by one. Ratios are computed within each
run (the run's own native is the baseline), never across runs or hosts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from bench import metrics, results, schema
from bench import stats as st
from bench.stats import FloatArray

#: Separator of the composite key used to compute per-run statistics in one pass.
_SEP: Final = "\x1f"
COMPARE_JSON: Final = "compare.json"
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
    """Every run's samples in one frame, read with one columnar query where possible.

    The string columns are read dictionary-encoded by the Parquet reader (categoricals
    without hashing every row again); ``host`` is derived per run, on the run-id codes.
    """
    import pyarrow.dataset as ds  # noqa: PLC0415 - pandas already loaded pyarrow

    runs = describe_runs(run_dirs)
    parquet = {r.path: r for r in runs if (r.path / results.SAMPLES_PARQUET).is_file()}
    frames = []
    if parquet:
        strings = [c for c in READ_COLUMNS if schema.COLUMNS[c] == "string"]
        options = ds.ParquetReadOptions(dictionary_columns=strings)
        dataset = ds.dataset(
            [str(r.path / results.SAMPLES_PARQUET) for r in parquet.values()],
            format=ds.ParquetFileFormat(read_options=options),
        )
        frames.append(dataset.to_table(columns=READ_COLUMNS).to_pandas())
    for run in runs:
        if run.path not in parquet:
            frames.append(results.read_run(run.path).frame[READ_COLUMNS])
    frame = pd.concat(frames, ignore_index=True) if frames else results.empty_frame()
    if not len(frame):
        frame["host"] = pd.Series([], dtype="string")
        return History(frame, tuple(runs))
    run_ids = frame["run_id"].astype("category")
    frame["run_id"] = run_ids
    host_of = {r.run_id: r.host for r in runs}
    hosts = pd.Index(sorted(set(host_of.values()) | {"unknown"}))
    per_run = hosts.get_indexer(
        pd.Index([host_of.get(str(c), "unknown") for c in run_ids.cat.categories])
    )
    frame["host"] = pd.Categorical.from_codes(
        per_run[run_ids.cat.codes.to_numpy()], categories=hosts
    ).remove_unused_categories()
    return History(frame, tuple(runs))


def latest_per_host(history: History) -> dict[str, Run]:
    """The newest run of each host (complete runs preferred)."""
    latest: dict[str, Run] = {}
    for run in history.runs:  # oldest first: later ones win
        if run.complete or run.host not in latest or not latest[run.host].complete:
            latest[run.host] = run
    return latest


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
    # host is a function of the run: the composite key is built on the run-id categories
    # (one string per run), not row by row.
    run_ids = frame["run_id"].astype("category")
    host_of = {r.run_id: r.host for r in history.runs}
    composite = run_ids.cat.rename_categories(
        [f"{host_of.get(str(c), 'unknown')}{_SEP}{c}" for c in run_ids.cat.categories]
    )
    samples = st.group_samples(frame.assign(host=composite))
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
