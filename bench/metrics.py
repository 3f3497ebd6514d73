"""The metric catalog: every metric name the harness emits, its unit, family and direction.

Pure data. Every name a backend or parser emits is listed here (``tests/unit/
test_metrics_catalog.py`` collects what each module declares in its ``EMITS`` and checks it);
names a parser builds from user input (fio job names) are catalogued as patterns with a
``<job>`` placeholder. The runner refuses any other name (a failed row saying why) unless the
scenario's command workload declares its unit and direction (``workload.metrics``); no
direction is ever guessed from a name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
        # docker and podman phases
        _m("startup.create", "s", False, "container create API call"),
        _m("startup.start", "s", False, "launch request -> start API call returned (cumulative)"),
        _m("startup.exit", "s", False, "start returned -> container exit observed"),
        _m("startup.remove", "s", False, "container remove API call"),
        _m("startup.cli_run", "s", False, "`docker|podman run --rm IMAGE probe` end to end"),
        # vagrant phases
        _m("startup.up", "s", False, "`vagrant up` end to end"),
        _m("startup.domain", "s", False, "vagrant up issued -> VMM connected its marker channel"),
        _m("startup.kernel", "s", False, "guest kernel boot time (firmware/loader excluded)"),
        _m("startup.userspace", "s", False, "guest userspace boot time (systemd-analyze)"),
        _m("startup.ssh", "s", False, "vagrant up issued -> guest marker: sshd up, link up"),
        _m("startup.halt", "s", False, "`vagrant halt`"),
        _m("startup.vagrant_cli", "s", False, "`vagrant status`: Vagrant's own CLI start-up"),
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
        # vmm_pss/vmm_rss: emitted by VM runs before memory.environment (older result files)
        _m("memory.vmm_pss", "B", False, "PSS of the VMM process(es) on the host"),
        _m("memory.vmm_rss", "B", False, "RSS of the VMM process on the host (PSS cross-check)"),
        _m("memory.vm_configured", "B", False, "RAM given to the guest (configuration)"),
        _m("memory.guest_touched", "B", False, "guest RAM backed on the host (RSS of its mapping)"),
        _m("memory.guest_total", "B", False, "MemTotal as seen inside the guest"),
        _m("memory.guest_available", "B", True, "MemAvailable as seen inside the guest"),
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
        # network (the probe's netserver/netclient, loopback only)
        _m("network.tcp_throughput", "B/s", True, "TCP stream, bytes the server received per s"),
        _m("network.rr_latency_p50", "s", False, "request/response round trip, median"),
        _m("network.rr_latency_p99", "s", False, "request/response round trip, 99th percentile"),
        _m("network.connect_latency_p50", "s", False, "connect + 1-byte reply, median"),
        _m("network.connect_latency_p99", "s", False, "connect + 1-byte reply, 99th percentile"),
        # density (N idle environments at once)
        _m("density.startup_mean", "s", False, "launch -> ready, mean over the N instances"),
        _m("density.startup_max", "s", False, "launch -> ready of the slowest instance"),
        _m("density.startup_all", "s", False, "first launch -> last instance ready"),
        _m("density.teardown_all", "s", False, "tearing all N instances down"),
        _m("density.pss_per_instance", "B", False, "PSS over all instances' host processes / N"),
        _m("density.available_per_instance", "B", False, "host MemAvailable drop / N"),
        _m("command.memory_bw", "MiB/s", True, "sysbench memory: MiB transferred per second"),
        _m("command.memory_ops_rate", "ops/s", True, "sysbench memory: operations per second"),
        _m("command.fileio_reads_rate", "ops/s", True, "sysbench fileio: reads per second"),
        _m("command.fileio_writes_rate", "ops/s", True, "sysbench fileio: writes per second"),
        _m("command.fileio_fsyncs_rate", "ops/s", True, "sysbench fileio: fsyncs per second"),
        _m("command.fileio_read_bw", "MiB/s", True, "sysbench fileio: read throughput"),
        _m("command.fileio_write_bw", "MiB/s", True, "sysbench fileio: written throughput"),
    )
}


@dataclass(frozen=True, slots=True)
class Phase:
    """One sequential phase of ``startup.total``: ``metric`` minus ``since`` (when cumulative)."""

    label: str
    metric: str
    since: str | None = None


#: Sequential, disjoint phases inside startup.total, per startup path, in order. A stack is
#: only these; whatever of startup.total they leave is "other". Teardown (remove, halt,
#: destroy) comes after startup.total ends and is never stacked; ``startup.start`` counts
#: from launch, so its own phase is start minus create.
STARTUP_PHASES: Final[tuple[tuple[Phase, ...], ...]] = (
    (
        Phase("create", "startup.create"),
        Phase("start", "startup.start", since="startup.create"),
        Phase("exit", "startup.exit"),
    ),
    # VM: all three are host instants from launch (the guest's readiness markers), so they
    # partition startup.total exactly; the guest-side kernel/userspace durations are not on
    # that timeline (userspace ends after the ready marker) and are never stacked.
    (
        Phase("domain", "startup.domain"),
        Phase("guest boot", "startup.ready", since="startup.domain"),
        Phase("probe", "startup.total", since="startup.ready"),
    ),
)


#: Names built from user input: ``<job>`` stands for one dot-free segment (a fio job name).
PATTERNS: Final[tuple[Metric, ...]] = (
    _m("command.<job>.read_bw", "B/s", True, "fio job read bandwidth (fio-json parser)"),
    _m("command.<job>.write_bw", "B/s", True, "fio job write bandwidth (fio-json parser)"),
    _m("command.<job>.read_iops", "IOPS", True, "fio job read IOPS (fio-json parser)"),
    _m("command.<job>.write_iops", "IOPS", True, "fio job write IOPS (fio-json parser)"),
    # the disk workload's named jobs (workload.jobs)
    _m("disk.<job>.read_bw", "B/s", True, "fio job read bandwidth"),
    _m("disk.<job>.write_bw", "B/s", True, "fio job write bandwidth"),
    _m("disk.<job>.read_iops", "IOPS", True, "fio job read IOPS"),
    _m("disk.<job>.write_iops", "IOPS", True, "fio job write IOPS"),
    _m("disk.<job>.read_lat_p50", "s", False, "fio job median read completion latency"),
    _m("disk.<job>.read_lat_p99", "s", False, "fio job 99th percentile read completion latency"),
    _m("disk.<job>.write_lat_p50", "s", False, "fio job median write completion latency"),
    _m("disk.<job>.write_lat_p99", "s", False, "fio job 99th percentile write completion latency"),
)
_PATTERN_RES: Final = tuple(
    (re.compile(re.escape(m.name).replace(re.escape("<job>"), r"[^.]+") + r"\Z"), m)
    for m in PATTERNS
)


def lookup(name: str) -> Metric | None:
    """Return the catalog entry for ``name`` (exact, else a matching pattern) or None."""
    exact = CATALOG.get(name)
    if exact is not None:
        return exact
    for pattern, metric in _PATTERN_RES:
        if pattern.match(name):
            return Metric(
                name, metric.unit, metric.family, metric.higher_is_better, metric.description
            )
    return None


def declared(name: str, unit: str, direction: str, description: str = "") -> Metric:
    """The catalog entry a scenario declares for its command (``direction``: higher/lower)."""
    return _m(name, unit, direction == "higher", description or "declared by the scenario")


def family(name: str) -> str:
    """Metric family: the part before the first dot."""
    return name.split(".", 1)[0]


#: Metrics whose cost is compared to native by difference (backend - native, in the unit,
#: with its CI), not by ratio: a ratio of memory totals mostly compares a VM's RAM with the
#: workload's. The difference for ``memory.environment`` is the headline ``memory.overhead``.
DIFFERENCE_METRICS: Final = frozenset(
    {"memory.environment", "density.pss_per_instance", "density.available_per_instance"}
)


def compared_by_difference(name: str) -> bool:
    """Whether ``name``'s comparison with native is a difference rather than a ratio."""
    return name in DIFFERENCE_METRICS


def cannot_be_negative(name: str) -> bool:
    """Whether ``name`` is a catalog quantity (every one a time, rate, count or size).

    A negative sample of such a metric is noise larger than the effect (MemAvailable per
    instance, when the host's free memory rose while the instances ran). Metrics a scenario
    declares for its own command may be signed.
    """
    return lookup(name) is not None


def higher_is_better(name: str, declared: Mapping[str, bool] | None = None) -> bool:
    """Direction of ``name``: the catalog's, else the scenario's declaration, else a cost.

    The last case only concerns data recorded before the runner refused uncatalogued names.
    """
    metric = lookup(name)
    if metric is not None:
        return metric.higher_is_better
    return bool(declared.get(name, False)) if declared else False
