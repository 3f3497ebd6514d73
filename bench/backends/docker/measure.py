"""What the docker backend measures in fresh containers: startup phases and host memory.

Timeline of one API-path startup repetition (``perf_counter`` unless noted)::

    t0 ── create returns ── start returns ── wait() returns ── [logs] ── remove returns
    t0_wall (CLOCK_REALTIME) ··· probe's first instruction (ready_ns, CLOCK_REALTIME)

The container shares the host's clock, so ``ready_ns - t0_wall`` is a valid interval.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import docker
import docker.errors
import psutil

from bench.backends.docker.cgroupmem import (
    CgroupMemory,
    cgroup_memory,
    cgroup_pids,
    environment_pids,
    shim_processes,
)
from bench.backends.docker.support import is_timeout
from bench.sysinfo import vm_hwm
from bench.values import BackendError, Measurement, Outcome, RepetitionTimeout
from bench.workloads import GUEST_PROBE, parse_keyvalues
from bench.workloads.hostmem import EnvironmentMemory, environment_memory

#: Metric names this module emits (the workloads module declares the shared ones).
EMITS: Final = frozenset(
    {
        *("startup.create", "startup.start", "startup.ready", "startup.exit", "startup.total"),
        *("startup.remove", "startup.cli_run", "memory.environment", "memory.cgroup_usage"),
        *("memory.shim_pss", "memory.workload_peak"),
    }
)


#: What an engine's sampler reads besides the environment's memory (see :func:`idle_probe`).
Sampled = TypeVar("Sampled")


@dataclass(frozen=True, slots=True)
class Spec:
    """What a fresh container is made of."""

    image: str
    labels: Mapping[str, str]
    name: str
    host_config: Mapping[str, Any]


def _create(client: docker.DockerClient, spec: Spec, command: Sequence[str]) -> str:
    api = client.api
    created = api.create_container(
        spec.image,
        command=list(command),
        labels=dict(spec.labels),
        name=spec.name,
        host_config=api.create_host_config(**spec.host_config),
    )
    return str(created["Id"])


def _remove_quietly(client: docker.DockerClient, container: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_container(container, force=True, v=True)


def _wait(client: docker.DockerClient, container: str, seconds: float, what: str) -> int:
    """Block until the container exits; kill it and raise RepetitionTimeout after ``seconds``."""
    try:
        # The SDK types timeout as int, but requests takes (and honours) float seconds.
        status = client.api.wait(container, timeout=max(0.1, seconds))  # type: ignore[arg-type]
    except Exception as exc:
        if not is_timeout(exc):
            raise
        _remove_quietly(client, container)
        msg = f"{what} still running after the scenario timeout; container killed"
        raise RepetitionTimeout(msg) from exc
    return int(status.get("StatusCode", -1))


def _logs(client: docker.DockerClient, container: str) -> tuple[str, str]:
    api = client.api
    out = api.logs(container, stdout=True, stderr=False)
    err = api.logs(container, stdout=False, stderr=True)
    return out.decode(errors="replace"), err.decode(errors="replace")


def kernel_facts(probe_output: Mapping[str, str]) -> dict[str, str]:
    """Kernel seen inside vs on the host, with a warning when they differ."""
    inside = probe_output.get("kernel", "")
    host = os.uname().release
    facts = {"kernel": inside, "kernel_inside": inside, "kernel_host": host}
    if inside != host:
        facts["warning"] = f"kernel inside the container ({inside!r}) differs from host ({host!r})"
    return facts


def _ready_seconds(kv: Mapping[str, str], t0_wall_ns: int, stdout: str) -> float:
    try:
        return (int(kv["ready_ns"]) - t0_wall_ns) / 1e9
    except (KeyError, ValueError) as exc:
        msg = f"probe printed no ready_ns: {stdout[-200:]!r}"
        raise BackendError(msg) from exc


def startup_api(client: docker.DockerClient, spec: Spec, timeout: float) -> Outcome:
    """One startup through the API: create, start, first instruction, exit, remove."""
    deadline = time.perf_counter() + timeout
    t0_wall = time.time_ns()
    t0 = time.perf_counter()
    container = _create(client, spec, [GUEST_PROBE, "ready"])
    t_create = time.perf_counter()
    removed = False
    try:
        client.api.start(container)
        t_start = time.perf_counter()
        code = _wait(client, container, deadline - time.perf_counter(), "the startup probe")
        t_exit = time.perf_counter()
        stdout, stderr = _logs(client, container)
        t_rm = time.perf_counter()
        client.api.remove_container(container, v=True)
        removed = True
        t_removed = time.perf_counter()
    finally:
        if not removed:
            _remove_quietly(client, container)
    if code != 0:
        msg = f"startup probe exited with status {code}: {(stderr or stdout).strip()[-300:]}"
        raise BackendError(msg)
    kv = parse_keyvalues(stdout)
    ready = _ready_seconds(kv, t0_wall, stdout)
    if not 0 <= ready <= t_exit - t0:
        msg = "the realtime clock moved during the measurement (ready outside launch..exit)"
        raise BackendError(msg)
    measurements = [
        Measurement("startup.create", t_create - t0),
        Measurement("startup.start", t_start - t0),
        Measurement("startup.ready", ready),
        Measurement("startup.exit", t_exit - t_start),
        Measurement("startup.total", t_exit - t0),
        Measurement("startup.remove", t_removed - t_rm),
    ]
    return Outcome(measurements, kernel_facts(kv))


@dataclass(frozen=True, slots=True)
class Cli:
    """An engine's CLI as a user runs it: the argv before ``run``, and as whom (None: as we)."""

    prefix: tuple[str, ...]
    env: Mapping[str, str] | None = None
    user: int | None = None
    group: int | None = None
    cwd: str | None = None

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``subprocess.Popen`` that run it as its user, in its setting."""
        return {
            "env": dict(self.env) if self.env is not None else None,
            "cwd": self.cwd,
            "user": self.user,
            "group": self.group,
            "extra_groups": [] if self.user is not None else None,  # not root's groups
        }


def cli_argv(cli: Cli, spec: Spec) -> list[str]:
    """``docker run --rm`` (or ``podman run --rm``) with the same settings as the API path."""
    hc = spec.host_config
    argv = [*cli.prefix, "run", "--rm", "--name", spec.name]
    for key, value in spec.labels.items():
        argv += ["--label", f"{key}={value}"]
    argv += ["--network", str(hc.get("network_mode", "none"))]
    if hc.get("runtime"):
        argv += ["--runtime", str(hc["runtime"])]
    for opt in hc.get("security_opt", ()):
        argv += ["--security-opt", str(opt)]
    for limit in hc.get("ulimits", ()):
        argv += ["--ulimit", f"{limit['Name']}={limit['Soft']}:{limit['Hard']}"]
    if hc.get("nano_cpus"):
        argv += ["--cpus", f"{hc['nano_cpus'] / 1e9:g}"]
    if hc.get("mem_limit"):
        argv += ["--memory", str(hc["mem_limit"]), "--memory-swap", str(hc["memswap_limit"])]
    return [*argv, spec.image, GUEST_PROBE, "ready"]


def startup_cli(client: docker.DockerClient, cli: Cli, spec: Spec, timeout: float) -> Outcome:
    """One ``docker run --rm IMAGE probe ready`` timed end to end, as a user runs it.

    ``client`` (the engine's API) removes the container when the CLI fails or times out; a
    Ctrl-C kills the CLI and leaves the labelled container to the backend's teardown.
    """
    argv = cli_argv(cli, spec)
    name = f"{Path(argv[0]).name} run"
    t0_wall = time.time_ns()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, **cli.run_kwargs()
        )
    except subprocess.TimeoutExpired as exc:
        _remove_quietly(client, spec.name)  # the CLI is dead, its container may not be
        msg = f"{name} still running after {timeout:g} s; container killed"
        raise RepetitionTimeout(msg) from exc
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        _remove_quietly(client, spec.name)
        msg = f"{name} exited with status {proc.returncode}: {proc.stderr.strip()[-300:]}"
        raise BackendError(msg)
    kv = parse_keyvalues(proc.stdout)
    measurements = [
        Measurement("startup.cli_run", elapsed),
        Measurement("startup.ready", _ready_seconds(kv, t0_wall, proc.stdout)),
        Measurement("startup.total", elapsed),
    ]
    return Outcome(measurements, kernel_facts(kv))


# --- memory ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Idle(Generic[Sampled]):
    """What was read while ``probe idle`` idled in its fresh container."""

    environment: EnvironmentMemory  # the environment's host processes, summed
    extra: Sampled  # what the engine's own sampler read besides
    hwm: int  # the probe's VmHWM, read after the sample
    kv: dict[str, str]  # the probe's key=value output


def idle_probe(
    client: docker.DockerClient,
    spec: Spec,
    alloc: int,
    idle: float,
    timeout: float,
    *,
    sample: Callable[[str, int], tuple[EnvironmentMemory, Sampled]],
) -> Idle[Sampled]:
    """Run ``probe idle``; while it idles, ``sample(container, probe's host pid)``.

    The one fresh-container memory run of Docker and Podman alike: their samplers differ
    (containerd shims vs conmon), the probe's life cycle, timeout and checks do not. The
    container is always removed.
    """
    deadline = time.perf_counter() + timeout
    container = _create(client, spec, [GUEST_PROBE, "idle", str(alloc), f"{idle:g}"])
    try:
        client.api.start(container)
        _await_ready(client, container, deadline)
        pid = int(client.api.inspect_container(container)["State"]["Pid"])
        environment, extra = sample(container, pid)
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
    return Idle(environment, extra, hwm, parse_keyvalues(stdout))


@dataclass(frozen=True, slots=True)
class _Shims:
    """Docker's own readings: the container's cgroup and its containerd shims."""

    cgroup: CgroupMemory
    processes: list[psutil.Process]
    memory: EnvironmentMemory
    on_host: int


def _shim_sample(container: str, pid: int) -> tuple[EnvironmentMemory, _Shims]:
    cgroup = cgroup_memory(pid)
    shims = shim_processes(container)
    environment = environment_memory(environment_pids(cgroup_pids(cgroup), shims))
    shim = environment_memory(p.pid for p in shims)
    # PSS depends on how many shims share pages: record how many were running.
    on_host = sum(
        1
        for p in psutil.process_iter(["name"])
        if (p.info["name"] or "").startswith("containerd-shim")
    )
    return environment, _Shims(cgroup, shims, shim, on_host)


def memory_idle(
    client: docker.DockerClient, spec: Spec, alloc: int, idle: float, timeout: float
) -> Outcome:
    """Run ``probe idle``; while it idles, sum the PSS of the container's host processes."""
    run = idle_probe(client, spec, alloc, idle, timeout, sample=_shim_sample)
    shims, cgroup, kv = run.extra, run.extra.cgroup, run.kv
    measurements = [
        Measurement("memory.environment", float(run.environment.pss)),
        Measurement("memory.shim_pss", float(shims.memory.pss)),
        Measurement("memory.cgroup_usage", float(cgroup.working_set)),
        Measurement("memory.workload_peak", float(run.hwm)),
    ]
    names = sorted({p.info["name"] or "?" for p in shims.processes})
    facts = {
        **kernel_facts(kv),
        **run.environment.facts(),
        "cgroup_version": str(cgroup.version),
        "cgroup_usage_raw": str(cgroup.usage),
        "cgroup_inactive_file": str(cgroup.inactive_file),
        "cgroup_rss": str(cgroup.stat.get("total_rss", cgroup.stat.get("anon", 0))),
        "cgroup_shmem": str(cgroup.stat.get("total_shmem", cgroup.stat.get("shmem", 0))),
        "probe_peak_rss_bytes": kv.get("peak_rss", ""),
        "probe_ru_maxrss_bytes": kv.get("maxrss_rusage", ""),
        "shim_uss_bytes": str(shims.memory.private),
        "shims_on_host": str(shims.on_host),
        "shim_processes": ",".join(names) or "none",
    }
    if not shims.processes:
        facts["warning"] = (
            "no containerd-shim process found for the container: memory.environment "
            "counts the container's own processes only"
        )
    return Outcome(measurements, facts)


def _await_ready(client: docker.DockerClient, container: str, deadline: float) -> None:
    """Poll the container's stdout until the probe prints ``ready_ns=`` (it touched its memory)."""
    while True:
        if time.perf_counter() > deadline:
            msg = "memory probe did not report ready before the scenario timeout; killed"
            raise RepetitionTimeout(msg)
        stdout = client.api.logs(container, stdout=True, stderr=False).decode(errors="replace")
        if "ready_ns=" in stdout:
            return
        state = client.api.inspect_container(container)["State"]
        if not state["Running"]:
            msg = f"memory probe exited before it was measured (status {state['ExitCode']})"
            raise BackendError(msg)
        time.sleep(0.01)
