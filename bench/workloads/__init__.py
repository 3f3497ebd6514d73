"""Built-in workloads: what runs inside an environment and how its output becomes samples.

The in-environment part is shared by every backend through an :data:`Executor` (run an argv
inside the environment, return exit code/stdout/stderr), so native, container and VM run the
same binary with the same arguments and are parsed by the same code.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from bench.scenario.model import (
    CommandWorkload,
    DiskWorkload,
    MemoryWorkload,
    StartupWorkload,
    SyscallWorkload,
)
from bench.sysinfo import filesystem_facts
from bench.values import BackendError, Measurement, Outcome
from bench.workloads.fio import fio_job_argv, job_facts, job_metrics, parse_fio_jobs
from bench.workloads.parsers import parse_json, parse_regex

#: Path of the probe inside images and boxes built by ``isobench env build``.
GUEST_PROBE: Final = "/opt/isobench/bin/isobench-probe"
#: Contract metrics per workload kind: a failed repetition writes one row for each.
CONTRACT: Final[dict[str, tuple[str, ...]]] = {
    "startup": ("startup.ready", "startup.total"),
    "syscall": ("syscall.null_rate", "syscall.mixed_rate"),
    "disk": (
        "disk.seq_read",
        "disk.seq_write",
        "disk.rand_read_iops",
        "disk.rand_write_iops",
        "disk.fsync_latency",
    ),
    "memory": ("memory.environment", "memory.workload_peak"),
    "command": ("command.wall",),
    "network": (
        "network.tcp_throughput",
        "network.rr_latency_p50",
        "network.rr_latency_p99",
        "network.connect_latency_p50",
        "network.connect_latency_p99",
    ),
    "density": (
        "density.startup_mean",
        "density.startup_max",
        "density.startup_all",
        "density.teardown_all",
        "density.pss_per_instance",
        "density.available_per_instance",
    ),
}
#: Every metric name the shared parsers emit (fio-json job metrics as catalog patterns).
EMITS: Final = frozenset(
    {
        *(name for names in CONTRACT.values() for name in names),
        *("command.user", "command.sys", "command.max_rss", "command.events_rate"),
        *("command.latency_min", "command.latency_avg", "command.latency_max"),
        "command.latency_p95",
        *("command.memory_bw", "command.memory_ops_rate"),
        *("command.fileio_reads_rate", "command.fileio_writes_rate"),
        *("command.fileio_fsyncs_rate", "command.fileio_read_bw", "command.fileio_write_bw"),
        *("command.<job>.read_bw", "command.<job>.write_bw"),
        *("command.<job>.read_iops", "command.<job>.write_iops"),
    }
)


def contract(workload: Any) -> tuple[str, ...]:
    """Metrics every repetition of ``workload`` reports: a failed one writes a row for each.

    The kind's :data:`CONTRACT`, except for a disk workload with named jobs (each job's
    metrics) and a command with a json/regex parser (its declared metrics).
    """
    if isinstance(workload, DiskWorkload) and workload.jobs:
        return tuple(name for job in workload.jobs for name in job_metrics(job))
    if isinstance(workload, CommandWorkload) and workload.parser in {"json", "regex"}:
        return ("command.wall", *(entry.name for entry in workload.metrics))
    return CONTRACT[workload.kind]


@dataclass(frozen=True, slots=True)
class ExecResult:
    """Result of running one argv inside an environment."""

    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds, as measured by the executor on the host


#: Run ``argv`` inside the environment with a timeout (seconds); raise RepetitionTimeout.
Executor = Callable[[Sequence[str], float], ExecResult]


class ProbeBuildError(BackendError):
    """The static probe cannot be built (no compiler or no static libc)."""


def probe_source() -> bytes:
    """Source of the probe binary."""
    return resources.files("bench.workloads").joinpath("probe.c").read_bytes()


def probe_hash() -> str:
    """Content hash of the probe source (12 hex digits)."""
    return hashlib.sha256(probe_source()).hexdigest()[:12]


def build_probe(cache: Path) -> Path:
    """Build the static probe into ``cache`` (reused while the source is unchanged)."""
    target = cache / f"isobench-probe-{probe_hash()}"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        msg = (
            "no C compiler found to build the static syscall probe "
            "(apt-get install gcc libc6-dev); refusing to fall back to an interpreted loop"
        )
        raise ProbeBuildError(msg)
    src = cache / f"probe-{probe_hash()}.c"
    src.write_bytes(probe_source())
    tmp = target.with_suffix(".tmp")
    proc = subprocess.run(
        [compiler, "-O2", "-static", "-o", str(tmp), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"building the static probe failed ({compiler}): {proc.stderr.strip()[-500:]}"
        raise ProbeBuildError(msg)
    tmp.replace(target)
    return target


def parse_keyvalues(text: str) -> dict[str, str]:
    """Parse the probe's ``key=value`` lines (later keys win)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _check(result: ExecResult, what: str) -> None:
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-400:]
        msg = f"{what} exited with status {result.returncode}: {tail}"
        raise BackendError(msg)


