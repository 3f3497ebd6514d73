"""The disk workload: fio with the built-in jobs (or the scenario's named ones).

Also the disk variant label and where the test file lives on the host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from bench.scenario.model import DiskWorkload
from bench.sysinfo import filesystem_facts
from bench.values import BackendError, Measurement, Outcome
from bench.workloads.execution import Executor, check_exit
from bench.workloads.fio import fio_job_argv, job_facts, parse_fio_jobs

_FIO_JOBS: Final = (
    # name, rw, block size, time-based. Every job is time-based: a single pass over a small
    # file lasts tens of milliseconds, which fio's millisecond clock cannot resolve.
    ("seq_write", "write", "1M", True),
    ("seq_read", "read", "1M", True),
    ("rand_read", "randread", "4k", True),
    ("rand_write", "randwrite", "4k", True),
    ("fsync", "write", "4k", True),
)


def fio_argv(workload: DiskWorkload, directory: str, direct: bool) -> list[str]:
    """argv of one fio invocation running every disk job in sequence (stonewalled)."""
    # In milliseconds: fio reads a bare number as whole seconds, so 0.2 would become 0 (and
    # fio then ignores time_based with a warning).
    runtime = f"{round(workload.runtime * 1000)}ms"
    argv = [
        "fio",
        "--output-format=json",
        f"--directory={directory}",
        "--filename=isobench-fio.dat",
        f"--size={int(workload.file_size)}",
        "--ioengine=psync",
        f"--direct={1 if direct else 0}",
        "--numjobs=1",
        "--group_reporting=0",
        "--invalidate=1",
    ]
    for name, rw, bs, timed in _FIO_JOBS:
        argv += [f"--name={name}", "--stonewall", f"--rw={rw}", f"--bs={bs}"]
        if timed:
            argv += ["--time_based=1", f"--runtime={runtime}"]
        if name == "fsync":
            argv += ["--fsync=1", "--direct=0"]
    return argv


def parse_fio(stdout: str) -> list[Measurement]:
    """Turn fio's JSON (from :func:`fio_argv`) into disk samples."""
    start = stdout.find("{")
    try:
        doc: dict[str, Any] = json.loads(stdout[start:])
        jobs = {job["jobname"]: job for job in doc["jobs"]}
        sync_lat = jobs["fsync"]["sync"]["lat_ns"]["mean"]
        return [
            Measurement("disk.seq_write", float(jobs["seq_write"]["write"]["bw_bytes"])),
            Measurement("disk.seq_read", float(jobs["seq_read"]["read"]["bw_bytes"])),
            Measurement("disk.rand_read_iops", float(jobs["rand_read"]["read"]["iops"])),
            Measurement("disk.rand_write_iops", float(jobs["rand_write"]["write"]["iops"])),
            Measurement("disk.fsync_latency", float(sync_lat) / 1e9),
        ]
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"unparseable fio output: {stdout[-300:]!r}"
        raise BackendError(msg) from exc


def disk_variant(workload: DiskWorkload) -> dict[str, str]:
    """Variant parameters every backend adds for a disk workload: ``direct=off`` when off.

    Direct I/O is the default and unlabelled; buffered I/O measures the host's page cache
    as much as the storage path, so its figures must never sit under the same label.
    """
    return {"direct": "off"} if workload.direct == "off" else {}


def disk_placement(host_path: Path) -> dict[str, str]:
    """Facts on where a disk test file lives *on the host*: path, filesystem type and device.

    Every backend records these for its test file's host location (native: its directory;
    docker: the volume's mount point or the overlay upper dir; VM: the disk image), so a
    reader can see that all of them share one filesystem (same ``disk_host_fs_dev``).
    """
    facts = {"disk_host_path": str(host_path)}
    facts.update({f"disk_host_{key}": value for key, value in filesystem_facts(host_path).items()})
    return facts


def run_disk(execute: Executor, workload: DiskWorkload, directory: str, timeout: float) -> Outcome:
    """Run fio in ``directory`` with direct I/O unless the scenario says ``direct: off``.

    The scenario's named jobs when it has any (:mod:`bench.workloads.fio`), else the built-in
    ones. Asynchronous engines are checked by the backend's prepare (``check_engines``).
    """
    direct = workload.direct == "on"
    argv = (
        fio_job_argv(workload, directory)
        if workload.jobs
        else fio_argv(workload, directory, direct)
    )
    result = execute(argv, timeout)
    if result.returncode != 0 and direct:
        tail = (result.stderr or result.stdout).strip()[-300:]
        msg = (
            f"fio with direct I/O (O_DIRECT) failed in {directory} (status {result.returncode}):"
            f" {tail}; if this filesystem does not support O_DIRECT, measure buffered I/O with"
            " `direct: off` in the scenario (a variant labelled direct=off)"
        )
        raise BackendError(msg)
    check_exit(result, "fio")
    execute(["rm", "-f", f"{directory}/isobench-fio.dat"], timeout)
    facts = {"direct_io": "on" if direct else "off"}
    if workload.jobs:
        return Outcome(parse_fio_jobs(result.stdout, workload), {**facts, **job_facts(workload)})
    return Outcome(parse_fio(result.stdout), facts)
