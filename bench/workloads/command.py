"""The command workload: any argv, parsed as wall time, GNU time, sysbench, fio, JSON or regex."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from bench.scenario.model import CommandWorkload
from bench.values import BackendError, Measurement, Outcome
from bench.workloads.execution import Executor, check_exit, parse_keyvalues
from bench.workloads.parsers import parse_json, parse_regex

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
    check_exit(result, f"command {workload.command[0]!r}")
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