# --- syscall --------------------------------------------------------------------------------


def syscall_argv(probe: str, workload: SyscallWorkload, directory: str = "/dev/shm") -> list[str]:
    """argv of the syscall workload."""
    iters = max(1, workload.mixed_calls // 4)
    return [probe, "syscall", str(workload.null_calls), str(iters), directory]


def parse_syscall(stdout: str) -> Outcome:
    """Turn the probe's syscall output into samples."""
    kv = parse_keyvalues(stdout)
    try:
        measurements = [
            Measurement("syscall.null_rate", float(kv["null_rate"])),
            Measurement("syscall.mixed_rate", float(kv["mixed_rate"])),
        ]
    except (KeyError, ValueError) as exc:
        msg = f"unparseable syscall probe output: {stdout[-300:]!r}"
        raise BackendError(msg) from exc
    facts: dict[str, str] = {k: kv[k] for k in ("kernel", "dir") if k in kv}
    return Outcome(measurements, facts)


def run_syscall(
    execute: Executor, probe: str, workload: SyscallWorkload, timeout: float
) -> Outcome:
    """Run the syscall workload through ``execute`` (tmpfs /dev/shm, else /tmp)."""
    result = execute(syscall_argv(probe, workload), timeout)
    if result.returncode != 0:
        result = execute(syscall_argv(probe, workload, "/tmp"), timeout)
    _check(result, "syscall probe")
    return parse_syscall(result.stdout)


# --- disk (fio) -------------------------------------------------------------------------------

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
    _check(result, "fio")
    execute(["rm", "-f", f"{directory}/isobench-fio.dat"], timeout)
    facts = {"direct_io": "on" if direct else "off"}
    if workload.jobs:
        return Outcome(parse_fio_jobs(result.stdout, workload), {**facts, **job_facts(workload)})
    return Outcome(parse_fio(result.stdout), facts)


# --- command ----------------------------------------------------------------------------------


_SYSBENCH_RATES: Final = {
    "events per second": ("command.events_rate", "events/s", 1.0),
    "reads/s": ("command.fileio_reads_rate", "ops/s", 1.0),
    "writes/s": ("command.fileio_writes_rate", "ops/s", 1.0),
    "fsyncs/s": ("command.fileio_fsyncs_rate", "ops/s", 1.0),
    "read, mib/s": ("command.fileio_read_bw", "MiB/s", 1.0),
    "written, mib/s": ("command.fileio_write_bw", "MiB/s", 1.0),
    "min": ("command.latency_min", "s", 1e-3),
    "avg": ("command.latency_avg", "s", 1e-3),
    "max": ("command.latency_max", "s", 1e-3),
    "95th percentile": ("command.latency_p95", "s", 1e-3),
}
#: sysbench memory: "Total operations: N (R per second)", "X MiB transferred (Y MiB/sec)".
_SYSBENCH_MEMORY: Final = (
    (
        re.compile(r"^Total operations:\s*\S+\s*\(\s*([\d.]+) per second\)"),
        "command.memory_ops_rate",
        "ops/s",
    ),
    (re.compile(r"^[\d.]+ MiB transferred \(([\d.]+) MiB/sec\)"), "command.memory_bw", "MiB/s"),
)


def parse_sysbench(stdout: str) -> list[Measurement]:
    """Parse sysbench's report: events/s, memory and fileio figures, latency percentiles."""
    out: list[Measurement] = []
    for line in stdout.splitlines():
        stripped = line.strip()
        for pattern, name, unit in _SYSBENCH_MEMORY:
            memory = pattern.match(stripped)
            if memory:
                out.append(Measurement(name, float(memory.group(1)), unit))
        key, sep, value = stripped.partition(":")
        known = _SYSBENCH_RATES.get(key.strip().lower())
        if not sep or known is None or not value.strip():
            continue
        try:
            number = float(value.split()[0])
        except ValueError:
            continue
        name, unit, factor = known
        out.append(Measurement(name, number * factor, unit))
    if not out:
        msg = f"no sysbench figures found in output: {stdout[-300:]!r}"
        raise BackendError(msg)
    return out


TIME_FORMAT: Final = "isobench_time wall=%e user=%U sys=%S maxrss_kb=%M"


def parse_time(stderr: str) -> list[Measurement]:
    """Parse the ``/usr/bin/time -f TIME_FORMAT`` line."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("isobench_time "):
            kv = parse_keyvalues(line.removeprefix("isobench_time ").replace(" ", "\n"))
            return [
                Measurement("command.wall", float(kv["wall"])),
                Measurement("command.user", float(kv["user"])),
                Measurement("command.sys", float(kv["sys"])),
                Measurement("command.max_rss", float(kv["maxrss_kb"]) * 1024),
            ]
    msg = "no /usr/bin/time output found (is GNU time installed in the environment?)"
    raise BackendError(msg)


def command_argv(workload: CommandWorkload) -> list[str]:
    """argv of a generic command (wrapped in GNU time for the ``time`` parser)."""
    argv = list(workload.command)
    if workload.parser == "time":
        return ["/usr/bin/time", "-f", TIME_FORMAT, *argv]
    return argv


def run_command(execute: Executor, workload: CommandWorkload, timeout: float) -> Outcome:
    """Run a generic command and parse its output with the scenario's parser.

    The backend's executor runs it in the storage under test (its working directory).
    """
    result = execute(command_argv(workload), timeout)
    _check(result, f"command {workload.command[0]!r}")
    # Wall time is always recorded (it is the contract metric of the command kind); the
    # ``time`` parser's own wall figure comes from GNU time inside the environment instead.
    wall = [Measurement("command.wall", result.wall)]
    if workload.parser == "wall":
        return Outcome(wall)
    if workload.parser == "time":
        return Outcome(parse_time(result.stderr))
    if workload.parser == "sysbench":
        return Outcome([*wall, *parse_sysbench(result.stdout)])
    if workload.parser == "json":
        return Outcome([*wall, *parse_json(result.stdout, workload)])
    if workload.parser == "regex":
        return Outcome([*wall, *parse_regex(result.stdout, result.stderr, workload)])
    return Outcome([*wall, *parse_fio_generic(result.stdout)])


def parse_fio_generic(stdout: str) -> list[Measurement]:
    """Per-job read/write bandwidth and IOPS from any fio JSON output."""
    start = stdout.find("{")
    try:
        doc: dict[str, Any] = json.loads(stdout[start:])
        out: list[Measurement] = []
        for job in doc["jobs"]:
            name = job["jobname"]
            for direction in ("read", "write"):
                stats = job.get(direction, {})
                if stats.get("io_bytes", 0) > 0:
                    prefix = f"command.{name}.{direction}"
                    out.append(Measurement(f"{prefix}_bw", float(stats["bw_bytes"]), "B/s"))
                    out.append(Measurement(f"{prefix}_iops", float(stats["iops"]), "IOPS"))
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"unparseable fio output: {stdout[-300:]!r}"
        raise BackendError(msg) from exc
    return out


__all__ = [
    "CONTRACT",
    "GUEST_PROBE",
    "CommandWorkload",
    "DiskWorkload",
    "ExecResult",
    "Executor",
    "MemoryWorkload",
    "ProbeBuildError",
    "StartupWorkload",
    "SyscallWorkload",
    "build_probe",
    "contract",
    "disk_placement",
    "disk_variant",
    "run_command",
    "run_disk",
    "run_syscall",
]
