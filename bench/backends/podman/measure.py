"""Podman's host memory: the container's processes plus its conmon, as one environment.

``memory.environment`` has one definition for every backend (:mod:`bench.workloads.hostmem`):
the PSS summed over the environment's host processes. Podman has no containerd-shim: each
container is watched by its own ``conmon``, so a container's processes are its cgroup's (when
it has one of its own: rootful, or rootless with cgroup v2 delegation) plus conmon and everything
under it (rootless on cgroup v1 has no cgroup of its own; conmon's tree holds the container).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import docker
import psutil

from bench.backends.docker.cgroupmem import CgroupMemory, cgroup_memory, cgroup_pids
from bench.backends.docker.measure import Spec, idle_probe, kernel_facts
from bench.values import Measurement, Outcome
from bench.workloads.hostmem import EnvironmentMemory, environment_memory, process_tree

#: Metric names this module emits (start-up comes from the Docker backend's measure module).
EMITS: Final = frozenset(
    {"memory.environment", "memory.shim_pss", "memory.cgroup_usage", "memory.workload_peak"}
)


def conmon_of(container_id: str) -> psutil.Process | None:
    """The conmon process watching ``container_id`` (not an exec session's)."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "conmon" and container_id in cmdline and "--exec" not in cmdline:
            return proc
    return None


@dataclass(frozen=True, slots=True)
class _Conmon:
    """Podman's own readings: the container's cgroup (if its own) and its conmon."""

    cgroup: CgroupMemory
    own_cgroup: bool
    conmon: psutil.Process | None
    memory: EnvironmentMemory


def memory_idle(
    client: docker.DockerClient,
    spec: Spec,
    alloc: int,
    idle: float,
    timeout: float,
    *,
    service_pid: int,
) -> Outcome:
    """Run ``probe idle``; while it idles, sum the PSS of the container's host processes."""

    def sample(container: str, pid: int) -> tuple[EnvironmentMemory, _Conmon]:
        cgroup = cgroup_memory(pid)
        own_cgroup = cgroup.path != cgroup_memory(service_pid).path
        conmon = conmon_of(container)
        pids = cgroup_pids(cgroup) if own_cgroup else [pid]
        pids += process_tree(conmon.pid) if conmon else []
        environment = environment_memory(pids)
        helper = environment_memory([conmon.pid] if conmon else [])
        return environment, _Conmon(cgroup, own_cgroup, conmon, helper)

    run = idle_probe(client, spec, alloc, idle, timeout, sample=sample)
    found, kv = run.extra, run.kv
    measurements = [
        Measurement("memory.environment", float(run.environment.pss)),
        Measurement("memory.shim_pss", float(found.memory.pss)),
        Measurement("memory.workload_peak", float(run.hwm)),
    ]
    facts = {
        **kernel_facts(kv),
        **run.environment.facts(),
        "memory_accounting": "cgroup processes + conmon tree"
        if found.own_cgroup
        else "conmon and the container's processes (no cgroup of its own)",
        "probe_peak_rss_bytes": kv.get("peak_rss", ""),
        "probe_ru_maxrss_bytes": kv.get("maxrss_rusage", ""),
    }
    if found.own_cgroup:
        measurements.append(Measurement("memory.cgroup_usage", float(found.cgroup.working_set)))
        facts["cgroup_version"] = str(found.cgroup.version)
    if found.conmon is None:
        facts["warning"] = "no conmon process found: memory.environment counts the container only"
    return Outcome(measurements, facts)
