"""Podman's host memory: the container's processes plus its conmon, as one environment.

``memory.environment`` has one definition for every backend (:mod:`bench.workloads.hostmem`):
the PSS summed over the environment's host processes. Podman has no containerd-shim: each
container is watched by its own ``conmon``, so a container's processes are its cgroup's (when
it has one of its own: rootful, or rootless with cgroup v2 delegation) plus conmon and everything
under it (rootless on cgroup v1 has no cgroup of its own; conmon's tree holds the container).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import docker
import psutil

from bench.backends.docker.cgroupmem import CgroupMemory, cgroup_memory, cgroup_pids
from bench.backends.docker.measure import Spec, idle_probe, kernel_facts
from bench.backends.docker.netdensity import DockerInstances
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
class Processes:
    """A Podman container's host processes and how they were found."""

    pids: list[int]
    cgroup: CgroupMemory
    own_cgroup: bool  # False: rootless on cgroup v1, the container shares the service's
    conmon: psutil.Process | None


def container_processes(pid: int, container_id: str, service_pid: int) -> Processes:
    """Its cgroup's processes (when it has a cgroup of its own, else its init) + conmon's tree."""
    cgroup = cgroup_memory(pid)
    own_cgroup = cgroup.path != cgroup_memory(service_pid).path
    conmon = conmon_of(container_id)
    pids = cgroup_pids(cgroup) if own_cgroup else [pid]
    pids += process_tree(conmon.pid) if conmon else []
    return Processes(list(dict.fromkeys(pids)), cgroup, own_cgroup, conmon)


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

    def sample(
        container: str, pid: int
    ) -> tuple[EnvironmentMemory, tuple[Processes, EnvironmentMemory]]:
        """Read while the probe idles: the environment, then conmon alone (the "shim")."""
        found = container_processes(pid, container, service_pid)
        environment = environment_memory(found.pids)
        helper = environment_memory([found.conmon.pid] if found.conmon else [])
        return environment, (found, helper)

    run = idle_probe(client, spec, alloc, idle, timeout, sample=sample)
    (found, helper), kv = run.extra, run.kv
    measurements = [
        Measurement("memory.environment", float(run.environment.pss)),
        Measurement("memory.shim_pss", float(helper.pss)),
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


class PodmanInstances(DockerInstances):
    """Density instances on Podman: the Docker backend's containers, conmon instead of a shim."""

    def __init__(self, *args: Any, service_pid: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.service_pid = service_pid  # a container in the service's cgroup has none of its own

    def pids(self, handles: Sequence[str]) -> list[int]:
        """Every container's processes as for ``memory.environment`` (cgroup or init + conmon)."""
        pids: list[int] = []
        for handle in handles:
            pid = int(self.client.api.inspect_container(handle)["State"]["Pid"])
            pids += container_processes(pid, handle, self.service_pid).pids
        return list(dict.fromkeys(pids))
