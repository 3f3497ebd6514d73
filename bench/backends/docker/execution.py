"""The exec-based workloads (syscall, disk, command, network) in the long-lived container.

The measured code is the shared :mod:`bench.workloads` code, identical to native's, run
through :class:`~bench.backends.docker.support.ContainerExecutor`; this module adds what only
a container knows (its storage, its kernel, its seccomp mode) to the rows' facts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.backends.docker.measure import kernel_facts
from bench.backends.docker.netdensity import DockerNetwork
from bench.backends.docker.support import (
    OVERLAY_DIR,
    VOLUME_MOUNT,
    ContainerExecutor,
    seccomp_mode,
)
from bench.scenario.model import (
    CommandWorkload,
    DiskWorkload,
    NetworkWorkload,
    SyscallWorkload,
    Workload,
)
from bench.values import BackendError, Outcome, Variant
from bench.workloads import (
    GUEST_PROBE,
    ExecResult,
    Executor,
    disk_placement,
    run_command,
    run_disk,
    run_syscall,
)


def storage_directory(storage: str) -> str:
    """The directory under test inside the container: the volume's mount or the overlay's."""
    return VOLUME_MOUNT if storage == "volume" else OVERLAY_DIR


def deadline_bound(execute: Executor, timeout: float) -> Executor:
    """An executor whose calls together never exceed ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout

    def bounded(argv: Sequence[str], limit: float) -> ExecResult:
        return execute(argv, max(0.1, min(limit, deadline - time.perf_counter())))

    return bounded


def run_in_container(
    executor: ContainerExecutor,
    network: DockerNetwork | None,
    workload: Workload,
    variant: Variant,
    timeout: float,
) -> tuple[Outcome, dict[str, str]]:
    """One repetition in the exec container: its outcome and the container's facts."""
    executor.ensure()  # recreated here if a timeout killed it: outside the measurement
    facts = {"seccomp_mode": seccomp_mode(executor.pid())}
    execute = deadline_bound(executor, timeout)
    storage = variant.params.get("storage", "overlay")
    if isinstance(workload, SyscallWorkload):
        outcome = run_syscall(execute, GUEST_PROBE, workload, timeout)
        facts.update(kernel_facts(outcome.facts))
    elif isinstance(workload, DiskWorkload):
        directory = storage_directory(storage)
        outcome = run_disk(execute, workload, directory, timeout)
        facts["storage"] = f"{storage} ({directory})"
        facts.update(disk_placement(executor.host_path(directory)))
    elif isinstance(workload, CommandWorkload):
        outcome = run_command(execute, workload, timeout)
        facts["storage"] = f"{storage} ({executor.workdir})"
        facts["workdir"] = str(executor.workdir)
        facts.update(disk_placement(executor.host_path(str(executor.workdir))))
    elif isinstance(workload, NetworkWorkload):
        if network is None:
            msg = "network workload run before its server was prepared"
            raise BackendError(msg)
        where = variant.params.get("client", "host")
        outcome = network.run(workload, where, timeout)
    else:  # pragma: no cover - the scenario model admits no other kind
        msg = f"unsupported workload kind {workload.kind!r}"
        raise BackendError(msg)
    return outcome, facts
