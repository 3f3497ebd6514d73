"""Workload kinds and the metrics each reports (the contract a failed repetition fills)."""

from __future__ import annotations

from typing import Any, Final

from bench.scenario.model import CommandWorkload, DiskWorkload
from bench.workloads.fio import job_metrics

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
