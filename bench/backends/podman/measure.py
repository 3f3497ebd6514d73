"""Podman's host memory: the container's processes plus its conmon, as one environment.

``memory.environment`` has one definition for every backend (:mod:`bench.workloads.hostmem`):
the PSS summed over the environment's host processes. Podman has no containerd-shim: each
container is watched by its own ``conmon``, so a container's processes are its cgroup's (when
it has one of its own: rootful, or rootless with cgroup v2 delegation) plus conmon and everything
under it (rootless on cgroup v1 has no cgroup of its own; conmon's tree holds the container).
"""

from __future__ import annotations

import time
from typing import Final

import docker
import psutil

from bench.backends.docker.measure import (
    Spec,
    _await_ready,
    _create,
    _logs,
    _remove_quietly,
    _wait,
    cgroup_memory,
    cgroup_pids,
    kernel_facts,
)
from bench.sysinfo import vm_hwm
from bench.values import BackendError, Measurement, Outcome
from bench.workloads import GUEST_PROBE, parse_keyvalues
from bench.workloads.hostmem import environment_memory, process_tree

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
    deadline = time.perf_counter() + timeout
    container = _create(client, spec, [GUEST_PROBE, "idle", str(alloc), f"{idle:g}"])
    try:
        client.api.start(container)
        _await_ready(client, container, deadline)
        pid = int(client.api.inspect_container(container)["State"]["Pid"])
        cgroup = cgroup_memory(pid)
        own_cgroup = cgroup.path != cgroup_memory(service_pid).path
        conmon = conmon_of(container)
        pids = cgroup_pids(cgroup) if own_cgroup else [pid]
        pids += process_tree(conmon.pid) if conmon else []
        environment = environment_memory(pids)
        helper = environment_memory([conmon.pid] if conmon else [])
        hwm = vm_hwm(pid)
        code = _wait(client, container, deadline - time.perf_counter(), "the memory probe")
        stdout, stderr = _logs(client, container)
    finally:
        _remove_quietly(client, container)
    if code != 0:
        msg = f"memory probe exited with status {code}: {(stderr or stdout).strip()[-300:]}"
        raise BackendError(msg)
    if hwm <= 0 or pid not in environment.pids:
        msg = "the memory probe exited before it was measured (no VmHWM / smaps_rollup)"
        raise BackendError(msg)
    kv = parse_keyvalues(stdout)
    measurements = [
        Measurement("memory.environment", float(environment.pss)),
        Measurement("memory.shim_pss", float(helper.pss)),
        Measurement("memory.workload_peak", float(hwm)),
    ]
    facts = {
        **kernel_facts(kv),
        **environment.facts(),
        "memory_accounting": "cgroup processes + conmon tree"
        if own_cgroup
        else "conmon and the container's processes (no cgroup of its own)",
        "probe_peak_rss_bytes": kv.get("peak_rss", ""),
        "probe_ru_maxrss_bytes": kv.get("maxrss_rusage", ""),
    }
    if own_cgroup:
        measurements.append(Measurement("memory.cgroup_usage", float(cgroup.working_set)))
        facts["cgroup_version"] = str(cgroup.version)
    if conmon is None:
        facts["warning"] = "no conmon process found: memory.environment counts the container only"
    return Outcome(measurements, facts)
