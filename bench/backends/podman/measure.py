"""Podman's memory accounting: the container's cgroup (or its processes) plus conmon.

Podman has no containerd-shim: each container is watched by its own ``conmon``. Where the
container has a memory cgroup of its own (rootful; rootless only with cgroup v2 delegation) the
figure is Docker's: cgroup working set + PSS of the per-container helper. A rootless container
on cgroup v1 gets no cgroup at all, so there the figure is the PSS of conmon and every process
under it (the same way the native and sandbox backends count), and the facts say which.
"""

from __future__ import annotations

import time
from typing import Any

import docker
import psutil

from bench.backends.docker.measure import (
    Spec,
    _create,
    _logs,
    _remove_quietly,
    _wait,
    cgroup_memory,
    kernel_facts,
    pss_uss,
)
from bench.sysinfo import vm_hwm
from bench.values import BackendError, Measurement, Outcome, RepetitionTimeout
from bench.workloads import GUEST_PROBE, parse_keyvalues


def conmon_of(container_id: str) -> psutil.Process | None:
    """The conmon process watching ``container_id``."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "conmon" and container_id in " ".join(proc.info["cmdline"] or []):
            return proc
    return None


def _wait_ready(client: docker.DockerClient, container: str, deadline: float) -> int:
    stdout = ""
    while "ready_ns=" not in stdout:
        if time.perf_counter() > deadline:
            msg = "memory probe did not report ready before the scenario timeout; killed"
            raise RepetitionTimeout(msg)
        state = client.api.inspect_container(container)["State"]
        stdout = client.api.logs(container, stdout=True, stderr=False).decode(errors="replace")
        if "ready_ns=" not in stdout and not state["Running"]:
            msg = f"memory probe exited before it was measured (status {state['ExitCode']})"
            raise BackendError(msg)
        time.sleep(0.01)
    return int(client.api.inspect_container(container)["State"]["Pid"])


def _footprint(container: str, pid: int, service_pid: int) -> tuple[float, dict[str, Any]]:
    """(memory.overhead, facts) of the idling container."""
    conmon = conmon_of(container)
    helpers = [conmon] if conmon else []
    helper_pss, helper_uss = pss_uss(helpers)
    cgroup = cgroup_memory(pid)
    own_cgroup = cgroup.path != cgroup_memory(service_pid).path
    facts: dict[str, Any] = {
        "conmon_pss_bytes": str(helper_pss),
        "conmon_uss_bytes": str(helper_uss),
    }
    if not conmon:
        facts["warning"] = "no conmon process found for the container; its PSS is 0"
    if own_cgroup:
        facts |= {
            "memory_accounting": "cgroup working set + conmon PSS",
            "cgroup_version": str(cgroup.version),
            "cgroup_usage_raw": str(cgroup.usage),
            "cgroup_inactive_file": str(cgroup.inactive_file),
        }
        return float(cgroup.working_set + helper_pss), facts
    tree = conmon.children(recursive=True) if conmon else [psutil.Process(pid)]
    tree_pss, tree_uss = pss_uss(tree)
    facts |= {
        "memory_accounting": "PSS of conmon and the container's processes (no own cgroup)",
        "container_pss_bytes": str(tree_pss),
        "container_uss_bytes": str(tree_uss),
    }
    return float(tree_pss + helper_pss), facts


def memory_idle(
    client: docker.DockerClient,
    spec: Spec,
    alloc: int,
    idle: float,
    timeout: float,
    *,
    service_pid: int,
) -> Outcome:
    """Run ``probe idle``; while it idles, measure what the container costs the host."""
    deadline = time.perf_counter() + timeout
    container = _create(client, spec, [GUEST_PROBE, "idle", str(alloc), f"{idle:g}"])
    try:
        client.api.start(container)
        pid = _wait_ready(client, container, deadline)
        overhead, facts = _footprint(container, pid, service_pid)
        hwm = vm_hwm(pid)
        code = _wait(client, container, deadline - time.perf_counter(), "the memory probe")
        stdout, stderr = _logs(client, container)
    finally:
        _remove_quietly(client, container)
    if code != 0:
        msg = f"memory probe exited with status {code}: {(stderr or stdout).strip()[-300:]}"
        raise BackendError(msg)
    if hwm <= 0:
        msg = "could not read VmHWM of the memory probe while it idled"
        raise BackendError(msg)
    kv = parse_keyvalues(stdout)
    measurements = [
        Measurement("memory.overhead", overhead),
        Measurement("memory.workload_peak", float(hwm)),
    ]
    facts |= {
        **kernel_facts(kv),
        "probe_peak_rss_bytes": kv.get("peak_rss", ""),
        "probe_ru_maxrss_bytes": kv.get("maxrss_rusage", ""),
    }
    return Outcome(measurements, facts)
