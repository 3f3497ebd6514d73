"""The disk workload's named fio jobs (``workload.jobs``): argv, engine checks, parsing.

One fio invocation runs every job of the scenario one after another (``--stonewall``) on one
shared test file, with ``--group_reporting`` so a job's ``numjobs`` clones are reported as one.
The argv is plain fio: :func:`fio_job_argv` prints exactly what a user runs by hand to
cross-check a figure (docs/native.md shows how).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Final

from bench.scenario.model import DiskWorkload, FioJob
from bench.values import BackendError, BackendUnavailable, Measurement

#: Name of the test file every job shares (inside the directory under test).
TEST_FILE: Final = "isobench-fio.dat"
#: Name of the small file the engine check writes and removes.
CHECK_FILE: Final = "isobench-engine-check.dat"
#: fio's default completion-latency percentiles include these two.
_PERCENTILES: Final = (("p50", "50.000000"), ("p99", "99.000000"))
#: Metric names this module emits: one set per job and direction (catalog patterns).
EMITS: Final = frozenset(
    f"disk.<job>.{direction}_{figure}"
    for direction in ("read", "write")
    for figure in ("bw", "iops", "lat_p50", "lat_p99")
)

Run = Callable[[Sequence[str], float], Any]  # an Executor (returncode, stdout, stderr, wall)


def _ms(seconds: float) -> str:
    # fio reads a bare number as whole seconds (0.2 would be 0): always give milliseconds.
    return f"{round(seconds * 1000)}ms"


def job_metrics(job: FioJob) -> list[str]:
    """The metric names one job reports (its contract: a failed row is written for each)."""
    directions = [d for d, does in (("read", job.reads()), ("write", job.writes())) if does]
    return [
        f"disk.{job.name}.{d}_{figure}"
        for d in directions
        for figure in ("bw", "iops", "lat_p50", "lat_p99")
    ]


def fio_job_argv(workload: DiskWorkload, directory: str) -> list[str]:
    """argv of one fio invocation running the scenario's named jobs in order."""
    argv = [
        "fio",
        "--output-format=json",
        f"--directory={directory}",
        f"--filename={TEST_FILE}",
        f"--size={int(workload.file_size)}",
        f"--direct={1 if workload.direct == 'on' else 0}",
        "--group_reporting=1",
        "--invalidate=1",
        "--time_based=1",
        f"--runtime={_ms(workload.runtime)}",
    ]
    for job in workload.jobs:
        argv += [
            f"--name={job.name}",
            "--stonewall",
            f"--rw={job.rw}",
            f"--bs={int(job.bs)}",
            f"--ioengine={job.ioengine}",
            f"--iodepth={job.iodepth}",
            f"--numjobs={job.numjobs}",
        ]
        if job.rwmixread is not None:
            argv.append(f"--rwmixread={job.rwmixread}")
        if job.runtime is not None:
            argv.append(f"--runtime={_ms(job.runtime)}")
    return argv


def engine_check_argv(engine: str, directory: str, direct: bool) -> list[str]:
    """A tiny fio run that fails exactly when ``engine`` cannot be used in ``directory``."""
    return [
        "fio",
        "--output-format=json",
        "--name=isobench-engine-check",
        f"--directory={directory}",
        f"--filename={CHECK_FILE}",
        f"--ioengine={engine}",
        "--rw=read",
        "--bs=4096",
        "--size=1MiB",
        "--iodepth=2",
        f"--direct={1 if direct else 0}",
    ]


def check_engines(run: Run, workload: DiskWorkload, directory: str, timeout: float) -> None:
    """Detect, don't assume: each asynchronous ioengine the jobs use must work right here.

    io_uring may be refused by the kernel (``kernel.io_uring_disabled``), a seccomp filter
    (newer Docker defaults) or an old guest kernel; the check runs fio itself with that engine
    in the directory under test and raises :class:`BackendUnavailable` with fio's reason.
    """
    engines = sorted({job.ioengine for job in workload.jobs} - {"psync"})
    for engine in engines:
        result = run(engine_check_argv(engine, directory, workload.direct == "on"), timeout)
        run(["rm", "-f", f"{directory}/{CHECK_FILE}"], timeout)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            reason = detail[0] if detail else f"status {result.returncode}"
            if result.returncode == 127 or "not found" in reason:
                msg = f"fio is not installed in this environment ({reason})"
            else:
                msg = (
                    f"ioengine {engine} is not usable in this environment: {reason} (the "
                    "kernel, a seccomp filter or the filesystem refuses it); its jobs are "
                    "skipped here"
                )
            raise BackendUnavailable(msg)


def _percentile(stats: dict[str, Any], key: str) -> float:
    return float(stats["clat_ns"]["percentile"][key]) / 1e9


def parse_fio_jobs(stdout: str, workload: DiskWorkload) -> list[Measurement]:
    """Per job and direction: bandwidth (B/s), IOPS and completion latency p50/p99 (s)."""
    start = stdout.find("{")
    try:
        doc: dict[str, Any] = json.loads(stdout[start:])
        reported = {job["jobname"]: job for job in doc["jobs"]}
        out: list[Measurement] = []
        for job in workload.jobs:
            entry = reported[job.name]
            if entry.get("error"):
                msg = f"fio job {job.name!r} failed with error {entry['error']}"
                raise BackendError(msg)
            for direction, does in (("read", job.reads()), ("write", job.writes())):
                if not does:
                    continue
                stats = entry[direction]
                if not stats.get("io_bytes"):
                    msg = f"fio job {job.name!r} reported no {direction}s"
                    raise BackendError(msg)
                prefix = f"disk.{job.name}.{direction}"
                out.append(Measurement(f"{prefix}_bw", float(stats["bw_bytes"]), "B/s"))
                out.append(Measurement(f"{prefix}_iops", float(stats["iops"]), "IOPS"))
                for label, key in _PERCENTILES:
                    out.append(Measurement(f"{prefix}_lat_{label}", _percentile(stats, key), "s"))
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"unparseable fio output: {stdout[-300:]!r}"
        raise BackendError(msg) from exc
    return out


def job_facts(workload: DiskWorkload) -> dict[str, str]:
    """The fio settings of every job, one fact each (what a reader needs to rerun it)."""
    facts: dict[str, str] = {}
    for job in workload.jobs:
        settings = [
            f"rw={job.rw}",
            f"bs={int(job.bs)}",
            f"ioengine={job.ioengine}",
            f"iodepth={job.iodepth}",
            f"numjobs={job.numjobs}",
            f"runtime={job.runtime or workload.runtime:g}s",
            f"size={int(workload.file_size)}",
            f"direct={1 if workload.direct == 'on' else 0}",
        ]
        if job.rwmixread is not None:
            settings.append(f"rwmixread={job.rwmixread}")
        facts[f"fio_job_{job.name}"] = " ".join(settings)
    return facts
