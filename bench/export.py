"""Export a run as pytest-benchmark JSON (for `pytest-benchmark compare` and
benchmark-action/github-action-benchmark with ``tool: pytest``).

pytest-benchmark's model is "seconds per round, lower is better"; the action charts
``stats.ops`` (= 1 / mean) as "iter/sec, bigger is better" and alerts on it. To keep both tools'
orientation right, every metric is exported so that **lower is better**:

* time metrics (unit ``s``): exported unchanged, in seconds;
* throughput metrics (higher is better: calls/s, B/s, IOPS): exported as their reciprocal,
  seconds per call / per byte / per I/O (``transform: reciprocal``);
* other costs (bytes of memory...): exported unchanged in their own unit; pytest-benchmark will
  *label* them seconds, so the unit is part of the benchmark name, e.g. ``[B]``.

Each benchmark is one scenario x backend x variant x metric; ``stats.data`` holds every
measured sample (ok, non-warmup) after the transform, and ``extra_info`` records the original
unit, the transform and the original median.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
from pytest_benchmark import __version__ as pytest_benchmark_version
from pytest_benchmark.stats import Stats

from bench import __version__, metrics
from bench.stats import FloatArray, group_samples

EXPORTED_UNIT: Final = {"calls/s": "s/call", "B/s": "s/B", "IOPS": "s/IO"}


def _transform(metric: str, unit: str) -> tuple[str, str]:
    if metrics.higher_is_better(metric):
        return "reciprocal", EXPORTED_UNIT.get(unit, f"1/({unit})")
    return "identity", unit


def benchmark_name(key: tuple[str, ...], exported_unit: str, with_host: bool) -> str:
    """``scenario::backend[variant]::metric[unit]`` (host first when several)."""
    host, scenario, backend, variant, metric = key
    name = f"{scenario}::{backend}[{variant}]::{metric}[{exported_unit}]"
    return f"{host}::{name}" if with_host else name


def to_pytest_benchmark(frame: pd.DataFrame, environment: Mapping[str, Any]) -> dict[str, Any]:
    """The pytest-benchmark JSON document for ``frame`` (one or more runs)."""
    units = _column_map(frame, "metric", "unit", unique="metric")
    hashes = _column_map(frame, "scenario", "scenario_hash")
    samples = group_samples(frame)
    with_host = len({k[0] for k in samples}) > 1
    benchmarks = []
    for key, values in samples.items():
        unit = units.get(key[4], "")
        benchmark = _benchmark(key, values, unit, hashes.get(key[1], ""), with_host)
        if benchmark is not None:
            benchmarks.append(benchmark)
    return {
        "machine_info": _machine_info(environment),
        "commit_info": _commit_info(environment),
        "benchmarks": benchmarks,
        "datetime": str(environment.get("started") or pd.Timestamp.now(tz="UTC").isoformat()),
        "version": pytest_benchmark_version,
    }


def _column_map(
    frame: pd.DataFrame, key: str, value: str, unique: str | None = None
) -> dict[str, str]:
    """``key -> value`` over the distinct pairs (``unique``: keep the first row per column)."""
    pairs = frame[[key, value]].dropna().drop_duplicates(unique)
    return {str(k): str(v) for k, v in pairs.itertuples(index=False)}


def _benchmark(
    key: tuple[str, ...], values: FloatArray, unit: str, scenario_hash: str, with_host: bool
) -> dict[str, Any] | None:
    """One benchmark entry (lower is better), or None when no exported value is finite."""
    host, scenario, backend, variant, metric = key
    transform, exported_unit = _transform(metric, unit)
    data = 1.0 / values if transform == "reciprocal" else values
    data = data[np.isfinite(data)]
    if len(data) == 0:
        return None
    name = benchmark_name(key, exported_unit, with_host)
    return {
        "group": f"{scenario}::{metric}",
        "name": name,
        "fullname": f"isobench::{name}",
        "params": None,
        "param": None,
        "extra_info": {
            "host": host,
            "scenario": scenario,
            "scenario_hash": scenario_hash,
            "backend": backend,
            "variant": variant,
            "metric": metric,
            "unit": unit,
            "exported_unit": exported_unit,
            "transform": transform,
            "median": float(np.median(values)),
        },
        "options": {
            "disable_gc": False,
            "timer": "isobench",
            "min_rounds": len(data),
            "max_time": 0.0,
            "min_time": 0.0,
            "warmup": False,
        },
        "stats": _stats_record(data),
    }


def _stats_record(data: FloatArray) -> dict[str, Any]:
    """pytest-benchmark's own ``Stats`` of ``data``: every field its readers expect."""
    stats = Stats()  # type: ignore[no-untyped-call]
    for value in data:
        stats.update(float(value))  # type: ignore[no-untyped-call]
    record: dict[str, Any] = stats.as_dict()  # type: ignore[no-untyped-call]
    record["data"] = [float(v) for v in data]
    record["iterations"] = 1
    return record


def _section(environment: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = environment.get(name)
    return value if isinstance(value, Mapping) else {}


def _machine_info(environment: Mapping[str, Any]) -> dict[str, Any]:
    host = _section(environment, "host")
    harness = _section(environment, "harness")
    return {
        "node": str(host.get("hostname", "")),
        "processor": platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "python_version": str(harness.get("python", platform.python_version())),
        "release": str(host.get("kernel", "")),
        "system": "Linux",
        "cpu": {"brand_raw": str(host.get("cpu_model", "")), "count": host.get("cpu_count")},
        "isobench_version": __version__,
    }


def _commit_info(environment: Mapping[str, Any]) -> dict[str, Any]:
    harness = _section(environment, "harness")
    return {
        "id": str(harness.get("git_sha", "")),
        "dirty": bool(harness.get("git_dirty", False)),
        "project": "isobench",
        "branch": "",
        "time": str(environment.get("started", "")),
    }
