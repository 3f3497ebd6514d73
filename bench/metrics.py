"""The metric catalog: every metric name the harness emits, its unit, family and direction.

Pure data. A metric not listed here can still be recorded (``command`` workloads name their
own), but then it carries whatever unit the parser gives and ``higher_is_better`` defaults to
False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Metric:
    """One measurable quantity."""

    name: str
    unit: str
    family: str
    higher_is_better: bool
    description: str


def _m(name: str, unit: str, higher: bool, description: str) -> Metric:
    return Metric(name, unit, name.split(".", 1)[0], higher, description)


CATALOG: Final[dict[str, Metric]] = {
    m.name: m
    for m in (
        # startup, common to every backend
        _m("startup.ready", "s", False, "launch request -> first instruction of the workload"),
        _m("startup.total", "s", False, "launch request -> workload exited (and was reaped)"),
        # docker phases
        _m("startup.create", "s", False, "container create API call"),
        _m("startup.start", "s", False, "container start API call (returns)"),
        _m("startup.exit", "s", False, "start returned -> container exit observed"),
        _m("startup.remove", "s", False, "container remove API call"),
        _m("startup.cli_run", "s", False, "`docker run --rm IMAGE probe` end to end"),
        # vagrant phases
        _m("startup.up", "s", False, "`vagrant up` end to end"),
        _m("startup.domain", "s", False, "vagrant up issued -> VMM process exists"),
        _m("startup.kernel", "s", False, "guest kernel boot time (firmware/loader excluded)"),
        _m("startup.userspace", "s", False, "guest userspace boot time (systemd-analyze)"),
        _m("startup.ssh", "s", False, "vagrant up issued -> SSH answers"),
        _m("startup.halt", "s", False, "`vagrant halt`"),
        _m("startup.destroy", "s", False, "`vagrant destroy -f`"),
        # syscalls
        _m("syscall.null_rate", "calls/s", True, "getppid() calls per second"),
        _m("syscall.mixed_rate", "calls/s", True, "stat/open/read/close on tmpfs, calls/s"),
        # disk
        _m("disk.seq_read", "B/s", True, "fio sequential read bandwidth"),
        _m("disk.seq_write", "B/s", True, "fio sequential write bandwidth"),
        _m("disk.rand_read_iops", "IOPS", True, "fio random 4 KiB read IOPS"),
        _m("disk.rand_write_iops", "IOPS", True, "fio random 4 KiB write IOPS"),
        _m("disk.fsync_latency", "s", False, "fio mean fsync latency after 4 KiB writes"),
        # memory
        _m(
            "memory.environment",
            "B",
            False,
            "PSS summed over the environment's host processes while the workload idles",
        ),
        _m("memory.workload_peak", "B", False, "peak resident memory of the workload itself"),
        _m("memory.vmm_pss", "B", False, "PSS of the VMM process(es) on the host"),
        _m("memory.guest_total", "B", False, "MemTotal as seen inside the guest"),
        _m("memory.guest_available", "B", False, "MemAvailable as seen inside the guest"),
        _m("memory.shim_pss", "B", False, "PSS of containerd-shim/runtime processes"),
        _m("memory.cgroup_usage", "B", False, "container cgroup memory usage"),
        # command
        _m("command.wall", "s", False, "wall time of a generic command"),
        _m("command.user", "s", False, "user CPU time of a generic command"),
        _m("command.sys", "s", False, "system CPU time of a generic command"),
        _m("command.max_rss", "B", False, "max RSS of a generic command (/usr/bin/time)"),
        _m("command.events_rate", "events/s", True, "sysbench events per second"),
        _m("command.latency_min", "s", False, "sysbench minimum event latency"),
        _m("command.latency_avg", "s", False, "sysbench mean event latency"),
        _m("command.latency_max", "s", False, "sysbench maximum event latency"),
        _m("command.latency_p95", "s", False, "sysbench 95th percentile event latency"),
    )
}


def lookup(name: str) -> Metric | None:
    """Return the catalog entry for ``name`` or None."""
    return CATALOG.get(name)


def family(name: str) -> str:
    """Metric family: the part before the first dot."""
    return name.split(".", 1)[0]


#: Metrics whose cost is compared to native by difference (backend - native, in the unit,
#: with its CI), not by ratio: a ratio of memory totals mostly compares a VM's RAM with the
#: workload's. The difference for ``memory.environment`` is the headline ``memory.overhead``.
DIFFERENCE_METRICS: Final = frozenset({"memory.environment"})


def compared_by_difference(name: str) -> bool:
    """Whether ``name``'s comparison with native is a difference rather than a ratio."""
    return name in DIFFERENCE_METRICS


#: Name endings of throughput metrics outside the catalog (e.g. ``command.<job>.read_bw``
#: from the generic fio parser): more is better.
THROUGHPUT_SUFFIXES: Final = ("_rate", "_bw", "_iops")


def higher_is_better(name: str) -> bool:
    """Direction of ``name``: the catalog's, else throughput by name, else a cost."""
    metric = CATALOG.get(name)
    if metric is not None:
        return metric.higher_is_better
    return name.endswith(THROUGHPUT_SUFFIXES)
